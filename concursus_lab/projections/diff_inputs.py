"""What :func:`~concursus_lab.projections.diff.diff` is given, checked and lined up: two
views as polars frames, the key columns both have and that identify their rows, columns of
types both fit, rows in a stable order, and two different names for the views."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

import polars as pl

from concursus_lab.exceptions import SchemaError
from concursus_lab.projections.views import key_columns


def sorted_rows(frame: pl.DataFrame, columns: Sequence[str]) -> pl.DataFrame:
    """``frame`` sorted by ``columns``; columns polars cannot sort by are sorted as text."""
    if frame.height < 2 or not columns:
        return frame
    try:
        return frame.sort(list(columns), nulls_last=True, maintain_order=True)
    except Exception:
        texts = [pl.col(c).map_elements(repr, return_dtype=pl.String) for c in columns]
        keyed = frame.with_columns([t.alias(f"\x00sort{i}") for i, t in enumerate(texts)])
        return keyed.sort([f"\x00sort{i}" for i in range(len(texts))]).select(frame.columns)


def common_types(
    left: pl.DataFrame, right: pl.DataFrame, columns: Sequence[str]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Both frames with ``columns`` cast to a type both fit (Int32 and UInt32 to Int64)."""
    differ = [c for c in columns if left.schema[c] != right.schema[c]]
    if not differ:
        return left, right
    try:
        both = pl.concat([left.select(differ), right.select(differ)], how="vertical_relaxed")
    except Exception as exc:
        raise SchemaError(
            "the views' columns "
            + ", ".join(f"{c} ({left.schema[c]} vs {right.schema[c]})" for c in differ)
            + f" have types with nothing in common ({type(exc).__name__}); cast one view's "
            "to the other's type."
        ) from exc
    casts = [pl.col(c).cast(both.schema[c]) for c in differ]
    return left.with_columns(casts), right.with_columns(casts)


def shared_keys(
    key: str | Sequence[str], left: pl.DataFrame, right: pl.DataFrame
) -> tuple[str, ...]:
    """The `key` columns, checked to be names both views have."""
    keys = key_columns(key) or ()  # never None here: a diff without a key compares rows
    for frame, which in ((left, "view_a"), (right, "view_b")):
        missing = [k for k in keys if k not in frame.columns]
        if missing:
            hints = []
            for k in missing:
                near = difflib.get_close_matches(k, frame.columns, 1)
                hints.append(f"{k!r} (did you mean {near[0]!r}?)" if near else repr(k))
            raise SchemaError(
                f"`key` names column(s) {', '.join(hints)} that `{which}` does not have; "
                f"it has {frame.columns!r}."
            )
    return keys


def check_unique(frame: pl.DataFrame, keys: tuple[str, ...], which: str) -> None:
    if frame.height < 2:
        return
    repeated = frame.select(keys).filter(pl.struct(keys).is_duplicated())
    if repeated.height:
        counts = (
            repeated.group_by(keys)
            .len()
            .sort("len", *keys, descending=[True] + [False] * len(keys), nulls_last=True)
        )
        example = counts.row(0)
        value = example[:-1] if len(keys) > 1 else example[0]
        raise SchemaError(
            f"`key` {list(keys)!r} does not identify the rows of `{which}`: {value!r} is on "
            f"{example[-1]:,} rows ({counts.height:,} key value(s) repeat). Pass the columns "
            "that do identify a row (e.g. key=['depot', 'day'])."
        )


def view_frame(view: Any, name: str) -> pl.DataFrame:
    if isinstance(view, pl.LazyFrame):
        return view.collect()
    if isinstance(view, pl.DataFrame):
        return view
    if type(view).__module__.startswith("pandas") and hasattr(view, "columns"):
        return pl.from_pandas(view)
    raise SchemaError(
        f"`{name}` must be a view frame (a polars DataFrame), got {type(view).__name__}; "
        "make one with cl.project(events, projection)."
    )


def pair_names(names: Any) -> tuple[str, str]:
    ok = (
        isinstance(names, tuple | list)
        and len(names) == 2
        and all(isinstance(n, str) and n for n in names)
        and names[0] != names[1]
    )
    if not ok:
        raise SchemaError(
            f"`names` must be two different names for the views, such as ('v1', 'v2'); "
            f"got {names!r}."
        )
    return str(names[0]), str(names[1])
