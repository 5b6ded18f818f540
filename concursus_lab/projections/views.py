"""What a view is: a polars frame whose rows its key columns identify, and what may key a
fold (``aggregate_id``, or a declared parameter with hashable, orderable values)."""

from __future__ import annotations

import difflib
from typing import Any

import polars as pl

from concursus_lab.events.types import EventTypes
from concursus_lab.exceptions import ProjectionError, SchemaError

#: Parameter kinds that can key a fold (hashable, orderable values), and the type of the
#: view's key column for each.
_KEY_KINDS: dict[str, pl.DataType] = {
    "str": pl.String(),
    "int": pl.Int64(),
    "float": pl.Float64(),
    "bool": pl.Boolean(),
    "date": pl.Date(),
    "datetime": pl.Datetime("us", "UTC"),
}


def key_columns(key: Any) -> tuple[str, ...] | None:
    """A ``key=`` argument (a column name or several) as a tuple of names; None for None."""
    if key is None:
        return None
    columns = (key,) if isinstance(key, str) else tuple(key)
    if not columns or not all(isinstance(c, str) and c for c in columns):
        raise SchemaError(
            f"`key` must be a column name or a list of them, such as ['depot', 'day']; got {key!r}."
        )
    return columns


def as_view(out: Any, name: str, key: tuple[str, ...] | None) -> pl.DataFrame:
    """What projection ``name`` returned, as a polars frame with its declared ``key`` columns."""
    if isinstance(out, pl.LazyFrame):
        out = out.collect()
    elif type(out).__module__.startswith("pandas") and hasattr(out, "columns"):
        out = pl.from_pandas(out)
    if not isinstance(out, pl.DataFrame):
        raise ProjectionError(
            f"projection {name!r} returned {type(out).__name__}, not a view frame; return a "
            "polars DataFrame (a LazyFrame or a pandas DataFrame is converted)."
        )
    if key:
        missing = [c for c in key if c not in out.columns]
        if missing:
            raise ProjectionError(
                f"projection {name!r} declares key={list(key)!r} but its view has no column "
                f"{', '.join(map(repr, missing))}; it has {out.columns!r}."
            )
    return out


def check_fold_key(types: EventTypes, key: Any) -> None:
    """``key`` is ``aggregate_id`` or a declared parameter of a kind that can key a fold."""
    if key == "aggregate_id":
        return
    declared = {p.name: p for t in types for p in t.parameters}
    if not isinstance(key, str) or key not in declared:
        near = difflib.get_close_matches(str(key), [*declared, "aggregate_id"], 1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise SchemaError(
            f"`key` must be 'aggregate_id' or a parameter declared by an event type of "
            f"{types.aggregate_type!r} ({', '.join(sorted(declared)) or 'none declared'}); "
            f"got {key!r}{hint}"
        )
    parameter = declared[key]
    if parameter.kind not in _KEY_KINDS or parameter.item is not None:
        raise SchemaError(
            f"`key` {key!r} is declared {parameter.describe()}; a key must be a str, int, "
            "float, bool, date or datetime parameter."
        )


def key_dtype(types: EventTypes, key: str) -> pl.DataType:
    """The type of a fold's key column, known before any event is: a String for
    ``aggregate_id``, else the declared kind's (a String where event types declare the key
    with different kinds: such keys are compared as text)."""
    kinds = {p.kind for t in types for p in t.parameters if p.name == key}
    if key == "aggregate_id" or len(kinds) != 1:
        return pl.String()
    return _KEY_KINDS.get(kinds.pop(), pl.String())
