"""Concursus's ``Event`` and ``Catalogue`` tables in Apache Cassandra, as a source.

>>> import concursus_lab as cl                                   # doctest: +SKIP
>>> store = cl.open("cassandra://127.0.0.1:9042/concursus")     # doctest: +SKIP
>>> store.events(aggregate_type="parcel", aggregate_ids=["parcel-0000001"])  # doctest: +SKIP

Reading
    With ``aggregate_type`` and ``aggregate_ids``, one prepared partition query per
    aggregate (the event-time range goes into the clustering slice), run concurrently.
    Otherwise a full scan split over token ranges, run concurrently and page by page, with
    the aggregate type and event-time range filtered by the server. Cells arrive as raw
    bytes (see :mod:`._cassandra_codec`) and become columns with NumPy, not Python objects.
Writing
    What Java Concursus writes: per-value JSON texts in ``parameters``, a time-based
    ``processingId``, prepared statements, an unlogged batch per partition, partitions
    written concurrently, and the ``Catalogue`` rows. Each row is written ``USING TIMESTAMP``
    its processing time, so Cassandra's last-write-wins keeps the last *processed* delivery
    of an identity whatever the order of appends, and a retried or repeated append is
    harmless.
Faults
    A page that fails because the server went away is asked for again from the same paging
    state, with backoff, ``retries`` times; then the read raises
    :class:`~concursus_lab.exceptions.IncompleteRead` with what was read in ``.partial``.

Connecting lives in :mod:`._cassandra_connect`: credentials and TLS come from environment
variables (its ``ENVIRONMENT``), so they never sit in a notebook. See docs/cassandra.md.
"""

from __future__ import annotations

import itertools
import math
import ssl
import uuid
import warnings
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import polars as pl

from concursus_lab.common.gc import paused_gc
from concursus_lab.common.progress import bar as progress_bar
from concursus_lab.common.time import TimeLike
from concursus_lab.exceptions import (
    IncompleteRead,
    SourceError,
    SourceUnavailable,
)
from concursus_lab.frame.identity import IDENTITY, Duplicates, resolve
from concursus_lab.frame.jhash import bucket as catalogue_bucket
from concursus_lab.frame.schema import SCHEMA, TIME, for_writing
from concursus_lab.frame.timeuuid import processing_time, time_uuids
from concursus_lab.sources.base import Source
from concursus_lab.sources.cassandra import paging
from concursus_lab.sources.cassandra.codec import (
    CQL_COLUMNS,
    QUARANTINE_SCHEMA,
    decode_rows,
    empty_quarantine,
    encode_parameters,
)
from concursus_lab.sources.cassandra.connect import (
    DEFAULT_KEYSPACE,
    DEFAULT_PORT,
    START_HINT,
    connect,
    driver,
    env,
    parse_url,
    ssl_context,
)
from concursus_lab.sources.query import Query

#: Concursus's own CQL, word for word but for the keyspace.
EVENT_TABLE = """CREATE TABLE IF NOT EXISTS {keyspace}.Event (
  aggregateType text, aggregateId text, eventTimestamp timestamp, streamId text,
  processingId timeuuid, name text, version text, parameters map<text, text>,
  characteristics int,
  PRIMARY KEY((aggregateType, aggregateId), eventTimestamp, streamId)
) WITH CLUSTERING ORDER BY (eventTimestamp DESC);"""
CATALOGUE_TABLE = """CREATE TABLE IF NOT EXISTS {keyspace}.Catalogue (
  aggregateType text, bucket int, aggregateId text,
  PRIMARY KEY ((aggregateType, bucket), aggregateId)
) WITH CLUSTERING ORDER BY (aggregateId DESC);"""

_SELECT = "SELECT " + ", ".join(CQL_COLUMNS) + " FROM {keyspace}.Event"
_TOKEN = "token(aggregateType, aggregateId)"
_INSERT = (
    "INSERT INTO {keyspace}.Event ("
    + ", ".join(CQL_COLUMNS)
    + ") VALUES ("
    + ", ".join("?" * len(CQL_COLUMNS))
    + ") USING TIMESTAMP ?"
)
_INSERT_CATALOGUE = (
    "INSERT INTO {keyspace}.Catalogue (aggregateType, bucket, aggregateId) VALUES (?, ?, ?)"
)
_WRITETIME = (
    "SELECT WRITETIME(name) FROM {keyspace}.Event WHERE aggregateType = ? AND aggregateId = ?"
    " AND eventTimestamp = ? AND streamId = ?"
)
_MIN_TOKEN, _MAX_TOKEN = -(2**63), 2**63 - 1
_BATCH_ROWS = 100  # rows of one partition per unlogged batch
_DECODE_ROWS = 20_000  # rows decoded at once
_CHUNK_ROWS = 20_000  # rows turned into bound statements at once


