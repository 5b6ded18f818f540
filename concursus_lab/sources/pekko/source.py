"""Pekko and Akka Persistence journals in Cassandra, read as event histories.

>>> import concursus_lab as cl                                        # doctest: +SKIP
>>> carts = cl.open("pekko+cassandra://127.0.0.1:9042/pekko", event_time="at")  # doctest: +SKIP
>>> carts.events("ShoppingCart", ["cart-007"])                         # doctest: +SKIP

The journal that ``pekko-persistence-cassandra`` (or ``akka-persistence-cassandra``) writes
is read without the application's classes: its ``messages`` table, row by row, through a
built-in mapping (:mod:`.journal`), payloads decoded by serializer id (:mod:`.payloads`).
It is read, never written: sequence numbers and writer ids belong to the application.
See docs/pekko.md.
"""

from __future__ import annotations

import datetime as dt
import ssl
import urllib.parse
from collections.abc import Iterable
from typing import Any

import polars as pl

from concursus_lab.common.gc_pause import paused_gc
from concursus_lab.common.progress import bar as progress_bar
from concursus_lab.events.types import EventTypes
from concursus_lab.exceptions import IncompleteRead, SourceError, SourceUnavailable
from concursus_lab.frame.schema import SCHEMA
from concursus_lab.sources.base import Source
from concursus_lab.sources.cassandra import paging
from concursus_lab.sources.cassandra.connect import START_HINT, check_keyspace
from concursus_lab.sources.cassandra.queries import ring_ranges
from concursus_lab.sources.cassandra.session import Connected
from concursus_lab.sources.pekko import names, reading
from concursus_lab.sources.pekko.collect import Pages
from concursus_lab.sources.pekko.journal import Journal, empty_quarantine
from concursus_lab.sources.pekko.rows import CQL_COLUMNS
from concursus_lab.sources.quarantine import warn_quarantined
from concursus_lab.sources.query import Query

#: URL scheme -> the journal keyspace its plugin writes by default.
SCHEMES = {"pekko+cassandra": "pekko", "akka+cassandra": "akka"}
#: Options a URL's query string may carry (besides the connection's own).
URL_OPTIONS = (
    "event_time",
    "parameters",
    "stream_id",
    "time_unit",
    "time_zone",
    "initial",
    "terminal",
    "names",
    "untyped",
    "table",
    "partition_size",
)
_MICROSECOND = dt.timedelta(microseconds=1)


