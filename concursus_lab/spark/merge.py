"""The buckets' answers joined into one frame: the frame one local call makes, or a refusal.

Each bucket of aggregates makes its own answer frame, with the columns its rows called for;
the driver joins them by the rules one local frame follows:

* a column's dtype is the buckets' supertype (a parameter that is an integer in one bucket and
  a float in another is a float, as one local frame makes it);
* a Struct whose fields differ between buckets has the union of their fields in name order.
  Only dicts make such Structs, and ``timetravel/state_columns.py`` puts a dict's keys in name
  order, so the union is the Struct the whole history would have made;
* a column's Struct fields are matched by name, never by position.

States must also be of one kind in every bucket (:func:`check_one_kind`): states of different
kinds (a dataclass here, dicts there) are, locally, one column of Python objects, which Spark
cannot carry (:func:`check_carried` refuses such a column in a bucket already).
"""

from __future__ import annotations

import polars as pl

from concursus_lab.exceptions import SchemaError

#: What to do when states cannot travel, said by every refusal below.
ONE_KIND = (
    "have the reducer return states of one class (one dataclass or named tuple, dicts of "
    "plain values, tuples of one length, or plain values), or ask this question locally "
    "(cl.state_at, cl.project), where states may be any Python objects"
)


def merged_schema(schemas: list[pl.Schema], what: str) -> pl.Schema:
    """One schema for frames of ``schemas`` (see the module docstring)."""
    try:
        merged = pl.concat([pl.DataFrame(schema=s) for s in schemas], how="diagonal_relaxed")
    except Exception as exc:
        kinds = _kinds_by_column(schemas)
        raise SchemaError(
            f"the {what} have columns of different kinds in different aggregates ({kinds}), "
            f"which no one Spark column holds: {ONE_KIND}."
        ) from exc
    return pl.Schema(
        {
            name: _sorted_where_different(dtype, [s[name] for s in schemas if name in s])
            for name, dtype in merged.schema.items()
        }
    )


def _sorted_where_different(dtype: pl.DataType, seen: list[pl.DataType]) -> pl.DataType:
    if isinstance(dtype, pl.Struct):
        structs = [d for d in seen if isinstance(d, pl.Struct)]
        fields = {f.name: f.dtype for f in dtype.fields}
        names = list(fields)
        if any([f.name for f in d.fields] != names for d in structs):
            names = sorted(names)
        inner = [{f.name: f.dtype for f in d.fields} for d in structs]
        return pl.Struct(
            {n: _sorted_where_different(fields[n], [d[n] for d in inner if n in d]) for n in names}
        )
    if isinstance(dtype, pl.List):
        inner_seen = [d.inner for d in seen if isinstance(d, pl.List)]
        return pl.List(_sorted_where_different(dtype.inner, inner_seen))  # type: ignore[arg-type]
    return dtype


def aligned(frame: pl.DataFrame, schema: pl.Schema) -> pl.DataFrame:
    """``frame`` with ``schema``'s columns, in its order and dtypes (a missing column null)."""
    if frame.schema == schema:
        return frame
    have = frame.schema
    return frame.select(
        [
            (_conformed(pl.col(n), have[n], d) if n in have else pl.lit(None, d)).alias(n)
            for n, d in schema.items()
        ]
    )


def _conformed(expr: pl.Expr, have: pl.DataType, want: pl.DataType) -> pl.Expr:
    """``expr`` (of dtype ``have``) as ``want``, Struct fields matched by name."""
    if have == want:
        return expr
    if isinstance(have, pl.Struct) and isinstance(want, pl.Struct):
        fields = {f.name: f.dtype for f in have.fields}
        parts = [
            (
                _conformed(expr.struct.field(f.name), fields[f.name], f.dtype)
                if f.name in fields
                else pl.lit(None, f.dtype)
            ).alias(f.name)
            for f in want.fields
        ]
        return pl.when(expr.is_not_null()).then(pl.struct(parts))
    if isinstance(have, pl.List) and isinstance(want, pl.List):
        return expr.list.eval(_conformed(pl.element(), have.inner, want.inner))  # type: ignore[arg-type]
    return expr.cast(want)


def check_one_kind(schemas: list[pl.Schema], what: str) -> None:
    """Refuse buckets whose states became different columns (states of different kinds)."""
    shapes = {tuple(s) for s in schemas}
    if len(shapes) < 2:
        return
    common = set.intersection(*(set(s) for s in shapes))
    described = sorted({_described({n: s[n] for n in s if n not in common}) for s in schemas})
    raise SchemaError(
        f"the {what} are of different kinds in different aggregates: "
        f"{'; '.join(described)}. Locally they are one column of Python objects, which "
        f"Spark cannot carry: {ONE_KIND}."
    )


def check_carried(frame: pl.DataFrame, what: str) -> None:
    """Refuse a bucket's answer that holds Python objects (an Object column)."""
    for name, dtype in frame.schema.items():
        if dtype == pl.Object:
            found = sorted({type(v).__name__ for v in frame[name].to_list() if v is not None})
            raise SchemaError(
                f"column {name!r} of the {what} holds Python objects of kinds "
                f"{', '.join(found[:6])}, which Spark cannot carry (polars has no one type "
                f"for them): {ONE_KIND}."
            )


def _described(columns: dict[str, pl.DataType]) -> str:
    if list(columns) == ["state"]:
        return f"a `state` of {_kind(columns['state'])}"
    if not columns:
        return "no state columns"
    return f"fields {', '.join(columns)}"


def _kind(dtype: pl.DataType) -> str:
    if isinstance(dtype, pl.Struct):
        return "dicts"
    if isinstance(dtype, pl.List):
        return "tuples or lists"
    if isinstance(dtype, pl.Enum):
        return "Enum members"
    return str(dtype)


def _kinds_by_column(schemas: list[pl.Schema]) -> str:
    kinds: dict[str, set[str]] = {}
    for schema in schemas:
        for name, dtype in schema.items():
            kinds.setdefault(name, set()).add(_kind(dtype))
    return "; ".join(f"{n}: {' or '.join(sorted(k))}" for n, k in kinds.items() if len(k) > 1)