class CassandraSource(Source):
    """Concursus's ``Event`` table in Cassandra; open it with ``cl.open("cassandra://...")``.

    Parameters
    ----------
    url
        ``cassandra://host1,host2:9042/keyspace`` (port 9042 and keyspace ``concursus`` by
        default). A user name may come before the hosts (``user@host``); a password never.
    create
        Make the keyspace (when missing) and both tables with Concursus's CQL.
    replication
        The keyspace's replication map when ``create`` makes it (default
        ``{"class": "SimpleStrategy", "replication_factor": 1}``).
    consistency
        Consistency level name for reads and writes (default ``"LOCAL_QUORUM"``, or
        ``$CONCURSUS_LAB_CASSANDRA_CONSISTENCY``).
    username, password
        Default to ``$CONCURSUS_LAB_CASSANDRA_USERNAME`` / ``..._PASSWORD``.
    tls
        True for TLS with the system's CAs, or an ``ssl.SSLContext``. TLS is on when
        ``$CONCURSUS_LAB_CASSANDRA_CA_FILE`` (or ``ca_file``) or ``..._TLS=1`` is set;
        ``..._CERT_FILE``/``..._KEY_FILE`` add a client certificate.
    local_dc
        The data centre to read from (default: the contact points', or ``..._LOCAL_DC``).
    buckets
        Catalogue buckets (Concursus's default, 8).
    concurrency
        Pages (reads) or batches (writes) in flight at once.
    splits
        Token ranges a full scan is split into (default 32 per node).
    fetch_size
        Rows per page.
    retries
        Times one page is asked for again when the server is unavailable, with a backoff
        doubling from 0.5 s to 8 s (so the default rides out about a minute).
    timeout
        Seconds one request may take.
    """

    def __init__(
        self,
        url: str = f"cassandra://127.0.0.1:{DEFAULT_PORT}/{DEFAULT_KEYSPACE}",
        *,
        create: bool = False,
        replication: dict | None = None,
        consistency: str | None = None,
        username: str | None = None,
        password: str | None = None,
        tls: bool | ssl.SSLContext | None = None,
        ca_file: str | None = None,
        local_dc: str | None = None,
        buckets: int = 8,
        concurrency: int = 8,
        splits: int | None = None,
        fetch_size: int = 5000,
        retries: int = 10,
        timeout: float = 30.0,
    ):
        self._cluster: Any = None
        self._session: Any = None
        cassandra = driver()
        address = parse_url(url)
        options = {**address.options}
        self._address = address
        self.url = address.url
        self.keyspace = address.keyspace
        for name, value in (
            ("buckets", buckets),
            ("concurrency", concurrency),
            ("fetch_size", fetch_size),
        ):
            if not isinstance(value, int) or value < 1:
                raise SourceError(f"`{name}` must be a positive int, got {value!r}.")
        if splits is not None and (not isinstance(splits, int) or splits < 1):
            raise SourceError(f"`splits` must be a positive int or None, got {splits!r}.")
        if not isinstance(retries, int) or retries < 0:
            raise SourceError(f"`retries` must be an int >= 0, got {retries!r}.")
        self._buckets, self._concurrency, self._splits = buckets, concurrency, splits
        self._fetch_size, self._retries, self._timeout = fetch_size, retries, float(timeout)
        level_name = (
            consistency or options.get("consistency") or env("consistency") or "LOCAL_QUORUM"
        ).upper()
        if level_name not in cassandra.ConsistencyLevel.name_to_value:
            names = ", ".join(sorted(cassandra.ConsistencyLevel.name_to_value))
            raise SourceError(f"`consistency` must be one of {names}; got {level_name!r}.")
        self._consistency = level_name
        self._quarantine = empty_quarantine()
        self._prepared: dict[str, Any] = {}
        self._cluster, self._session = connect(
            address,
            consistency=cassandra.ConsistencyLevel.name_to_value[level_name],
            username=username or address.username or env("username"),
            password=password or env("password"),
            tls=ssl_context(tls, ca_file or options.get("ca_file")),
            local_dc=local_dc or options.get("local_dc") or env("local_dc"),
            timeout=self._timeout,
        )
        try:
            if create:
                self._create(replication)
            self._check_tables()
        except BaseException:
            self.close()
            raise

    @classmethod
    def from_url(cls, url: str, **options: Any) -> CassandraSource:
        """What :func:`concursus_lab.open` calls for ``cassandra://`` URLs."""
        return cls(url, **options)

    # -- schema ----------------------------------------------------------------------------

    def _create(self, replication: dict | None) -> None:
        replication = replication or {"class": "SimpleStrategy", "replication_factor": 1}
        if not isinstance(replication, dict) or "class" not in replication:
            raise SourceError(
                "`replication` must be a replication map such as "
                "{'class': 'NetworkTopologyStrategy', 'dc1': 3}, got " + repr(replication)
            )
        body = ", ".join(f"'{k}': {_cql_literal(v)}" for k, v in replication.items())
        self._session.execute(
            f"CREATE KEYSPACE IF NOT EXISTS {self.keyspace} WITH replication = {{{body}}}"
        )
        self._session.execute(EVENT_TABLE.format(keyspace=self.keyspace))
        self._session.execute(CATALOGUE_TABLE.format(keyspace=self.keyspace))

    def _check_tables(self) -> None:
        metadata = self._cluster.metadata
        keyspace = metadata.keyspaces.get(self.keyspace)
        if keyspace is None:
            raise SourceUnavailable(
                f"keyspace {self.keyspace!r} does not exist at {self.url}. Make it and "
                f"Concursus's tables with cl.open({self.url!r}, create=True)."
            )
        for table in ("event", "catalogue"):
            if table not in keyspace.tables:
                raise SourceUnavailable(
                    f"table {self.keyspace}.{table} does not exist at {self.url}. Make "
                    f"Concursus's tables with cl.open({self.url!r}, create=True)."
                )
        columns = set(keyspace.tables["event"].columns)
        missing = [c for c in CQL_COLUMNS if c.lower() not in columns]
        if missing:
            raise SourceError(
                f"{self.keyspace}.event is not Concursus's Event table: it has no column "
                f"{', '.join(missing)}. Expected:\n{EVENT_TABLE.format(keyspace=self.keyspace)}"
            )

    def _prepare(self, template: str) -> Any:
        statement = self._prepared.get(template)
        if statement is None:
            statement = self._session.prepare(template.format(keyspace=self.keyspace))
            statement.is_idempotent = True  # reads, and writes at a fixed timestamp
            self._prepared[template] = statement
        return statement

    # -- reading ---------------------------------------------------------------------------

    def events(
        self,
        aggregate_type: str | None = None,
        aggregate_ids: Iterable[str] | str | None = None,
        event_time: tuple[TimeLike | None, TimeLike | None] | None = None,
        known_at: TimeLike | None = None,
        *,
        duplicates: Duplicates = "last",
        progress: bool | None = None,
    ) -> pl.DataFrame:
        """The events, as a canonical frame; see :meth:`Source.events`.

        Cassandra keeps one row per identity (the last written), so ``duplicates`` changes
        nothing here. Passing ``aggregate_ids`` without ``aggregate_type`` scans the whole
        table (the partition key needs both), so pass both for fast reads.

        Raises
        ------
        IncompleteRead
            The server stayed away longer than ``retries`` allow, or the read was
            interrupted; ``.partial`` holds what was read.
        """
        query = Query.of(aggregate_type, aggregate_ids, event_time, known_at, duplicates)
        self._check_open()
        if query.aggregate_ids == ():
            self._quarantine = empty_quarantine()
            return pl.DataFrame(schema=SCHEMA)
        if query.aggregate_ids is not None and query.aggregate_type is not None:
            tasks = self._partition_tasks(query)
            unit = "aggregates"
            concurrency = max(32, self._concurrency)  # small queries: latency, not work
        else:
            tasks = self._token_tasks(query)
            unit = "token ranges"
            concurrency = self._concurrency
        reader = _Reader(len(tasks), unit, progress, self.url)
        with paused_gc(), reader:
            try:
                paging.run(
                    self._session,
                    tasks,
                    on_page=reader.add,
                    on_task_done=reader.task_done,
                    concurrency=concurrency,
                    retries=self._retries,
                    timeout=self._timeout,
                )
            except paging.Stopped as stop:
                raise self._incomplete(reader, stop, len(tasks), unit, query) from stop.cause
            frame, quarantine = reader.result()
            frame, quarantine = self._fill_write_times(frame, quarantine)
        self._quarantine = quarantine
        if quarantine.height:
            reasons = quarantine["reason"].value_counts(sort=True)
            warnings.warn(
                f"{quarantine.height:,} row(s) of {self.url} could not be decoded and are in "
                f"`.quarantine` (most common reason: {reasons['reason'][0]}).",
                stacklevel=2,
            )
        predicate = query.predicate()
        return frame if predicate is None else frame.filter(predicate)

    def _partition_tasks(self, query: Query) -> list[paging.Task]:
        where = "WHERE aggregateType = ? AND aggregateId = ?"
        bounds = []
        if query.event_start is not None:
            where += " AND eventTimestamp >= ?"
            bounds.append(_millis(query.event_start))
        if query.event_end is not None:
            where += " AND eventTimestamp < ?"
            bounds.append(_millis(query.event_end))
        statement = self._prepare(_SELECT + " " + where)
        tasks = []
        for aggregate_id in query.aggregate_ids or ():
            bound = statement.bind((query.aggregate_type, aggregate_id, *bounds))
            bound.fetch_size = self._fetch_size
            tasks.append(paging.Task(bound, f"aggregate {aggregate_id!r}"))
        return tasks

    def _token_tasks(self, query: Query) -> list[paging.Task]:
        where = f"WHERE {_TOKEN} > ? AND {_TOKEN} <= ?"
        extra: list[Any] = []
        if query.aggregate_type is not None:
            where += " AND aggregateType = ?"
            extra.append(query.aggregate_type)
        if query.event_start is not None:
            where += " AND eventTimestamp >= ?"
            extra.append(_millis(query.event_start))
        if query.event_end is not None:
            where += " AND eventTimestamp < ?"
            extra.append(_millis(query.event_end))
        if extra:
            where += " ALLOW FILTERING"  # the server filters; it still reads every row
        statement = self._prepare(_SELECT + " " + where)
        ranges = self._token_ranges()
        tasks = []
        for i, (start, end) in enumerate(ranges):
            bound = statement.bind((start, end, *extra))
            bound.fetch_size = self._fetch_size
            label = f"token range {i + 1}/{len(ranges)} ({start}, {end}]"
            tasks.append(paging.Task(bound, label, extra=(start, end)))
        return tasks

    def _token_ranges(self) -> list[tuple[int, int]]:
        token_map = self._cluster.metadata.token_map
        ring = [t.value for t in token_map.ring] if token_map else []
        nodes = max(1, len(self._cluster.metadata.all_hosts()))
        return token_ranges(ring, self._splits or 32 * nodes)

    def _fill_write_times(
        self, frame: pl.DataFrame, quarantine: pl.DataFrame
    ) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Events with no ``processingId``: their processing time is when Cassandra wrote them."""
        missing = frame["processing_timestamp"].is_null()
        if not missing.any():
            return frame, quarantine
        keys = frame.filter(missing).select(IDENTITY)
        statement = self._prepare(_WRITETIME)
        found: dict[tuple, int | None] = {}
        tasks = []
        for row in keys.iter_rows():
            bound = statement.bind((row[0], row[1], _millis(row[2]), row[3]))
            tasks.append(paging.Task(bound, f"write time of {row}", extra=row))

        def record(task: paging.Task, rows: list) -> None:
            cell = rows[0][0] if rows else None
            found[task.extra] = None if cell is None else int.from_bytes(cell, "big", signed=True)

        try:
            paging.run(
                self._session,
                tasks,
                on_page=record,
                concurrency=self._concurrency,
                retries=self._retries,
                timeout=self._timeout,
            )
        except paging.Stopped as stop:
            raise IncompleteRead(
                f"read {frame.height:,} events from {self.url} but could not read the write "
                f"time of {len(tasks) - stop.finished:,} of the {len(tasks):,} event(s) that "
                f"have no processingId ({type(stop.cause).__name__}: {stop.cause}); "
                f"`.partial` holds the others. {START_HINT}",
                partial=frame.filter(~missing),
            ) from stop.cause
        micros = [found.get(row) for row in keys.iter_rows()]
        filled = keys.with_columns(pl.Series("__written", micros, dtype=pl.Int64).cast(TIME))
        frame = (
            frame.join(filled, on=list(IDENTITY), how="left", maintain_order="left")
            .with_columns(
                pl.coalesce("processing_timestamp", "__written").alias("processing_timestamp")
            )
            .drop("__written")
        )
        lost = frame["processing_timestamp"].is_null()
        if lost.any():
            extra = (
                frame.filter(lost)
                .with_columns(
                    pl.lit(
                        "no processingId and no write time: its processing time is unknown"
                    ).alias("reason"),
                )
                .select(QUARANTINE_SCHEMA.names())
            )
            quarantine = pl.concat([quarantine, extra])
            frame = frame.filter(~lost)
        return frame, quarantine

    def _incomplete(
        self, reader: _Reader, stop: paging.Stopped, total: int, unit: str, query: Query
    ) -> IncompleteRead:
        frame, quarantine = reader.result()
        self._quarantine = quarantine
        predicate = query.predicate(with_known_at=False)
        if predicate is not None:
            frame = frame.filter(predicate)
        if query.known_at is not None:  # events with no processingId have no time yet
            processed = pl.col("processing_timestamp")
            frame = frame.filter(processed.is_null() | (processed <= query.known_at))
        interrupted = isinstance(stop.cause, KeyboardInterrupt)
        why = "it was interrupted" if interrupted else f"{type(stop.cause).__name__}: {stop.cause}"
        started = sorted(stop.unfinished, key=lambda t: -t.rows)
        examples = "; ".join(f"{t.label} after {t.rows:,} rows" for t in started[:3])
        hint = "" if interrupted else f" {START_HINT} Then read again."
        return IncompleteRead(
            f"the read of {self.url} stopped because {why}. It read {frame.height:,} events: "
            f"{stop.finished:,} of {total:,} {unit} in full, and "
            f"{total - stop.finished:,} {unit} not read to the end (e.g. {examples}). "
            f"`.partial` holds what was read (events with no processingId have no "
            f"processing time there).{hint}",
            partial=frame,
        )

    @property
    def quarantine(self) -> pl.DataFrame:
        """Rows the last read could not decode: their stored values and a ``reason``."""
        return self._quarantine

    # -- writing ---------------------------------------------------------------------------

    def append(self, frame: pl.DataFrame, *, progress: bool | None = None) -> int:
        """Validate ``frame`` and write it as Java Concursus would; returns ``frame.height``.

        Nothing is written when validation fails. Several deliveries of one identity in
        ``frame`` are written once: the last processed. Every row is written ``USING
        TIMESTAMP`` its processing time, so a later-processed delivery already in the table
        is not overwritten by an earlier one, and repeating an append changes nothing.
        ``processingId`` is the frame's ``processing_id`` when that is a time-based UUID,
        else a new one whose time is ``processing_timestamp``. Catalogue rows
        (bucket ``abs(hashCode(aggregateId)) % buckets``) are written for every aggregate.
        """
        self._check_open()
        frame = for_writing(frame, milliseconds="Cassandra")
        if frame.height == 0:
            return 0
        offered = frame.height
        frame = resolve(frame, "last")
        frame = frame.sort("aggregate_type", "aggregate_id", maintain_order=True)
        has_time = processing_time(frame["processing_id"]).is_not_null()
        fresh = time_uuids(frame["processing_timestamp"])
        ids = frame["processing_id"].zip_with(has_time, fresh)
        tasks = itertools.chain(self._event_tasks(frame, ids), self._catalogue_tasks(frame))
        bar = progress_bar(progress, total=frame.height, what=f"writing {self.url}", unit="events")
        written = 0

        def done(task: paging.Task) -> None:
            nonlocal written
            written += task.extra
            bar.update(task.extra)

        try:
            paging.run(
                self._session,
                tasks,
                on_page=lambda task, rows: None,
                on_task_done=done,
                concurrency=max(self._concurrency, 32),
                retries=self._retries,
                timeout=self._timeout,
            )
        except paging.Stopped as stop:
            raise SourceUnavailable(
                f"writing to {self.url} stopped ({type(stop.cause).__name__}: {stop.cause}) "
                f"after {written:,} of {frame.height:,} events were written. Appending the "
                "same frame again is safe: every row is written at a fixed timestamp, so rows "
                f"already written stay as they are. {START_HINT}"
            ) from stop.cause
        finally:
            bar.close()
        return offered

    def _event_tasks(self, frame: pl.DataFrame, ids: pl.Series) -> Iterator[paging.Task]:
        """Unlogged batches of one partition's rows, made a chunk of the frame at a time."""
        cassandra = driver()
        from cassandra.query import BatchStatement, BatchType

        insert = self._prepare(_INSERT)
        level = cassandra.ConsistencyLevel.name_to_value[self._consistency]
        run = frame.select(pl.struct("aggregate_type", "aggregate_id").rle_id()).to_series()
        starts = np.flatnonzero(np.diff(run.to_numpy(), prepend=-1))
        ends = np.r_[starts[1:], frame.height]
        frame = frame.with_columns(ids.alias("processing_id"))
        at = np.searchsorted(starts, np.arange(0, frame.height, _CHUNK_ROWS))
        cuts = starts[np.minimum(at, len(starts) - 1)]
        edges = [*np.unique(np.r_[0, cuts]).tolist(), frame.height]
        partition = 0
        for lo_row, hi_row in itertools.pairwise(edges):
            rows = _insert_values(frame.slice(lo_row, hi_row - lo_row))
            while partition < len(starts) and starts[partition] < hi_row:
                start, end = int(starts[partition]) - lo_row, int(ends[partition]) - lo_row
                partition += 1
                for lo in range(start, end, _BATCH_ROWS):
                    hi = min(end, lo + _BATCH_ROWS)
                    if hi - lo == 1:
                        statement = insert.bind(rows[lo])
                    else:
                        statement = BatchStatement(
                            batch_type=BatchType.UNLOGGED, consistency_level=level
                        )
                        for row in rows[lo:hi]:
                            statement.add(insert.bind(row))
                    statement.is_idempotent = True
                    label = f"events of {rows[lo][0]}/{rows[lo][1]}"
                    yield paging.Task(statement, label, extra=hi - lo)

    def _catalogue_tasks(self, frame: pl.DataFrame) -> list[paging.Task]:
        cassandra = driver()
        from cassandra.query import BatchStatement, BatchType

        insert = self._prepare(_INSERT_CATALOGUE)
        level = cassandra.ConsistencyLevel.name_to_value[self._consistency]
        aggregates = frame.select("aggregate_type", "aggregate_id").unique(maintain_order=True)
        aggregates = aggregates.with_columns(
            catalogue_bucket(aggregates["aggregate_id"], self._buckets).alias("bucket")
        )
        tasks = []
        for (aggregate_type, bucket), group in aggregates.group_by(
            ["aggregate_type", "bucket"], maintain_order=True
        ):
            ids = group["aggregate_id"].to_list()
            for lo in range(0, len(ids), _BATCH_ROWS):
                batch = BatchStatement(batch_type=BatchType.UNLOGGED, consistency_level=level)
                for aggregate_id in ids[lo : lo + _BATCH_ROWS]:
                    batch.add(insert.bind((aggregate_type, bucket, aggregate_id)))
                batch.is_idempotent = True
                tasks.append(paging.Task(batch, f"catalogue {aggregate_type}/{bucket}", extra=0))
        return tasks

    # -- describing and closing --------------------------------------------------------------

    def _check_open(self) -> None:
        if self._session is None:
            raise SourceError(f"{self!r} is closed; open it again with cl.open({self.url!r}).")

    def close(self) -> None:
        """Close the connections; the source cannot be read afterwards."""
        cluster, self._cluster, self._session = getattr(self, "_cluster", None), None, None
        if cluster is not None:
            cluster.shutdown()

    def __repr__(self) -> str:
        if self._cluster is None:
            return f"CassandraSource({self.url!r}, closed)"
        try:
            hosts = list(self._cluster.metadata.all_hosts())
            versions = sorted({h.release_version for h in hosts if h.release_version})
            up = sum(1 for h in hosts if h.is_up)
            version = f"Cassandra {', '.join(versions)}, " if versions else ""
            return (
                f"CassandraSource({self.url!r}: {version}{up} of {len(hosts)} node(s) up, "
                f"consistency {self._consistency})"
            )
        except Exception:
            return f"CassandraSource({self.url!r})"


