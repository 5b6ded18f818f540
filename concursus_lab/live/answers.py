"""A time-travel answer's frame from the live states' own columns, built once per batch.

Most aggregates in a question about a cut are answered by their live state as it is (their
whole history lies inside the cut: ``travel.py``). Building their rows again from the
state objects for every question is what a full fold costs too (a state's fields pulled
out into columns, then sorted by id), and for a history of short aggregates it is most of
the answer's cost. :class:`Heads` keeps the frame of the live states (``live.result()``'s,
sorted by id) between questions; an answer takes those rows as they are, builds columns
only for the aggregates folded from an earlier keyframe, and puts the two together in id
order. Where the two do not share their columns (a reducer whose states change shape), the
answer is built whole, as before (:func:`answer_frame` returns None).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import polars as pl

from concursus_lab.common.gc_pause import paused_gc
from concursus_lab.timetravel.state_at import StateAt, states_result


@dataclasses.dataclass(frozen=True)
class Heads:
    """The live states' result (``frame`` sorted by id, ``ids`` and ``states`` in that
    order) and, per aggregate of a layout, its row in that frame (-1: no state)."""

    frame: pl.DataFrame
    ids: np.ndarray  # objects
    states: np.ndarray  # objects
    rows: np.ndarray


def heads(result: StateAt, layout_ids: list[str]) -> Heads:
    """The :class:`Heads` of ``result`` (the live states') for the aggregates ``layout_ids``."""
    with paused_gc():
        ids = result.frame["aggregate_id"].to_list()
        states = result.states  # a dict in id order
        row_of = {aggregate_id: k for k, aggregate_id in enumerate(ids)}
        rows = np.fromiter((row_of.get(i, -1) for i in layout_ids), np.int64, len(layout_ids))
        ids_array = np.empty(len(ids), dtype=object)
        ids_array[:] = ids
        states_array = np.empty(len(ids), dtype=object)
        states_array[:] = [states[i] for i in ids]
    return Heads(result.frame, ids_array, states_array, rows)


def answer_frame(cached: Heads, answer: Any, asked: dict[str, Any]) -> StateAt | None:
    """The :class:`StateAt` of ``answer`` (a ``travel.Answer``): the rows of its aggregates
    that hold their live state come from ``cached``, the others' are built. ``asked``
    holds :func:`states_result`'s other arguments (types, at, known_at, seen, kind). None
    when the built rows' columns differ from the cached ones."""
    types, at, known_at, seen, kind = (
        asked[k] for k in ("types", "at", "known_at", "seen", "kind")
    )
    rows = np.sort(cached.rows[answer.keep[answer.as_head]])
    if len(rows) and rows[0] < 0:
        return None  # a live state the cache lacks: not expected, answered whole
    other = states_result(types, at, known_at, seen, answer.folded(~answer.as_head), None, kind)
    kept = cached.frame[rows]
    if other.frame.columns != kept.columns:
        return None
    try:
        built = other.frame.cast(dict(kept.schema))
    except pl.exceptions.PolarsError:
        return None
    frame, order = kept, np.arange(len(rows), dtype=np.int64)
    other_ids = built["aggregate_id"].to_list()
    if other_ids:
        order = _merged_order(kept["aggregate_id"], built["aggregate_id"])
        frame = pl.concat([kept, built])[order]
    with paused_gc():
        ids = cached.ids[rows].tolist() + other_ids
        states = cached.states[rows].tolist() + [other.states[i] for i in other_ids]
    return StateAt(
        frame,
        types.aggregate_type,
        at,
        known_at,
        seen.counts,
        seen.undecodable,
        (ids, states, order),
    )


def _merged_order(first: pl.Series, second: pl.Series) -> np.ndarray:
    """The permutation of ``first`` then ``second`` (each sorted, no id in both) that
    sorts them together."""
    n, m = first.len(), second.len()
    inserts = first.search_sorted(second, side="left").to_numpy().astype(np.int64)
    places = inserts + np.arange(m, dtype=np.int64)  # where each of `second` ends up
    out = np.empty(n + m, dtype=np.int64)
    taken = np.zeros(n + m, dtype=bool)
    taken[places] = True
    out[places] = np.arange(n, n + m, dtype=np.int64)
    out[~taken] = np.arange(n, dtype=np.int64)
    return out
