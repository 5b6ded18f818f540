"""Compare two versions of a view: rows added, rows removed, and what changed in the others.

Rows are matched on ``key`` (the columns that identify a row: a depot and a day, a truck).
A row whose key only ``view_b`` has is *added*, one only ``view_a`` has is *removed*, and a
row on both sides is *changed* when any other column both views share differs. Floats are
equal within a relative tolerance (``rtol``), so a mean summed in another order is not a
change; nulls equal nulls, NaN equals NaN. Columns only one view has are reported, not
compared.

Without ``key``, whole rows are compared (as multisets, exactly, on the columns both views
have): rows only in ``view_b`` are added, rows only in ``view_a`` removed, and nothing is
*changed*. So a v2 that adds a column, the commonest thing a v2 does, is compared with v1
on v1's columns, and the new column is named (``.same_rows`` is this rule as one answer;
``cl.bisect`` and ``cl.chaos`` compare views by it).

>>> import polars as pl
>>> import concursus_lab as cl
>>> v1 = pl.DataFrame({"depot": ["Camden", "Hackney", "Lewisham"], "delivered": [3, 5, 2],
...                    "rate": [0.5, 1.0, 0.4]})
>>> v2 = pl.DataFrame({"depot": ["Camden", "Hackney", "Brixton"], "delivered": [3, 4, 1],
...                    "rate": [0.5, 0.8, 1.0]})
>>> found = cl.diff(v1, v2, key="depot", names=("v1", "v2"))
>>> print(found)
v1 -> v2: 1 changed (delivered 1, rate 1), 1 added, 1 removed, 1 unchanged
>>> found.changed.rows()
[('Hackney', ['delivered', 'rate'], 5, 4, 1.0, 0.8)]
>>> found.changed.columns
['depot', 'differs', 'delivered_v1', 'delivered_v2', 'rate_v1', 'rate_v2']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from concursus_lab.exceptions import SchemaError
from concursus_lab.projections.diff_inputs import (
    check_unique,
    common_types,
    pair_names,
    shared_keys,
    sorted_rows,
    view_frame,
)

_MAX_SHOWN = 3


@dataclass(frozen=True)
class Diff:
    """What :func:`diff` found; prints as one line.

    Attributes
    ----------
    names
        What the two views are called, e.g. ``("v1", "v2")``.
    key
        The columns rows were matched on (empty: whole rows).
    added
        Rows of ``view_b`` whose key ``view_a`` lacks (all of ``view_b``'s columns).
    removed
        Rows of ``view_a`` whose key ``view_b`` lacks (all of ``view_a``'s columns).
    changed
        One row per key on both sides with a difference: the key columns, ``differs`` (the
        names of the columns that differ, a list), then each compared column from both
        views, suffixed with their names (``rate_v1``, ``rate_v2``). Sorted by key.
    unchanged
        Rows on both sides that are equal.
    only_in_a, only_in_b
        Columns one view has and the other does not (not compared).
    """

    names: tuple[str, str]
    key: tuple[str, ...]
    added: pl.DataFrame
    removed: pl.DataFrame
    changed: pl.DataFrame
    unchanged: int
    only_in_a: tuple[str, ...] = ()
    only_in_b: tuple[str, ...] = ()

    @property
    def same_rows(self) -> bool:
        """True when no row was added, removed or changed in the columns both views have
        (columns only one has are reported, not compared)."""
        return not (self.added.height or self.removed.height or self.changed.height)

    @property
    def equal(self) -> bool:
        """True when both views hold the same rows with the same values and columns."""
        return not (
            self.added.height
            or self.removed.height
            or self.changed.height
            or self.only_in_a
            or self.only_in_b
        )

    def changed_columns(self) -> dict[str, int]:
        """How many changed rows differ in each column, most first: ``{"rate": 3}``."""
        if self.changed.height == 0:
            return {}
        counts = self.changed.select(pl.col("differs").explode().value_counts()).unnest("differs")
        pairs = counts.sort(["count", "differs"], descending=[True, False]).rows()
        return {str(column): int(count) for column, count in pairs}

    def __str__(self) -> str:
        a, b = self.names
        columns = self.changed_columns()
        detail = f" ({', '.join(f'{k} {v:,}' for k, v in columns.items())})" if columns else ""
        text = (
            f"{a} -> {b}: {self.changed.height:,} changed{detail}, {self.added.height:,} added, "
            f"{self.removed.height:,} removed, {self.unchanged:,} unchanged"
        )
        extra = []
        if self.only_in_a:
            extra.append(f"columns only in {a}: {', '.join(self.only_in_a)}")
        if self.only_in_b:
            extra.append(f"columns only in {b}: {', '.join(self.only_in_b)}")
        if extra:
            text += f" ({'; '.join(extra)})"
        return text

    def __repr__(self) -> str:
        return str(self)

    def _repr_markdown_(self) -> str:
        return "```\n" + str(self) + "\n```"


def diff(
    view_a: pl.DataFrame,
    view_b: pl.DataFrame,
    *,
    key: str | Sequence[str] | None = None,
    names: tuple[str, str] = ("a", "b"),
    rtol: float = 1e-9,
) -> Diff:
    """Compare two views row by row: what was added, removed, or changed (and in which column).

    Parameters
    ----------
    view_a, view_b
        Two view frames (the old version and the new one); neither is changed.
    key
        The column(s) identifying a row, present in both views and unique in each. None
        compares whole rows.
    names
        What to call the views in the summary and in ``changed``'s column names.
    rtol
        Relative tolerance for float columns: equal when ``|a - b| <= rtol * max(|a|, |b|)``.

    Returns
    -------
    Diff
        ``.added``, ``.removed``, ``.changed``, ``.unchanged`` and ``.equal``.

    Examples
    --------
    >>> import polars as pl
    >>> import concursus_lab as cl
    >>> a = pl.DataFrame({"truck": ["T1", "T2"], "load": [3, 1]})
    >>> b = pl.DataFrame({"truck": ["T2", "T1"], "load": [1, 3]})  # rows in another order
    >>> cl.diff(a, b, key="truck").equal
    True
    >>> cl.diff(a, b.head(1)).removed.rows()
    [('T1', 3)]
    """
    a_name, b_name = pair_names(names)
    left, right = view_frame(view_a, "view_a"), view_frame(view_b, "view_b")
    if not isinstance(rtol, (int, float)) or rtol < 0:
        raise SchemaError(f"`rtol` must be a number >= 0, got {rtol!r}.")
    only_a = tuple(c for c in left.columns if c not in right.columns)
    only_b = tuple(c for c in right.columns if c not in left.columns)
    if key is None:
        return _whole_rows(left, right, (a_name, b_name), only_a, only_b)
    keys = shared_keys(key, left, right)
    for frame, which in ((left, "view_a"), (right, "view_b")):
        check_unique(frame, keys, which)
    left, right = common_types(left, right, keys)
    compared = [c for c in left.columns if c in right.columns and c not in keys]
    sa, sb = "\x00a", "\x00b"
    joined = (
        left.select(*keys, *(pl.col(c).alias(c + sa) for c in compared))
        .with_columns(pl.lit(True).alias("\x00in_a"))
        .join(
            right.select(*keys, *(pl.col(c).alias(c + sb) for c in compared)).with_columns(
                pl.lit(True).alias("\x00in_b")
            ),
            on=list(keys),
            how="full",
            coalesce=True,
            nulls_equal=True,
        )
    )
    in_a = pl.col("\x00in_a").fill_null(False)
    in_b = pl.col("\x00in_b").fill_null(False)
    both = joined.filter(in_a & in_b)
    differs = {c: _differs(both, c + sa, c + sb, rtol) for c in compared}
    labels = (
        pl.concat_list(
            [pl.when(pl.Series(d)).then(pl.lit(c)).otherwise(None) for c, d in differs.items()]
        ).list.drop_nulls()
        if differs
        else pl.lit([], dtype=pl.List(pl.String))
    )
    labelled = both.with_columns(labels.alias("differs"))
    changed = (
        labelled.filter(pl.col("differs").list.len() > 0)
        .sort(list(keys), nulls_last=True)
        .select(
            *keys,
            pl.col("differs").cast(pl.List(pl.String)),
            *[
                pl.col(c + s).alias(f"{c}_{n}")
                for c in compared
                for s, n in ((sa, a_name), (sb, b_name))
            ],
        )
    )
    added_keys = joined.filter(~in_a).select(keys)
    removed_keys = joined.filter(~in_b).select(keys)
    added = right.join(added_keys, on=list(keys), how="semi", nulls_equal=True)
    removed = left.join(removed_keys, on=list(keys), how="semi", nulls_equal=True)
    return Diff(
        names=(a_name, b_name),
        key=keys,
        added=added.sort(list(keys), nulls_last=True),
        removed=removed.sort(list(keys), nulls_last=True),
        changed=changed,
        unchanged=both.height - changed.height,
        only_in_a=only_a,
        only_in_b=only_b,
    )


def same_view(
    view_a: pl.DataFrame,
    view_b: pl.DataFrame,
    key: Sequence[str] | None = None,
    rtol: float = 1e-9,
    *,
    same_columns: bool = False,
) -> bool:
    """Whether two views hold the same rows (in any order) in the columns both have, floats
    within ``rtol``: :attr:`Diff.same_rows`.

    With ``key``, as :func:`diff` decides it; without, rows are sorted by every shared
    column (the non-float ones first) and compared in that order. ``same_columns``: views
    whose column sets differ are different too (one projection run twice: ``chaos``), not
    only two versions compared on what they share (``diff``, ``bisect``).
    """
    if same_columns and set(view_a.columns) != set(view_b.columns):
        return False
    if key is not None:
        return diff(view_a, view_b, key=key, rtol=rtol).same_rows
    shared = [c for c in view_a.columns if c in view_b.columns]
    if view_a.height != view_b.height:
        return False
    if view_a.height == 0:
        return True
    if not shared:
        return False
    left, right = view_a.select(shared), view_b.select(shared)
    floats = [c for c in shared if left.schema[c].is_float()]
    others = [c for c in shared if c not in floats]
    try:
        left, right = common_types(left, right, shared)
    except SchemaError:
        return False
    ordered_a = sorted_rows(left, [*others, *floats])
    ordered_b = sorted_rows(right, [*others, *floats])
    for column in shared:
        pair = pl.DataFrame({"a": ordered_a[column], "b": ordered_b[column]})
        if _differs(pair, "a", "b", rtol).any():
            return False
    return True


# ------------------------------------------------------------------------------ helpers


def _differs(frame: pl.DataFrame, a: str, b: str, rtol: float) -> pl.Series:
    """Per row: do columns ``a`` and ``b`` of ``frame`` differ (nulls equal, NaN equal)?"""
    left, right = frame[a], frame[b]
    numeric = left.dtype.is_numeric() and right.dtype.is_numeric()
    if numeric and (left.dtype.is_float() or right.dtype.is_float()):
        x, y = pl.col(a).cast(pl.Float64), pl.col(b).cast(pl.Float64)
        close = (x - y).abs() <= pl.lit(rtol) * pl.max_horizontal(x.abs(), y.abs())
        same = (
            (x.is_null() & y.is_null())
            | (x.is_nan() & y.is_nan()).fill_null(False)
            | (x == y).fill_null(False)
            | close.fill_null(False)
        )
        return frame.select(~same).to_series().fill_null(True)
    try:
        return frame.select(pl.col(a).ne_missing(pl.col(b))).to_series()
    except Exception:  # values of kinds that do not compare: compare their text
        return pl.Series(
            [x != y for x, y in zip(left.to_list(), right.to_list(), strict=True)],
            dtype=pl.Boolean,
        )


def _whole_rows(
    left: pl.DataFrame,
    right: pl.DataFrame,
    names: tuple[str, str],
    only_a: tuple[str, ...],
    only_b: tuple[str, ...],
) -> Diff:
    shared = [c for c in left.columns if c in right.columns]
    if not shared:  # nothing to compare on: no row can be the same row
        added, removed, unchanged = right, left, 0
    else:
        try:
            left, right = common_types(left, right, shared)
        except SchemaError:  # no row of one can equal a row of the other
            return Diff(
                names,
                (),
                sorted_rows(right, right.columns),
                sorted_rows(left, left.columns),
                pl.DataFrame(schema={"differs": pl.List(pl.String)}),
                0,
                only_a,
                only_b,
            )
        numbered_a = left.with_columns(pl.int_range(pl.len()).over(shared).alias("\x00n"))
        numbered_b = right.with_columns(pl.int_range(pl.len()).over(shared).alias("\x00n"))
        on = [*shared, "\x00n"]
        added = numbered_b.join(numbered_a, on=on, how="anti", nulls_equal=True).drop("\x00n")
        removed = numbered_a.join(numbered_b, on=on, how="anti", nulls_equal=True).drop("\x00n")
        unchanged = left.height - removed.height
    empty = pl.DataFrame(schema={"differs": pl.List(pl.String)})
    return Diff(
        names=names,
        key=(),
        added=sorted_rows(added, added.columns),
        removed=sorted_rows(removed, removed.columns),
        changed=empty,
        unchanged=unchanged,
        only_in_a=only_a,
        only_in_b=only_b,
    )
