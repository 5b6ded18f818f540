"""Any Cassandra table of your own events, read through a mapping.

>>> orders = cl.open("cassandra://127.0.0.1:9042/shop?table=orders",      # doctest: +SKIP
...                  mapping=cl.Mapping(aggregate_type="order", aggregate_id="order_id",
...                                     name="event_type", event_time="occurred_at"))
>>> orders.events(aggregate_ids=["A-00001"])                               # doctest: +SKIP

A read selects only the columns the mapping reads, over token ranges of the table's
partition key run concurrently page by page, or, when the aggregate id (and type) make up
the partition key and the query names aggregates, one partition query per aggregate; the
event-time range and the aggregate type are filtered by the server where the table allows
(:mod:`.layout`). Cells arrive as the bytes Cassandra sent and become columns a column at a
time (:mod:`.cql_types`), as for Concursus's ``Event`` table; then the mapping makes the
canonical frame (:class:`~concursus_lab.mapping.Plan`), and rows that do not map go to
:attr:`~TableSource.quarantine` with the reason.

Processing time: what the mapping names, else the row's write time, the latest
``WRITETIME`` of the non-key cells the mapping reads (microseconds, as the writer set them):
when Cassandra last wrote what the row says. A mapping may name it as
``"cassandra.writetime"`` too. A table keeps one row per primary key, so there is one
delivery per key: the last written.

Tables of your own shape are read, never written: ``append`` says how to copy them into a
store. Faults are as for the ``Event`` table: a page is asked for again while the server is
away, then :class:`~concursus_lab.exceptions.IncompleteRead` holds what was read.
"""

from __future__ import annotations

import ssl
from itertools import chain
from typing import Any

import numpy as np
import polars as pl

from concursus_lab.exceptions import SourceError
from concursus_lab.frame.schema import TIME
from concursus_lab.mapping import Mapping, Plan
from concursus_lab.mapping.quarantine import QUARANTINE
from concursus_lab.sources.base import Source
from concursus_lab.sources.cassandra import cql_types, layout, paging
from concursus_lab.sources.cassandra.columns import Reasons
from concursus_lab.sources.cassandra.layout import WRITETIME, Layout, Selection
from concursus_lab.sources.cassandra.queries import ring_ranges
from concursus_lab.sources.cassandra.reader import Reader, incomplete
from concursus_lab.sources.cassandra.session import Connected
from concursus_lab.sources.mapped import columns_read, events_schema
from concursus_lab.sources.quarantine import warn_quarantined
from concursus_lab.sources.query import Query

_ROW = "__read row"


