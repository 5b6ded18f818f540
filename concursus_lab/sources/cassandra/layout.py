"""A table of your own shape: its layout, the columns a read selects, and the SELECTs it runs.

:func:`layout_of` reads a table's layout from the cluster's metadata (partition key,
clustering columns, every column's CQL type). :class:`Selection` is what a read through a
mapping selects: only the columns the mapping reads, and the ``WRITETIME`` of the non-key
ones among them when the processing time comes from the write time. :func:`read_tasks` turns
a query into statements, pushing down what the table's key allows:

* the aggregate id (and the aggregate type, when a column holds it) when they make up the
  partition key: one prepared partition query per aggregate, run concurrently;
* otherwise a full scan split over token ranges of the partition key;
* in both, the event-time range when the event time is a ``timestamp`` column that is the
  first clustering column or no key at all, and the aggregate type when a text column holds
  it (filtered by the server).

Everything the server cannot filter, :meth:`~concursus_lab.sources.query.Query.apply` does
after mapping, so a pushed-down filter only ever narrows the read.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

import polars as pl

from concursus_lab.exceptions import SourceError, SourceUnavailable
from concursus_lab.frame.schema import TIME
from concursus_lab.mapping import Mapping
from concursus_lab.sources.cassandra import cql_types, paging
from concursus_lab.sources.cassandra.cql_types import CqlType
from concursus_lab.sources.cassandra.queries import millis
from concursus_lab.sources.query import Query

#: The column a mapping may name for a row's write time (the latest of the non-key cells it
#: reads): the processing time when the mapping names none.
WRITETIME = "cassandra.writetime"

#: Collections that are not frozen are many cells, with no one write time.
_MULTI_CELL = re.compile(r"^(list|set|map)<")
_INTEGERS = ("int", "bigint", "smallint", "tinyint", "varint")
#: Key types a query's aggregate id (text) can be turned into, to read partitions directly.
_KEY_TYPES = ("text", "varchar", "ascii", *_INTEGERS, "uuid", "timeuuid")


@dataclass(frozen=True)
class Layout:
    """A table's partition key, clustering columns and every column's CQL type."""

    keyspace: str
    table: str
    partition_key: tuple[str, ...]
    clustering: tuple[str, ...]
    types: dict[str, CqlType]
    multi_cell: frozenset[str]

    def schema(self) -> pl.Schema:
        """The table's columns as polars types, and :data:`WRITETIME`."""
        columns = {name: cql_types.dtype(t) for name, t in self.types.items()}
        return pl.Schema({**columns, WRITETIME: TIME})

    def regular(self) -> list[str]:
        """The columns that are no part of the primary key."""
        keys = {*self.partition_key, *self.clustering}
        return [c for c in self.types if c not in keys]

    def name(self) -> str:
        return f"{quote(self.keyspace)}.{quote(self.table)}"


