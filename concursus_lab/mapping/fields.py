"""One field of a mapping as a polars expression over the user's data.

A field is a column name, a dotted path into a struct column or a JSON text column
(``"payload.order.id"``), or a polars expression. :func:`resolve` turns it into an expression,
its dtype and the column it reads, or a :class:`~concursus_lab.exceptions.SchemaError` that
names the columns the data has and the one whose values fit.

>>> import polars as pl
>>> schema = pl.Schema({"order": pl.Struct({"id": pl.Int64}), "body": pl.String})
>>> resolve("order.id", schema, "aggregate_id").dtype
Int64
>>> resolve("body.customer.name", schema, "name").expr.meta.root_names()
['body']
>>> resolve("oder.id", schema, "aggregate_id")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
concursus_lab.exceptions.SchemaError: `aggregate_id='oder.id'`: the data has no column 'oder'. ...
"""

from __future__ import annotations

import dataclasses

import polars as pl

from concursus_lab.common.text import clip
from concursus_lab.exceptions import SchemaError
from concursus_lab.frame.suggest import fitting

#: The canonical column each mapping field fills (for the hint of what would fit).
CANONICAL = {
    "event_time": "event_timestamp",
    "processing_time": "processing_timestamp",
}


@dataclasses.dataclass(frozen=True)
class Resolved:
    """A field as an expression over the data: its dtype, and the column it reads (None for an
    expression that reads several or none)."""

    expr: pl.Expr
    dtype: pl.DataType
    column: str | None


def resolve(field: str | pl.Expr, schema: pl.Schema, role: str) -> Resolved:
    """``field`` as an expression over data of ``schema``; ``role`` names the mapping's field
    in messages (``"aggregate_id"``)."""
    if isinstance(field, pl.Expr):
        try:
            dtype = pl.LazyFrame(schema=schema).select(field).collect_schema().dtypes()[0]
        except pl.exceptions.PolarsError as exc:
            raise SchemaError(
                f"`{role}={field}` cannot be worked out over the data's columns "
                f"({_columns(schema)}): {clip(str(exc).splitlines()[0], 120)}"
            ) from None
        roots = field.meta.root_names()
        return Resolved(field, dtype, roots[0] if len(roots) == 1 else None)
    if field in schema:
        return Resolved(pl.col(field), schema[field], field)
    parts = field.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        head = ".".join(parts[:cut])
        if head in schema:
            return _path(head, parts[cut:], schema[head], role, field)
    raise SchemaError(
        f"`{role}={field!r}`: the data has no column {parts[0]!r}. Its columns: "
        f"{_columns(schema)}.{_hint(role, schema)}"
    )


def _path(head: str, rest: list[str], dtype: pl.DataType, role: str, field: str) -> Resolved:
    expr = pl.col(head)
    if dtype == pl.String:  # JSON text: the value at that path, as text
        path = "$." + ".".join(rest)
        return Resolved(expr.str.json_path_match(path), pl.String, head)
    for depth, part in enumerate(rest):
        if not isinstance(dtype, pl.Struct):
            at = ".".join([head, *rest[:depth]])
            raise SchemaError(
                f"`{role}={field!r}`: {at!r} is {dtype}, not a struct or JSON text, so it has "
                f"no field {part!r}."
            )
        fields = {f.name: f.dtype for f in dtype.fields}
        if part not in fields:
            at = ".".join([head, *rest[:depth]])
            raise SchemaError(
                f"`{role}={field!r}`: {at!r} has no field {part!r}; its fields: "
                f"{', '.join(fields) or 'none'}."
            )
        expr, dtype = expr.struct.field(part), fields[part]
    return Resolved(expr, dtype, head)


def _columns(schema: pl.Schema) -> str:
    shown = [f"{name} ({dtype})" for name, dtype in list(schema.items())[:12]]
    more = len(schema) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def _hint(role: str, schema: pl.Schema) -> str:
    near = fitting(CANONICAL.get(role, role), schema)
    return f" Did you mean {near[0]!r}?" if near else ""
