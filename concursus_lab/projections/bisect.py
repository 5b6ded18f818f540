"""Bisect two versions of a projection: the first delivery after which their views differ.

:func:`bisect` replays a history in arrival order (processing time, then row order) and
finds the first delivery after which two projections disagree, with both views there.

Views are compared as :func:`~concursus_lab.diff` compares them: by the projections' key when
they declare one (a fold's key, ``cl.projection(..., key=...)``, or ``key=`` here), else as
whole rows in any order, on the columns both views have (a v2 that adds a column is
compared on v1's; the new column is named); floats are equal within a relative 1e-9.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from concursus_lab.common.progress import bar
from concursus_lab.common.time import when
from concursus_lab.frame.identity import by_delivery
from concursus_lab.frame.schema import COLUMNS, validate
from concursus_lab.projections.diff import Diff, diff, same_view
from concursus_lab.projections.diff_inputs import pair_names
from concursus_lab.projections.projection import (
    AnyProjection,
    as_projection,
    project,
    view_key,
)
from concursus_lab.projections.views import key_columns

#: Above this many prefixes to check one by one, bisect shows a progress bar.
_PROGRESS_FROM = 1_000


@dataclass(frozen=True)
class Bisection:
    """What :func:`bisect` found; prints a short summary.

    Attributes
    ----------
    names
        What the two projections are called.
    index
        Arrival position (0-based) of the delivery after which the views first disagree;
        None when they never disagree, -1 when they disagree on an empty history.
    deliveries
        How many deliveries were replayed (the whole history).
    event
        That delivery (one row of the event frame; empty when ``index`` is None or -1).
    views
        Both views just after it: ``{name_a: view, name_b: view}`` (at the end of the
        history when they never disagree).
    diff
        :func:`~concursus_lab.diff` of the two views there.
    exact
        True when every earlier prefix was checked and agrees: ``index`` is the first
        disagreement. False when only found by search (see :func:`bisect`).
    evaluations
        How many prefixes were projected (by both projections).
    """

    names: tuple[str, str]
    index: int | None
    deliveries: int
    event: pl.DataFrame
    views: dict[str, pl.DataFrame]
    diff: Diff
    exact: bool
    evaluations: int

    @property
    def agree(self) -> bool:
        """True when the two projections never disagreed."""
        return self.index is None

    def __str__(self) -> str:
        a, b = self.names
        checked = f"{self.evaluations:,} prefixes projected"
        if self.index is None:
            how = "at every prefix" if self.exact else "at every prefix the search tried"
            return (
                f"{a} and {b} agree {how} of {self.deliveries:,} deliveries in arrival order "
                f"({checked}){self._not_compared()}"
            )
        if self.index == -1:
            return f"{a} and {b} disagree on an empty history\n{self.diff}"
        guarantee = (
            f"exact: all {self.index:,} earlier prefixes agree"
            if self.exact
            else "agree just before it; earlier prefixes not all checked"
        )
        row = self.event.row(0, named=True)
        return "\n".join(
            [
                f"{a} and {b} first disagree after delivery {self.index + 1:,} of "
                f"{self.deliveries:,} in arrival order ({guarantee}; {checked})",
                f"  {row['aggregate_type']} {row['aggregate_id']} {row['name']} "
                f"{row['parameters']}, event time {when(row['event_timestamp'])}, "
                f"processed {when(row['processing_timestamp'])}",
                f"  {self.diff}",
            ]
        )

    def _not_compared(self) -> str:
        """The columns only one view has (named, not compared), as the diff names them."""
        a, b = self.names
        only = [(a, self.diff.only_in_a), (b, self.diff.only_in_b)]
        parts = [f"columns only in {n}: {', '.join(cols)}" for n, cols in only if cols]
        return f"; {'; '.join(parts)}, not compared" if parts else ""

    def __repr__(self) -> str:
        return str(self)

    def _repr_markdown_(self) -> str:
        return "```\n" + str(self) + "\n```"


def bisect(
    events: pl.DataFrame,
    projection_a: AnyProjection,
    projection_b: AnyProjection,
    *,
    key: str | Sequence[str] | None = None,
    names: tuple[str, str] | None = None,
    exact: bool = True,
    progress: bool | None = None,
) -> Bisection:
    """The first delivery, in arrival order, after which two projections disagree.

    Prefixes of the history in arrival order (processing time, then row order) are
    projected by both; each projection applies its own duplicate rule to the prefix.
    Disagreement need not be monotonic (two views may disagree, then agree again), so:

    1. prefixes of 1, 2, 4, 8, ... deliveries are tried until the views disagree (and the
       whole history last);
    2. a binary search between the last agreeing and the first disagreeing try finds a
       delivery after which they disagree while they agreed just before it. Both sides
       of it are checked, so this is always a real transition;
    3. with ``exact=True`` (default), every earlier prefix is then checked in order, so
       the answer is *the first* disagreement; when the search found none, every prefix
       is checked before saying they always agree. With ``exact=False`` steps 1 and 2
       are all (about 2 log2(n) projections): the answer is the first disagreement
       whenever disagreement, once begun, persists; otherwise a real transition that
       may not be the first.

    Parameters
    ----------
    events
        A canonical event frame: every delivery, in any row order.
    projection_a, projection_b
        Two projections (functions, :func:`~concursus_lab.projection` or
        :func:`~concursus_lab.fold`); a view must also be computable from an empty history.
    key
        The columns identifying a view row (default: the projections' own, when they
        declare the same; else whole rows are compared).
    names
        What to call them (default: their names, or ``("a", "b")``).
    exact
        Check every earlier prefix (see above).
    progress
        Show a progress bar while checking prefixes one by one (None: when there are
        more than 1,000 of them).

    Returns
    -------
    Bisection
        ``.index``, ``.event``, ``.views`` (both views there), ``.diff`` and ``.exact``.

    Examples
    --------
    >>> import polars as pl
    >>> import concursus_lab as cl
    >>> events = cl.sample.fixture("messy")
    >>> every = cl.projection(lambda f: f.group_by("name").len(), duplicates="keep",
    ...                       key="name", name="deliveries")
    >>> once = cl.projection(lambda f: f.group_by("name").len(), key="name", name="events")
    >>> print(cl.bisect(events, every, once))  # doctest: +NORMALIZE_WHITESPACE
    deliveries and events first disagree after delivery 11 of 17 in arrival order
    (exact: all 10 earlier prefixes agree; 14 prefixes projected)
      parcel parcel-C delivered {"destinationId":"dest-00003"},
      event time 2026-03-02 10:45:00, processed 2026-03-02 10:45:21
      deliveries -> events: 1 changed (len 1), 0 added, 0 removed, 3 unchanged
    """
    a, b = as_projection(projection_a, "projection_a"), as_projection(projection_b, "projection_b")
    names = names or _default_names(a.name, b.name)
    a_name, b_name = pair_names(names)
    keys = _common_key(key, a, b)
    arrival = by_delivery(validate(events, check_parameters=False))
    n = arrival.height
    views: dict[int, tuple[pl.DataFrame, pl.DataFrame, bool]] = {}

    def differ(k: int) -> bool:
        if k not in views:
            prefix = arrival.head(k)
            va, vb = project(prefix, a), project(prefix, b)
            views[k] = (va, vb, not same_view(va, vb, keys))
        return views[k][2]

    def result(k: int | None, exact_: bool) -> Bisection:
        at = n if k is None else k
        differ(at)
        va, vb, _ = views[at]
        index = None if k is None else k - 1
        event = arrival.head(0) if k is None or k == 0 else arrival.slice(k - 1, 1)
        return Bisection(
            (a_name, b_name),
            index,
            n,
            event.select(COLUMNS),
            {a_name: va, b_name: vb},
            diff(va, vb, key=keys, names=(a_name, b_name)),
            exact_,
            len(views),
        )

    if differ(0):
        return result(0, True)
    lo, hi, step = 0, None, 1
    while hi is None:
        k = min(step, n)
        if differ(k):
            hi = k
        elif k == n:
            break
        else:
            lo, step = k, step * 2
    if hi is not None:
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if differ(mid):
                hi = mid
            else:
                lo = mid
    if not exact:
        return result(hi, False)
    end = hi if hi is not None else n
    todo = [k for k in range(1, end) if k not in views]
    # a bar for many prefixes (by count, not time: a notebook's output stays the same)
    shown = progress if progress is not None else len(todo) > _PROGRESS_FROM
    for k in bar(shown, iterable=todo, what="checking prefixes", unit="prefixes"):
        if differ(k):
            return result(k, True)
    return result(hi, True)


def _common_key(key: Any, a: Any, b: Any) -> tuple[str, ...] | None:
    if key is not None:
        return key_columns(key)
    ka, kb = view_key(a), view_key(b)
    return ka if ka == kb else None


def _default_names(a: str, b: str) -> tuple[str, str]:
    usable = a and b and a != b and "<" not in a + b  # lambdas are all called <lambda>
    return (a, b) if usable else ("a", "b")