def layout_of(metadata: Any, keyspace: str, table: str, url: str) -> Layout:
    """The layout of ``keyspace.table``, or an error naming the tables there are."""
    found = metadata.keyspaces.get(keyspace)
    if found is None:
        raise SourceUnavailable(f"keyspace {keyspace!r} does not exist at {url}.")
    meta = found.tables.get(table) or found.tables.get(table.lower())
    if meta is None:
        there = ", ".join(sorted(found.tables)) or "none"
        raise SourceError(
            f"table {keyspace}.{table} does not exist at {url} (its tables: {there}); name one "
            "with ?table=..."
        )

    def user_type(name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        udt = found.user_types.get(name)
        if udt is None:
            raise SourceError(f"the CQL type {name!r} of {keyspace}.{table} is not known.")
        return tuple(udt.field_names), tuple(udt.field_types)

    types, multi = {}, set()
    for name, column in meta.columns.items():
        types[name] = cql_types.parse(column.cql_type, user_type)
        if _MULTI_CELL.match(column.cql_type):
            multi.add(name)
    return Layout(
        keyspace,
        meta.name,
        tuple(c.name for c in meta.partition_key),
        tuple(c.name for c in meta.clustering_key),
        types,
        frozenset(multi),
    )


def quote(name: str) -> str:
    """A CQL identifier, quoted where it must be."""
    from cassandra.metadata import protect_name

    return protect_name(name)


@dataclass(frozen=True)
class Selection:
    """The columns a read selects, and those whose ``WRITETIME`` it reads (their latest is a
    row's :data:`WRITETIME`)."""

    columns: tuple[str, ...]
    written: tuple[str, ...]

    def cql(self, layout: Layout) -> str:
        cells = [quote(c) for c in self.columns] + [f"WRITETIME({quote(c)})" for c in self.written]
        return f"SELECT {', '.join(cells)} FROM {layout.name()}"


def selection(layout: Layout, read: set[str], *, write_times: bool) -> Selection:
    """What to select for a mapping that reads the columns ``read``; ``write_times`` when the
    processing time comes from the write time."""
    columns = tuple(c for c in layout.types if c in read)
    written: tuple[str, ...] = ()
    if write_times or WRITETIME in read:
        single = [c for c in layout.regular() if c not in layout.multi_cell]
        written = tuple(c for c in single if c in read) or tuple(single)
        if not written:
            raise SourceError(
                f"{layout.keyspace}.{layout.table} has no non-key column to read a write time "
                "from, and the mapping names no processing time: map one, "
                "cl.Mapping(..., processing_time='<column>')."
            )
    return Selection(columns or (layout.partition_key[0],), written)


# -- the statements a read runs ----------------------------------------------------------------


def plain(field: Any, layout: Layout) -> str | None:
    """The table column a mapping field names as it is, else None."""
    if isinstance(field, pl.Expr):
        field = field.meta.output_name() if field.meta.is_column() else None
    return field if isinstance(field, str) and field in layout.types else None


def read_tasks(
    prepare: Any,
    layout: Layout,
    chosen: Selection,
    mapping: Mapping,
    query: Query,
    ranges: list[tuple[int, int]],
    fetch_size: int,
) -> tuple[list[paging.Task], str]:
    """The statements for ``query``: one per aggregate when its id (and type) make up the
    partition key, else one per token range; and what a task is, for the progress bar."""
    where, binds = _pushed(layout, mapping, query)
    keys = _partitions(layout, mapping, query)
    if keys is not None:
        condition = " AND ".join(f"{quote(c)} = ?" for c in layout.partition_key)
        statement = _statement(prepare, chosen.cql(layout), [condition, *where])
        tasks = []
        for key in keys:
            bound = statement.bind((*key, *binds))
            bound.fetch_size = fetch_size
            tasks.append(paging.Task(bound, f"partition {key!r}"))
        return tasks, "partitions"
    token = f"token({', '.join(quote(c) for c in layout.partition_key)})"
    statement = _statement(prepare, chosen.cql(layout), [f"{token} > ? AND {token} <= ?", *where])
    tasks = []
    for i, (start, end) in enumerate(ranges):
        bound = statement.bind((start, end, *binds))
        bound.fetch_size = fetch_size
        tasks.append(paging.Task(bound, f"token range {i + 1}/{len(ranges)} ({start}, {end}]"))
    return tasks, "token ranges"


def _statement(prepare: Any, select: str, conditions: list[str]) -> Any:
    text = f"{select} WHERE {' AND '.join(conditions)}"
    if len(conditions) > 1:
        text += " ALLOW FILTERING"  # the server filters what the key does not select
    return prepare(text.replace("{", "{{").replace("}", "}}"))


def _pushed(layout: Layout, mapping: Mapping, query: Query) -> tuple[list[str], list[Any]]:
    """Conditions the server can check besides the key: the type column, the event time."""
    where, binds = [], []
    kind = plain(mapping.aggregate_type, layout)
    if (
        query.aggregate_type is not None
        and kind is not None
        and kind not in layout.partition_key
        and layout.types[kind].name in ("text", "varchar", "ascii")
    ):
        where.append(f"{quote(kind)} = ?")
        binds.append(query.aggregate_type)
    at = plain(mapping.event_time, layout)
    first = layout.clustering[:1]
    if (
        at is not None
        and layout.types[at].name == "timestamp"
        and (at in first or at in layout.regular())
    ):
        if query.event_start is not None:
            where.append(f"{quote(at)} >= ?")
            binds.append(millis(query.event_start))
        if query.event_end is not None:
            where.append(f"{quote(at)} < ?")
            binds.append(millis(query.event_end))
    return where, binds


def _partitions(layout: Layout, mapping: Mapping, query: Query) -> list[tuple] | None:
    """The partition keys that hold the query's aggregates, when the key is made of the
    aggregate id (and type); None when a scan is needed."""
    if query.aggregate_ids is None:
        return None
    id_column = plain(mapping.aggregate_id, layout)
    kind = plain(mapping.aggregate_type, layout)
    parts: list[list[Any]] = []
    for column in layout.partition_key:
        t = layout.types[column]
        if t.name not in _KEY_TYPES:
            return None
        if column == id_column:
            parts.append([_as(t, v) for v in query.aggregate_ids])
        elif column == kind and query.aggregate_type is not None:
            parts.append([_as(t, query.aggregate_type)] * len(query.aggregate_ids))
        else:
            return None
    # a value that cannot be of its column's type is in no partition
    return [key for key in zip(*parts, strict=True) if _NO_KEY not in key]


_NO_KEY = object()


def _as(t: CqlType, value: str) -> Any:
    """A query's text value as a key value of type ``t``; :data:`_NO_KEY` when it cannot be
    one (so no row has it)."""
    if t.name in _INTEGERS:
        return int(value) if re.fullmatch(r"-?[0-9]+", value) else _NO_KEY
    if t.name in ("uuid", "timeuuid"):
        try:
            return uuid.UUID(value)
        except ValueError:
            return _NO_KEY
    return value