class PekkoSource(Connected, Source):
    """A Pekko (or Akka) Persistence journal in Cassandra; ``cl.open("pekko+cassandra://...")``.

    Parameters
    ----------
    url
        ``pekko+cassandra://host1,host2:9042/<journal keyspace>`` (``akka+cassandra://`` for
        Akka's; the keyspace defaults to ``pekko`` or ``akka``). Its query string may carry
        the options below (``?event_time=addedAt&initial=CartCreated``).
    event_time
        The events' own time field (a dotted path: ``"addedAt"``, ``"meta.at"``). None: the
        write time (the ``timestamp`` time UUID), which is also the processing time.
    parameters
        The field holding the parameters (None: the event's fields, all of them).
    stream_id
        A field naming the event's stream (None: ``""``, the default stream).
    time_unit, time_zone
        For an ``event_time`` of epoch numbers (``"ms"``, ...) or naive times, as in a
        :class:`~concursus_lab.Mapping`: said, never guessed.
    types, initial, terminal
        Declared event types, or the names of initial and terminal events.
    names
        ``"short"`` (``ItemAdded``, default) or ``"class"`` (the manifest's class name).
    untyped
        The aggregate type of persistence ids without the ``Type|id`` form (``"entity"``).
    table, persistence_ids_table
        The journal's table names (the plugin's defaults).
    partition_size
        The journal's ``target-partition-size`` (500000 by default, as the plugin's): where
        an entity's sequence range starts (:meth:`events_by_persistence_id`).
    consistency, username, password, tls, ca_file, local_dc, concurrency, splits,
    fetch_size, retries, timeout
        The connection, as for ``cassandra://`` sources (docs/cassandra.md).
    """

    takes_mapping = False

    def __init__(
        self,
        url: str = "pekko+cassandra://127.0.0.1:9042/pekko",
        *,
        event_time: str | None = None,
        parameters: str | None = None,
        stream_id: str | None = None,
        time_unit: str | None = None,
        time_zone: str | None = None,
        types: EventTypes | None = None,
        initial: Iterable[str] | str = (),
        terminal: Iterable[str] | str = (),
        names: str = "short",
        untyped: str = "entity",
        table: str = "messages",
        persistence_ids_table: str = "all_persistence_ids",
        partition_size: int = 500_000,
        consistency: str | None = None,
        username: str | None = None,
        password: str | None = None,
        tls: bool | ssl.SSLContext | None = None,
        ca_file: str | None = None,
        local_dc: str | None = None,
        concurrency: int = 8,
        splits: int | None = None,
        fetch_size: int = 5000,
        retries: int = 10,
        timeout: float = 30.0,
    ):
        cassandra_url, scheme, _keyspace = _cassandra_url(url)
        journal = Journal(
            event_time=event_time,
            parameters=parameters,
            stream_id=stream_id,
            time_unit=time_unit,
            time_zone=time_zone,
            types=types,
            initial=[initial] if isinstance(initial, str) else initial,
            terminal=[terminal] if isinstance(terminal, str) else terminal,
            names=names,
            untyped=untyped,
        )
        tables = reading.Tables(check_keyspace(table), check_keyspace(persistence_ids_table))
        if not isinstance(partition_size, int) or partition_size < 1:
            raise SourceError(f"`partition_size` must be a positive int, got {partition_size!r}.")
        self.journal, self.tables, self._partition_size = journal, tables, partition_size
        self._quarantine = empty_quarantine()
        self._connect(
            cassandra_url,
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
        self.scheme = scheme
        self.url = f"{scheme}://{self.url.split('://', 1)[1]}"  # without credentials or options
        try:
            self._has_ids = self._check_tables()
        except BaseException:
            self.close()
            raise

    @classmethod
    def from_url(cls, url: str, **options: Any) -> PekkoSource:
        """What :func:`concursus_lab.open` calls for ``pekko+cassandra://`` and
        ``akka+cassandra://`` URLs; the URL's query string may carry options."""
        query = urllib.parse.urlsplit(url).query
        given = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
        for option in URL_OPTIONS:
            if option in given and option not in options:
                value: Any = given[option]
                if option in ("initial", "terminal"):
                    value = [v for v in value.split(",") if v]
                elif option == "partition_size":
                    value = _int(value, option)
                options[option] = value
        return cls(url, **options)

    def _check_tables(self) -> bool:
        """Raise unless the keyspace holds a journal; whether it has ``all_persistence_ids``."""
        found = self._cluster.metadata.keyspaces.get(self.keyspace)
        if found is None:
            raise SourceUnavailable(
                f"keyspace {self.keyspace!r} does not exist at {self.url}: name the journal's "
                "keyspace (the plugin's `journal.keyspace` setting; `pekko` or `akka` by "
                f"default). Keyspaces there: {', '.join(sorted(self._cluster.metadata.keyspaces))}."
            )
        table = found.tables.get(self.tables.messages)
        if table is None:
            raise SourceUnavailable(
                f"{self.keyspace}.{self.tables.messages} does not exist at {self.url}: is "
                f"{self.keyspace!r} a Pekko or Akka journal keyspace? Its tables: "
                f"{', '.join(sorted(found.tables)) or 'none'}."
            )
        missing = [c for c in (*CQL_COLUMNS, "partition_nr") if c not in table.columns]
        if missing:
            raise SourceError(
                f"{self.keyspace}.{self.tables.messages} is not a Pekko or Akka journal table "
                f"(written by pekko-persistence-cassandra 1.x or akka-persistence-cassandra "
                f"1.x): it has no column {', '.join(missing)}."
            )
        return self.tables.persistence_ids in found.tables

    # -- reading ---------------------------------------------------------------------------

    def persistence_ids(self) -> list[str]:
        """Every persistence id of the journal (its ``all_persistence_ids`` table), sorted."""
        self._check_open()
        if not self._has_ids:
            raise SourceError(
                f"{self.keyspace}.{self.tables.persistence_ids} does not exist at {self.url} "
                "(the plugin's `support-all-persistence-ids = off`?); read the events and "
                "take their aggregate ids instead."
            )
        ranges = ring_ranges(self._cluster.metadata, self._splits)
        tasks = reading.persistence_id_tasks(self._prepare, self.tables, ranges, self._fetch_size)
        found: list[str] = []

        def keep(task: paging.Task, rows: list) -> None:
            found.extend(r[0] if isinstance(r[0], str) else r[0].decode() for r in rows)

        try:
            self._run(tasks, keep)
        except paging.Stopped as stop:
            raise SourceUnavailable(
                f"could not read the persistence ids of {self.url} ({stop.cause}). {START_HINT}"
            ) from stop.cause
        return sorted(found)

    def _events(self, query: Query, progress: bool | None) -> pl.DataFrame:
        self._check_open()
        if query.aggregate_ids == ():
            self._quarantine = empty_quarantine()
            return pl.DataFrame(schema={**SCHEMA, "sequence": pl.Int64})
        pids = self._wanted(query)
        pages = Pages(self.journal, self._raw, progress, self.url)
        if pids is None:
            ranges = ring_ranges(self._cluster.metadata, self._splits)
            tasks = reading.scan_tasks(
                self._prepare, self.tables, ranges, self._fetch_size, self._times(query)
            )
            self._read(pages, tasks, "token ranges", query)
        else:
            wanted = [reading.Partitions(pid, 0) for pid in pids]
            self._partitions(pages, wanted, (None, None), query)
        return self._finish(pages, query)

    def events_by_persistence_id(
        self,
        persistence_id: str,
        from_sequence_nr: int = 1,
        to_sequence_nr: int | None = None,
        *,
        progress: bool | None = None,
    ) -> pl.DataFrame:
        """One persistence id's events with ``from_sequence_nr <= sequence_nr <=
        to_sequence_nr``, in sequence order (as Pekko's ``currentEventsByPersistenceId``);
        the range is asked of the server."""
        self._check_open()
        low, high = _int(from_sequence_nr, "from_sequence_nr"), to_sequence_nr
        if high is not None:
            high = _int(high, "to_sequence_nr")
        pages = Pages(self.journal, self._raw, progress, self.url)
        first = max(0, (low - 1) // self._partition_size)
        query = Query.of(duplicates="keep")
        self._partitions(pages, [reading.Partitions(persistence_id, first)], (low, high), query)
        return self._finish(pages, query)

    def _wanted(self, query: Query) -> list[str] | None:
        """The persistence ids to read one by one, or None to scan the whole table."""
        kind, ids = query.aggregate_type, query.aggregate_ids
        if kind is not None and ids is not None:
            return [p for i in ids for p in names.persistence_id(kind, i, self.journal.untyped)]
        if (kind is None and ids is None) or not self._has_ids:
            return None
        every = self.persistence_ids()
        frame = pl.DataFrame({"persistence_id": every}, schema={"persistence_id": pl.String})
        frame = frame.with_columns(*names.aggregate("persistence_id", self.journal.untyped))
        if kind is not None:
            frame = frame.filter(pl.col("aggregate_type") == kind)
        if ids is not None:
            frame = frame.filter(pl.col("aggregate_id").is_in(list(ids)))
        chosen = frame["persistence_id"].to_list()
        return None if len(chosen) > len(every) // 2 else chosen  # most of it: a scan is faster

    def _times(self, query: Query) -> reading.WriteTimes:
        """The write times ``query`` needs, when the write time is what it cuts on."""
        start = end = None
        if self.journal.event_time is None:
            start, end = query.event_start, query.event_end
        if query.known_at is not None:
            known = query.known_at + _MICROSECOND
            end = known if end is None else min(end, known)
        return reading.WriteTimes(start, end)

    def _partitions(self, pages: Pages, wanted: list, sequence: tuple, query: Query) -> None:
        while wanted:
            tasks = reading.partition_tasks(
                self._prepare, self.tables, wanted, self._fetch_size, sequence
            )
            self._read(pages, tasks, "persistence ids", query, partitions=True)
            wanted = [reading.Partitions(w.persistence_id, w.first + 2) for w in wanted if w.later]

    def _read(self, pages: Pages, tasks: list, unit: str, query: Query, *, partitions=False):
        bar = progress_bar(pages.progress, total=len(tasks), what=f"reading {self.url}", unit=unit)
        on_page = pages.add_partitions if partitions else pages.add
        try:
            with paused_gc():  # the driver's tuples and the payloads' dicts hold no cycles
                self._run(
                    tasks,
                    on_page,
                    lambda task: bar.update(1),
                    concurrency=max(32, self._concurrency) if partitions else None,
                )
        except paging.Stopped as stop:
            mapped = pages.result()
            self._quarantine = mapped.quarantine
            why = (
                "it was interrupted"
                if isinstance(stop.cause, KeyboardInterrupt)
                else (f"{type(stop.cause).__name__}: {stop.cause}")
            )
            raise IncompleteRead(
                f"the read of {self.url} stopped because {why}, after {stop.finished:,} of "
                f"{len(tasks):,} {unit}; `.partial` holds the {mapped.events.height:,} events "
                f"read. {START_HINT} Then read again.",
                partial=query.apply(mapped.events),
            ) from stop.cause
        finally:
            bar.close()

    def _finish(self, pages: Pages, query: Query) -> pl.DataFrame:
        with paused_gc():  # the last chunks are decoded now
            mapped = pages.result()
        self._quarantine = mapped.quarantine
        warn_quarantined(mapped.quarantine, "journal row(s)", self.url, stacklevel=5)
        return query.apply(mapped.events)  # by aggregate, in sequence order: apply keeps it

    @property
    def quarantine(self) -> pl.DataFrame:
        """The journal rows the last read could not make events of: ``reason``, the row's key,
        ``ser_id``, its manifests and ``raw`` (the payload as stored)."""
        return self._quarantine

    # -- never written -------------------------------------------------------------------------

    def append(self, frame: pl.DataFrame, *, progress: bool | None = None) -> int:
        raise SourceError(
            f"{self.url} is a {self.scheme.split('+')[0].capitalize()} journal: it is read, "
            "never written from here. Its sequence numbers and writer ids belong to the "
            "application that persists the events, and a row written beside it would break "
            "its recovery. Copy the events into a store to work on them: "
            f"cl.copy(cl.open({self.url!r}), 'data/journal', create=True)."
        )

    # -- describing and closing --------------------------------------------------------------

    def __repr__(self) -> str:
        state = "closed" if self._cluster is None else f"consistency {self._consistency}"
        return f"PekkoSource({self.url!r}: {self.journal.describe()}; {state})"


def _cassandra_url(url: str) -> tuple[str, str, str]:
    """The ``cassandra://`` URL of a journal URL, its scheme and its keyspace."""
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in SCHEMES:
        raise SourceError(
            f"not a journal URL: {url!r}; write e.g. 'pekko+cassandra://127.0.0.1:9042/pekko' "
            "(or 'akka+cassandra://...')."
        )
    location, _sep, query = rest.partition("?")
    hosts, _, keyspace = location.partition("/")
    keyspace = check_keyspace(keyspace.strip("/") or SCHEMES[scheme])
    kept = urllib.parse.urlencode(
        [(k, v) for k, v in urllib.parse.parse_qsl(query) if k not in URL_OPTIONS]
    )
    return f"cassandra://{hosts}/{keyspace}" + (f"?{kept}" if kept else ""), scheme, keyspace


def _int(value: Any, name: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise SourceError(f"`{name}` must be a whole number, got {value!r}.") from None
    if number < 0 or (isinstance(value, float) and value != number):
        raise SourceError(f"`{name}` must be a whole number >= 0, got {value!r}.")
    return number
