"""Shrinking a failing redelivery: the fewest events whose two deliveries still disagree.

When :func:`~concursus_lab.chaos` finds two deliveries of one history that give different
views, :func:`shrunk` removes events from both (delta debugging, :func:`ddmin`) while the
views still differ, within a budget of projections.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from concursus_lab.projections.diff import same_view
from concursus_lab.projections.projection import project


@dataclass(frozen=True)
class Shrunk:
    """The smallest disagreement found: its events, both deliveries of them and their views."""

    counterexample: pl.DataFrame  # the distinct events kept, without their deliveries
    redeliveries: tuple[pl.DataFrame, pl.DataFrame]
    views: tuple[pl.DataFrame, pl.DataFrame]
    tests: int  # projections run while shrinking
    minimal: bool  # False when the budget ran out first


def shrunk(
    p: Any,
    keys: tuple[str, ...] | None,
    delivered: pl.DataFrame,
    again: pl.DataFrame,
    distinct: pl.DataFrame,
    max_tests: int,
) -> Shrunk:
    """Shrink two deliveries that disagree, ``delivered`` and ``again``, to the fewest events.

    Both carry ``__event``, the row of ``distinct`` (the history's distinct events) each
    delivery is of. Whole aggregates go first, then single events, then single repeated
    deliveries on either side, while ``p``'s views of the two still differ.
    """
    first_events = delivered["__event"].to_numpy()
    second_events = again["__event"].to_numpy()
    first_repeat = _repeats(first_events)
    second_repeat = _repeats(second_events)
    aggregate_of = (
        distinct.select(pl.struct("aggregate_type", "aggregate_id").rank("dense"))
        .to_series()
        .to_numpy()
    )
    budget = {"tests": 0}

    def views(events: np.ndarray, dropped: frozenset[int]) -> tuple[pl.DataFrame, ...]:
        keep = np.zeros(distinct.height, dtype=bool)
        keep[events] = True
        one = keep[first_events] & ~np.isin(np.arange(len(first_events)), _side(dropped, 0))
        two = keep[second_events] & ~np.isin(np.arange(len(second_events)), _side(dropped, 1))
        a = delivered.filter(pl.Series(one)).drop("__event")
        b = again.filter(pl.Series(two)).drop("__event")
        return a, b, project(a, p), project(b, p)

    def fails(events: np.ndarray, dropped: frozenset[int] = frozenset()) -> bool:
        budget["tests"] += 1
        _, _, va, vb = views(events, dropped)
        return not same_view(va, vb, keys, same_columns=True)

    def out_of_budget() -> bool:
        return budget["tests"] >= max_tests

    events = np.arange(distinct.height)
    complete = True
    # 1. whole aggregates
    aggregates = np.unique(aggregate_of)
    kept, done = ddmin(
        list(aggregates),
        lambda chosen: fails(events[np.isin(aggregate_of, chosen)]),
        out_of_budget,
    )
    complete &= done
    events = events[np.isin(aggregate_of, kept)]
    # 2. single events
    kept, done = ddmin(list(events), lambda chosen: fails(np.array(chosen)), out_of_budget)
    complete &= done
    events = np.array(sorted(kept), dtype=np.int64)
    # 3. single repeated deliveries (of the events kept), on either side
    keep = np.zeros(distinct.height, dtype=bool)
    keep[events] = True
    repeats = [2 * int(i) for i in np.flatnonzero(first_repeat & keep[first_events])]
    repeats += [2 * int(i) + 1 for i in np.flatnonzero(second_repeat & keep[second_events])]
    dropped: frozenset[int] = frozenset()
    if repeats:
        kept_repeats, done = ddmin(
            repeats,
            lambda chosen: fails(events, frozenset(repeats) - set(chosen)),
            out_of_budget,
            allow_empty=True,
        )
        complete &= done
        dropped = frozenset(repeats) - set(kept_repeats)
    a, b, va, vb = views(events, dropped)
    counterexample = (
        distinct.filter(pl.col("__event").is_in(events.tolist()))
        .drop("__event")
        .sort("aggregate_type", "aggregate_id", "event_timestamp", "stream_id")
    )
    return Shrunk(counterexample, (a, b), (va, vb), budget["tests"], complete)


def ddmin(
    units: list[Any],
    fails: Callable[[list[Any]], bool],
    out_of_budget: Callable[[], bool],
    *,
    allow_empty: bool = False,
) -> tuple[list[Any], bool]:
    """Zeller's delta debugging: a 1-minimal sublist of ``units`` on which ``fails`` holds.

    ``fails(units)`` is assumed true. Returns the sublist and whether it finished (False
    when ``out_of_budget`` stopped it first).
    """
    if allow_empty and units and fails([]):
        return [], True
    n = 2
    while len(units) >= 2:
        chunks = [units[i * len(units) // n : (i + 1) * len(units) // n] for i in range(n)]
        reduced = False
        for chunk in chunks:  # a chunk alone
            if out_of_budget():
                return units, False
            if fails(chunk):
                units, n, reduced = chunk, 2, True
                break
        if not reduced and n > 2:
            for i in range(n):  # all but one chunk
                if out_of_budget():
                    return units, False
                rest = [u for j, c in enumerate(chunks) if j != i for u in c]
                if fails(rest):
                    units, n, reduced = rest, max(n - 1, 2), True
                    break
        if not reduced:
            if n >= len(units):
                break
            n = min(len(units), 2 * n)
    return units, True


def _repeats(events: np.ndarray) -> np.ndarray:
    """Which deliveries repeat an event delivered earlier in the same sequence."""
    seen: set[int] = set()
    out = np.zeros(len(events), dtype=bool)
    for i, e in enumerate(events.tolist()):
        out[i] = e in seen
        seen.add(e)
    return out


def _side(dropped: frozenset[int], side: int) -> np.ndarray:
    return np.array([d // 2 for d in dropped if d % 2 == side], dtype=np.int64)
