"""What the mapped reads of tables and topics share: their frame's shape, and fields no row has.

A table or topic of your own shape is read in batches (pages of a table, fetches of a topic),
each mapped on its own by :class:`~concursus_lab.mapping.Plan`. Two things are the same for
every such source, so they are said here once:

* :func:`events_schema`: the columns a mapped read gives for a mapping, so that a read that
  finds nothing has the same columns as one that finds something;
* :func:`columns_read`: the columns a mapping reads, so a table's read selects no other;
* :func:`absent_fields`: the fields a mapping names that a batch has no column for (an
  optional field no record of a fetch happened to carry). Each becomes a column of nulls, so
  the rows that needed it go to the quarantine with their reason rather than the read
  failing.

>>> import polars as pl, concursus_lab as cl
>>> m = cl.Mapping(aggregate_type="order", aggregate_id="id", name="type",
...                event_time="at", sequence="seq", stream_id="body.stream")
>>> list(events_schema(m))[-2:]
['characteristics', 'sequence']
>>> absent_fields(m, pl.Schema({"id": pl.String, "type": pl.String, "at": pl.String,
...                             "body": pl.Struct({"x": pl.Int64})}))
['seq', 'body.stream']
"""

from __future__ import annotations

import polars as pl

from concursus_lab.frame.schema import SCHEMA
from concursus_lab.mapping import Mapping, Plan
from concursus_lab.mapping.fields import resolve
from concursus_lab.mapping.spec import FIELDS


def events_schema(mapping: Mapping, extra: pl.Schema | None = None) -> pl.Schema:
    """The columns a read through ``mapping`` gives: the canonical ten, the identity columns
    the mapping fills (``sequence``, ``event_id``), then ``extra`` (the source's own)."""
    columns = dict(SCHEMA)
    if mapping.sequence is not None:
        columns["sequence"] = pl.Int64
    content = mapping.identity == "own" and mapping.sequence is None
    if mapping.event_id is not None or content:
        columns["event_id"] = pl.String
    return pl.Schema({**columns, **dict(extra or {})})


def absent_fields(mapping: Mapping, schema: pl.Schema) -> list[str]:
    """The fields (names or dotted paths) ``mapping`` names that ``schema`` has no column or
    struct field for; JSON text columns may hold any path, so paths into them are present."""
    named = [getattr(mapping, f) for f in FIELDS if f != "aggregate_type"]  # a name, not a column
    if isinstance(mapping.parameters, str):
        named.append(mapping.parameters)
    elif mapping.parameters is not None:
        named.extend(mapping.parameters)
    return [f for f in named if isinstance(f, str) and not _present(f, schema)]


def _present(field: str, schema: pl.Schema) -> bool:
    if field in schema:
        return True
    parts = field.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        head = ".".join(parts[:cut])
        if head in schema:
            dtype = schema[head]
            for part in parts[cut:]:
                if dtype == pl.String:
                    return True
                if not isinstance(dtype, pl.Struct):
                    return False
                fields = {f.name: f.dtype for f in dtype.fields}
                if part not in fields:
                    return False
                dtype = fields[part]
            return True
    return False


def with_absent(frame: pl.DataFrame, mapping: Mapping) -> pl.DataFrame:
    """``frame`` with a text column of nulls for each field of ``mapping`` it lacks."""
    missing = absent_fields(mapping, frame.schema)
    if not missing:
        return frame
    return frame.with_columns(pl.lit(None, pl.String).alias(f) for f in dict.fromkeys(missing))


def columns_read(plan: Plan) -> set[str]:
    """The columns of the data that ``plan``'s mapping reads (its fields' and parameters')."""
    mapping, schema = plan.mapping, plan.schema
    read = set(plan.parameter_columns)
    fields = {f: getattr(mapping, f) for f in FIELDS}
    if isinstance(mapping.parameters, str):
        fields["parameters"] = mapping.parameters
    for role, field in fields.items():
        if field is None or (role == "aggregate_type" and isinstance(field, str)):
            continue
        read.update(resolve(field, schema, role).expr.meta.root_names())
    return read
