"""Concursus's ``Event`` and ``Catalogue`` tables in Apache Cassandra, as a source.

>>> import concursus_lab as cl                                   # doctest: +SKIP
>>> store = cl.open("cassandra://127.0.0.1:9042/concursus")     # doctest: +SKIP
>>> store.events(aggregate_type="parcel", aggregate_ids=["parcel-0000001"])  # doctest: +SKIP

Reading
    With ``aggregate_type`` and ``aggregate_ids``, one prepared partition query per
    aggregate (the event-time range goes into the clustering slice), run concurrently.
    Otherwise a full scan split over token ranges, run concurrently and page by page, with
    the aggregate type and event-time range filtered by the server (:mod:`.queries`).
    Cells arrive as raw bytes (:mod:`.raw_cells`) and become columns with NumPy, not
    Python objects (:mod:`.codec`, collected by :mod:`.reader`).
Writing
    What Java Concursus writes: per-value JSON texts in ``parameters``, a time-based
    ``processingId``, prepared statements, an unlogged batch per partition, partitions
    written concurrently, and the ``Catalogue`` rows (:mod:`.writing`). Each row is
    written ``USING TIMESTAMP`` its processing time, so Cassandra's last-write-wins keeps
    the last *processed* delivery of an identity whatever the order of appends, and a
    retried or repeated append is harmless.
Faults
    A page that fails because the server went away is asked for again from the same paging
    state, with backoff, ``retries`` times (:mod:`.paging`); then the read raises
    :class:`~concursus_lab.exceptions.IncompleteRead` with what was read in ``.partial``.

Connecting lives in :mod:`.connect`: credentials and TLS come from environment
variables (its ``ENVIRONMENT``), so they never sit in a notebook. See docs/cassandra.md.
"""

from __future__ import annotations

import itertools
import ssl
import urllib.parse
from typing import Any

import polars as pl

from concursus_lab.common.progress import bar as progress_bar
from concursus_lab.exceptions import SourceError, SourceUnavailable
from concursus_lab.frame.identity import resolve
from concursus_lab.frame.schema import SCHEMA, for_writing
from concursus_lab.frame.timeuuid import processing_time, time_uuids
from concursus_lab.mapping import Mapping
from concursus_lab.sources.base import Source
from concursus_lab.sources.cassandra import paging, tables
from concursus_lab.sources.cassandra.codec import empty_quarantine
from concursus_lab.sources.cassandra.connect import (
    DEFAULT_KEYSPACE,
    DEFAULT_PORT,
    START_HINT,
    URL_OPTIONS,
    driver,
)
from concursus_lab.sources.cassandra.queries import partition_tasks, ring_ranges, token_tasks
from concursus_lab.sources.cassandra.reader import Reader, incomplete
from concursus_lab.sources.cassandra.session import Connected
from concursus_lab.sources.cassandra.table import TableSource
from concursus_lab.sources.cassandra.write_times import fill_write_times
from concursus_lab.sources.cassandra.writing import Replicas, catalogue_tasks, event_tasks
from concursus_lab.sources.quarantine import warn_quarantined
from concursus_lab.sources.query import Query


