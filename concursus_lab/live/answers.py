"""A time-travel answer's frame from the live states' own columns, built once per batch.

Most aggregates in a question about a cut are answered by their live state as it is (their
whole history lies inside the cut: ``travel.py``). Building their rows again from the
state objects for every question is what a full fold costs too (a state's fields pulled
out into columns, then sorted by id), and for a history of short aggregates it is most of
the answer's cost. :class:`Heads` keeps the frame of the live states (``live.result()``'s,
sorted by id) between questions; an answer takes those rows as they are, builds columns
only for the aggregates folded from an earlier keyframe, and puts the two together in id
order. That holds only where the live states are all of one dataclass or named tuple (then
any of them have its fields as columns, as a full fold of the cut gives); where they are
not (a reducer whose states change class, dicts, tuples), or where the built rows' columns
differ from the kept ones, the answer is built whole (:func:`answer_frame` returns None).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from itertools import chain
from typing import Any

import numpy as np
import polars as pl

from concursus_lab.common.gc_pause import paused_gc
from concursus_lab.timetravel.reducing import Folded
from concursus_lab.timetravel.state_at import StateAt, states_result
from concursus_lab.timetravel.state_columns import field_names


@dataclasses.dataclass(frozen=True)
class Heads:
    """The live states' result (``frame`` sorted by id, ``ids`` and ``states`` in that
    order), per aggregate of a layout its row in that frame (-1: no state), and whether
    ``frame``'s columns are those of any part of its states (``fields``: they are all of
    one dataclass or named tuple)."""

    frame: pl.DataFrame
    ids: list[str]
    states: list[Any]
    rows: np.ndarray
    fields: bool


def heads(result: StateAt, folded: Folded, layout_ids: list[str]) -> Heads:
    """The :class:`Heads` of ``result`` (the live states', made of ``folded``: the same
    aggregates, in another order) for the aggregates ``layout_ids``."""
    ids = result.frame["aggregate_id"]
    order = pl.Series(folded.ids, dtype=pl.String).arg_sort().to_numpy()  # ids are unique
    with paused_gc():
        states = [folded.states[k] for k in order.tolist()]
    wanted = pl.Series(layout_ids, dtype=pl.String)
    rows = ids.search_sorted(wanted, side="left").to_numpy().astype(np.int64)
    found = rows < ids.len()
    found[found] = (ids.gather(rows[found]) == wanted.filter(pl.Series(found))).to_numpy()
    rows[~found] = -1
    kinds = set(map(type, states))
    fields = len(kinds) == 1 and field_names(kinds.pop()) is not None
    return Heads(result.frame, ids.to_list(), states, rows, fields)


def answer_frame(cached: Heads, answer: Any, asked: dict[str, Any]) -> StateAt | None:
    """The :class:`StateAt` of ``answer`` (a ``travel.Answer``): the rows of its aggregates
    that hold their live state come from ``cached``, the others' are built, and one gather
    puts them in id order. ``asked`` holds :func:`states_result`'s other arguments (types,
    at, known_at, seen, kind). None when the built rows' columns differ from the cached
    ones."""
    types, at, known_at, seen, kind = (
        asked[k] for k in ("types", "at", "known_at", "seen", "kind")
    )
    if not cached.fields:
        return None  # a part of the states may have other columns than the whole
    rows = np.sort(cached.rows[answer.keep[answer.as_head]])
    # the built aggregates' rows in the cached frame (they have live states too) put them
    # in id order with no string compared
    places = cached.rows[answer.keep[~answer.as_head]]
    if (len(rows) and rows[0] < 0) or (len(places) and places.min() < 0):
        return None  # a live state the cache lacks (applied at the cut, not after): whole
    by_id = np.argsort(places)
    other = states_result(types, at, known_at, seen, answer.folded(~answer.as_head), by_id, kind)
    if other.frame.columns != cached.frame.columns:
        return None
    try:
        built = other.frame.cast(dict(cached.frame.schema))
    except pl.exceptions.PolarsError:
        return None
    if built.height != len(places):  # a None state left out
        order = _merged_order(cached, rows, built["aggregate_id"])
    else:
        order = _merged_order(cached, rows, built["aggregate_id"], places[by_id])
    frame = _merged(cached.frame, built, order)
    other_ids = built["aggregate_id"].to_list()
    states = [other.states[i] for i in other_ids]
    return StateAt(
        frame,
        types.aggregate_type,
        at,
        known_at,
        seen.counts,
        seen.undecodable,
        (_Joined(cached.ids, other_ids), _Joined(cached.states, states), order),
    )


class _Joined(Sequence):
    """Two lists read as one, not copied into one: a list of every aggregate made for each
    answer is new to the collector, which then walks its hundred thousand items at each of
    its young passes (about 6 ms a question at 300k events, for the ids and the states);
    ``StateAt.states`` reads it only when asked."""

    def __init__(self, head: list[Any], tail: list[Any]) -> None:
        self._head, self._tail = head, tail

    def __len__(self) -> int:
        return len(self._head) + len(self._tail)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        n = len(self._head)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        return self._head[i] if i < n else self._tail[i - n]

    def __iter__(self) -> Iterator[Any]:
        return chain(self._head, self._tail)


def _merged(kept: pl.DataFrame, built: pl.DataFrame, order: np.ndarray) -> pl.DataFrame:
    """``kept`` and ``built`` put one after the other, then rows ``order``: the rows of
    ``kept`` gathered (a stand-in where a built row goes), the built ones written in their
    places. Polars gathers strings from two chunks slowly (12 ms for 90k sample parcel
    states, against 4 to copy them into one first and 2 this way)."""
    n = kept.height
    places = np.flatnonzero(order >= n)  # built rows, in their order (``_merged_order``)
    if len(places) == len(order):
        return built
    frame = kept[np.where(order >= n, 0, order)]
    if len(places) == 0:
        return frame
    columns = []
    for name in frame.columns:
        column = frame[name]
        column.scatter(places, built[name])
        columns.append(column)
    return pl.DataFrame(columns)


def _merged_order(
    cached: Heads, rows: np.ndarray, built: pl.Series, heads: np.ndarray | None = None
) -> np.ndarray:
    """The rows of ``cached.frame`` then ``built`` (sorted ids, none in ``cached``'s rows
    ``rows``), as indices into the two put one after the other, in id order; ``heads``:
    where each built id is (or would be) in ``cached.frame``, if known."""
    n, m = cached.frame.height, built.len()
    if m == 0:
        return rows
    if heads is None:
        heads = cached.frame["aggregate_id"].search_sorted(built, side="left").to_numpy()
    places = np.searchsorted(rows, heads) + np.arange(m, dtype=np.int64)  # where each lands
    out = np.empty(len(rows) + m, dtype=np.int64)
    taken = np.zeros(len(out), dtype=bool)
    taken[places] = True
    out[places] = np.arange(n, n + m, dtype=np.int64)
    out[~taken] = rows
    return out