def token_ranges(ring: list[int], wanted: int) -> list[tuple[int, int]]:
    """The whole Murmur3 ring as about ``wanted`` ranges ``(start, end]``, cut at node tokens.

    Every token but the minimum (which no key has) falls in exactly one range, and no range
    crosses a node's token, so each is served by one replica set.

    >>> for start, end in token_ranges([0], 4):
    ...     print(start, end)
    -9223372036854775808 -4611686018427387904
    -4611686018427387904 0
    0 4611686018427387903
    4611686018427387903 9223372036854775807
    """
    edges = [_MIN_TOKEN, *sorted({t for t in ring if _MIN_TOKEN < t < _MAX_TOKEN}), _MAX_TOKEN]
    span = _MAX_TOKEN - _MIN_TOKEN
    ranges = []
    for start, end in itertools.pairwise(edges):
        pieces = max(1, math.ceil(wanted * (end - start) / span))
        cuts = [start + (end - start) * k // pieces for k in range(pieces)] + [end]
        ranges.extend((a, b) for a, b in itertools.pairwise(cuts) if b > a)
    return ranges


def _insert_values(frame: pl.DataFrame) -> list[tuple]:
    """The bind values of the INSERT, row by row, for a canonical frame."""
    columns = (
        frame["aggregate_type"].to_list(),
        frame["aggregate_id"].to_list(),
        frame["event_timestamp"].dt.epoch("ms").to_list(),
        frame["stream_id"].to_list(),
        [uuid.UUID(i) for i in frame["processing_id"].to_list()],
        frame["name"].to_list(),
        frame["version"].to_list(),
        encode_parameters(frame["parameters"].to_list()),
        frame["characteristics"].to_list(),
        frame["processing_timestamp"].dt.epoch("us").to_list(),
    )
    return list(zip(*columns, strict=True))


class _Reader:
    """Collects pages, decodes them in chunks, and shows progress."""

    def __init__(self, total: int, unit: str, progress: bool | None, url: str):
        self._pending: list = []
        self._frames: list[pl.DataFrame] = []
        self._quarantines: list[pl.DataFrame] = []
        self._rows = 0
        self._bar = progress_bar(progress, total=total, what=f"reading {url}", unit=unit)

    def add(self, task: paging.Task, rows: list) -> None:
        self._pending.extend(rows)
        self._rows += len(rows)
        if len(self._pending) >= _DECODE_ROWS:
            self._decode()

    def task_done(self, task: paging.Task) -> None:
        self._bar.update(1)
        self._bar.set_postfix_str(f"{self._rows:,} events", refresh=False)

    def _decode(self) -> None:
        if self._pending:
            frame, quarantine = decode_rows(self._pending)
            self._pending = []
            self._frames.append(frame)
            if quarantine.height:
                self._quarantines.append(quarantine)

    def result(self) -> tuple[pl.DataFrame, pl.DataFrame]:
        self._decode()
        frame = (
            pl.concat(self._frames, rechunk=True) if self._frames else pl.DataFrame(schema=SCHEMA)
        )
        quarantine = pl.concat(self._quarantines) if self._quarantines else empty_quarantine()
        return frame, quarantine

    def __enter__(self) -> _Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.close()


def _cql_literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def _millis(value: Any) -> int:
    """An aware datetime as epoch milliseconds, rounded up: a timestamp bound for a slice.

    ``eventTimestamp >= ceil(start)`` and ``< ceil(end)`` select exactly the stored
    (millisecond) times in ``[start, end)``; exact for millisecond times.
    """
    micros = pl.Series([value]).cast(TIME).dt.epoch("us").item()
    return -(-micros // 1000)