class CassandraSource(Connected, Source):
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

    Cassandra keeps one row per identity (the last written), so ``duplicates`` changes nothing
    in :meth:`events`. Passing ``aggregate_ids`` without ``aggregate_type`` scans the whole
    table (the partition key needs both), so pass both for fast reads. A read raises
    :class:`~concursus_lab.exceptions.IncompleteRead` when the server stays away longer than
    ``retries`` allow, or when it is interrupted; ``.partial`` holds what was read.
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
        if not isinstance(buckets, int) or buckets < 1:
            raise SourceError(f"`buckets` must be a positive int, got {buckets!r}.")
        self._buckets = buckets
        self._quarantine = empty_quarantine()
        self._connect(
            url,
            consistency=consistency,
            username=username,
            password=password,
            tls=tls,
            ca_file=ca_file,
            local_dc=local_dc,
            concurrency=concurrency,
            splits=splits,
            fetch_size=fetch_size,
            retries=retries,
            timeout=timeout,
        )
        try:
            if create:
                tables.create(self._session, self.keyspace, replication)
            tables.check(self._cluster.metadata, self.keyspace, self.url)
        except BaseException:
            self.close()
            raise

    takes_mapping = True

    @classmethod
    def from_url(cls, url: str, **options: Any) -> CassandraSource | TableSource:
        """What :func:`concursus_lab.open` calls for ``cassandra://`` URLs: Concursus's
        ``Event`` table, or with ``?table=...`` (or ``table=``) and a mapping (``mapping=``,
        or the rest of the query string) any table of your own events
        (:class:`~concursus_lab.sources.cassandra.table.TableSource`)."""
        base, _, query = url.partition("?")
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
        connection = [(k, v) for k, v in pairs if k in URL_OPTIONS]
        own = dict((k, v) for k, v in pairs if k not in URL_OPTIONS)
        table = own.pop("table", None)
        if table is not None and "table" in options:
            raise SourceError(f"{url!r} names a table and table= was given too; give one.")
        table = options.pop("table", table)
        if own and options.get("mapping") is not None:
            raise SourceError(
                f"{url!r} has a mapping in its query string and mapping= was given too; "
                "give one of them."
            )
        if own:
            options["mapping"] = Mapping.from_query(own)
        if table is None and options.get("mapping") is None:
            return cls(url, **options)
        if options.get("create"):
            raise SourceError(
                f"{url!r} names a table of your own shape, which is read, never created here; "
                "create=True makes Concursus's own tables (drop ?table= for them)."
            )
        options.pop("create", None)
        if table is None or options.get("mapping") is None:
            raise SourceError(
                f"a table of your own shape needs its name and a mapping: cl.open("
                f"'{base}?table=<table>', mapping=cl.Mapping(...)). {url!r} gives "
                f"{'a mapping but no table' if table is None else 'no mapping'}."
            )
        return TableSource(
            base + ("?" + urllib.parse.urlencode(connection) if connection else ""),
            table=table,
            **options,
        )

    # -- reading ---------------------------------------------------------------------------

    def _events(self, query: Query, progress: bool | None) -> pl.DataFrame:
        """Token ranges (or, with a type and ids, partitions) read concurrently, page by page."""
        self._check_open()
        if query.aggregate_ids == ():
            self._quarantine = empty_quarantine()
            return pl.DataFrame(schema=SCHEMA)
        if query.aggregate_ids is not None and query.aggregate_type is not None:
            tasks = partition_tasks(self._prepare, query, self._fetch_size)
            unit = "aggregates"
            concurrency = max(32, self._concurrency)  # small queries: latency, not work
        else:
            ranges = ring_ranges(self._cluster.metadata, self._splits)
            tasks = token_tasks(self._prepare, query, ranges, self._fetch_size)
            unit = "token ranges"
            concurrency = self._concurrency
        reader = Reader(len(tasks), unit, progress, self.url, raw=self._raw)
        with reader:
            try:
                self._run(tasks, reader.add, reader.task_done, concurrency=concurrency)
            except paging.Stopped as stop:
                frame, self._quarantine = reader.result()
                raise incomplete(frame, stop, len(tasks), unit, query, self.url) from stop.cause
            frame, quarantine = reader.result()
            frame, quarantine = fill_write_times(
                frame, quarantine, prepare=self._prepare, run=self._run, raw=self._raw, url=self.url
            )
        self._quarantine = quarantine
        warn_quarantined(quarantine, "row(s)", self.url, stacklevel=4)
        predicate = query.predicate()
        return frame if predicate is None else frame.filter(predicate)

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
        level = driver().ConsistencyLevel.name_to_value[self._consistency]
        tasks = itertools.chain(
            event_tasks(frame, ids, prepare=self._prepare, level=level, replicas=self._replicas()),
            catalogue_tasks(frame, prepare=self._prepare, level=level, buckets=self._buckets),
        )
        bar = progress_bar(progress, total=frame.height, what=f"writing {self.url}", unit="events")
        written = 0

        def done(task: paging.Task) -> None:
            nonlocal written
            written += task.extra
            bar.update(task.extra)

        try:
            self._run(tasks, lambda task, rows: None, done, concurrency=max(self._concurrency, 32))
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

    def _replicas(self) -> Replicas | None:
        """The nodes that own a partition key, by token (None: one node owns everything)."""
        metadata = self._cluster.metadata
        token_map = metadata.token_map
        if token_map is None or len(metadata.all_hosts()) < 2:
            return None

        def replicas(key: bytes) -> Any:
            token = token_map.token_class.from_key(key)
            return frozenset(host.endpoint for host in token_map.get_replicas(self.keyspace, token))

        return replicas

    # -- describing and closing --------------------------------------------------------------

    def __repr__(self) -> str:
        return self._described("CassandraSource")