class TableSource(Connected, Source):
    """A Cassandra table of your own events; see the module docstring.

    Parameters
    ----------
    url
        ``cassandra://host1,host2:9042/keyspace`` (credentials, TLS and consistency as for
        :class:`~concursus_lab.sources.cassandra.source.CassandraSource`).
    table
        The table's name.
    mapping
        How its columns map onto the canonical frame (:class:`~concursus_lab.Mapping`).
    concurrency, splits, fetch_size, retries, timeout
        As for the ``Event`` table.
    """

    takes_mapping = True

    def __init__(
        self,
        url: str,
        *,
        table: str,
        mapping: Mapping,
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
        if not isinstance(mapping, Mapping):
            raise SourceError(f"`mapping` must be a cl.Mapping, got {type(mapping).__name__}.")
        if not isinstance(table, str) or not table:
            raise SourceError(f"`table` must name a table, got {table!r}.")
        self.mapping = mapping
        self._quarantine = pl.DataFrame(schema=QUARANTINE)
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
            self.layout: Layout = layout.layout_of(
                self._cluster.metadata, self.keyspace, table, self.url
            )
            from_writes = not mapping.maps_processing_time
            self._plan = Plan(
                mapping,
                self.layout.schema(),
                processing=pl.col(WRITETIME) if from_writes else None,
                reserved=[WRITETIME],
            )
            read = columns_read(self._plan)
            self._selection: Selection = layout.selection(
                self.layout, read, write_times=from_writes
            )
        except BaseException:
            self.close()
            raise
        self._from_writes = from_writes or WRITETIME in read
        self.url = f"{self.url}?table={self.layout.table}"
        self._schema = events_schema(mapping)

    # -- reading ---------------------------------------------------------------------------

    def _events(self, query: Query, progress: bool | None) -> pl.DataFrame:
        self._check_open()
        kind = self.mapping.aggregate_type
        if query.aggregate_ids == () or (
            isinstance(kind, str) and query.aggregate_type not in (None, kind)
        ):
            self._quarantine = pl.DataFrame(schema=QUARANTINE)
            return pl.DataFrame(schema=self._schema)
        ranges = ring_ranges(self._cluster.metadata, self._splits)
        tasks, unit = layout.read_tasks(
            self._prepare,
            self.layout,
            self._selection,
            self.mapping,
            query,
            ranges,
            self._fetch_size,
        )
        concurrency = max(32, self._concurrency) if unit == "partitions" else self._concurrency
        reader = Reader(
            len(tasks),
            unit,
            progress,
            self.url,
            raw=self._raw,
            decode=self._decode,
            sent=self._as_sent(tasks),
            what="rows",
        )
        with reader:
            try:
                self._run(tasks, reader.add, reader.task_done, concurrency=concurrency)
            except paging.Stopped as stop:
                events, self._quarantine = self._mapped(*reader.result())
                raise incomplete(
                    events,
                    stop,
                    len(tasks),
                    unit,
                    query,
                    self.url,
                    note="mapped; rows that did not map are in `.quarantine`",
                ) from stop.cause
            events, self._quarantine = self._mapped(*reader.result())
        warn_quarantined(self._quarantine, "row(s)", self.url, stacklevel=4)
        return query.apply(events)

    def _decode(self, rows: list) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Rows of raw cells (the selected columns, then their write times) as a frame of the
        table's columns and :data:`WRITETIME`; rows with a cell that cannot be read go to the
        quarantine."""
        chosen = self._selection
        names = [*chosen.columns, *(f"__written {c}" for c in chosen.written)]
        n, width = len(rows), len(names)
        flat = list(chain.from_iterable(rows))
        reasons = Reasons(n)
        columns = []
        for k, name in enumerate(chosen.columns):
            columns.append(cql_types.decode(flat[k::width], self.layout.types[name], reasons, name))
        written = [
            cql_types.decode(flat[k::width], cql_types.parse("bigint"), reasons, name)
            for k, name in enumerate(names)
            if k >= len(chosen.columns)
        ]
        latest = (
            pl.DataFrame(written).select(pl.max_horizontal(pl.all())).to_series()
            if written
            else pl.Series([None] * n, dtype=pl.Int64)
        )
        frame = (
            pl.DataFrame(columns).with_columns(latest.cast(pl.Int64).cast(TIME).alias(WRITETIME))
            if n
            else self._plan_input_empty()
        )
        bad = reasons.mask()
        if not bad.any():
            return frame, pl.DataFrame(schema=QUARANTINE)
        rows_bad = np.flatnonzero(bad)
        quarantine = pl.DataFrame(
            {
                "reason": reasons.texts(rows_bad),
                "row": pl.Series([None] * len(rows_bad), dtype=pl.Int64),
                "raw": _as_json(frame[rows_bad]),
            },
            schema=QUARANTINE,
        )
        return frame.filter(pl.Series(~bad)), quarantine

    def _plan_input_empty(self) -> pl.DataFrame:
        schema = self.layout.schema()
        return pl.DataFrame(schema={c: schema[c] for c in [*self._selection.columns, WRITETIME]})

    def _as_sent(self, tasks: list[paging.Task]) -> Any:
        """The public path: the driver's values back as the bytes Cassandra sent, by the
        types of the columns the statements select (every statement selects the same)."""
        metadata = tasks[0].statement.prepared_statement.result_metadata if tasks else []
        types = [column[3] for column in metadata]
        version = self._cluster.protocol_version
        return lambda rows: cql_types.as_sent(rows, types, version)

    def _mapped(self, frame: pl.DataFrame, bad: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        """The canonical events of the rows read, and every row set aside, with the reason."""
        frame = frame.with_row_index(_ROW)
        quarantines = [bad]
        if self._from_writes:
            unknown = frame[WRITETIME].is_null()
            if unknown.any():
                quarantines.append(
                    _rows(
                        frame.filter(unknown),
                        "no write time: the non-key columns it reads "
                        f"({', '.join(self._selection.written)}) are all null",
                    )
                )
                frame = frame.filter(~unknown)
        mapped = self._plan.run(frame.drop(_ROW).lazy())
        if mapped.quarantine.height:
            rows = frame[_ROW].cast(pl.Int64).gather(mapped.quarantine["row"])
            quarantines.append(mapped.quarantine.with_columns(rows.alias("row")))
        quarantine = pl.concat(quarantines) if len(quarantines) > 1 else bad
        return mapped.events.select(self._schema.names()), quarantine

    @property
    def quarantine(self) -> pl.DataFrame:
        """Rows the last read set aside: ``reason``, ``row`` (its place in the read) and
        ``raw`` (the row as JSON)."""
        return self._quarantine

    # -- never written -------------------------------------------------------------------

    def append(self, frame: pl.DataFrame, *, progress: bool | None = None) -> int:
        raise SourceError(
            f"{self.url} is a table of your own shape, read through a mapping, never written "
            "here (your application writes it). Copy it into a store and append there: "
            f"cl.copy(cl.open({self.url!r}, mapping=...), 'data/my-store', create=True)."
        )

    def __repr__(self) -> str:
        processing = "" if self.mapping.maps_processing_time else "processing time: write time; "
        return self._described("TableSource", f"{processing}{self.mapping!r}; ")


def _rows(frame: pl.DataFrame, reason: str) -> pl.DataFrame:
    """Rows of ``frame`` (with its read row numbers) as quarantine rows, all for ``reason``."""
    return pl.DataFrame(
        {
            "reason": [reason] * frame.height,
            "row": frame[_ROW].cast(pl.Int64),
            "raw": _as_json(frame.drop(_ROW)),
        },
        schema=QUARANTINE,
    )


def _as_json(frame: pl.DataFrame) -> pl.Series:
    """Each row as a JSON object (binary columns as hex), for the quarantine's ``raw``."""
    columns = [
        pl.col(c).bin.encode("hex") if t == pl.Binary else pl.col(c)
        for c, t in frame.schema.items()
    ]
    return frame.select(pl.struct(columns).struct.json_encode().cast(pl.Binary)).to_series()
