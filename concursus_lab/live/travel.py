"""Time travel from keyframes: a live fold's states at any ``at``, as known at any ``known_at``.

A keyframe answers "the state at ``at``, as known at ``known_at``" for its first ``pos``
deliveries when every one of them lies inside that cut (``track.py``); the rest of the cut
lies after it in causal order. So a question about a new cut needs no full replay: per
aggregate, the last keyframe inside the cut (the live state itself, for an aggregate whose
history the cut holds whole), then a replay, by time travel's own plan, of only the
deliveries after it, bounded by the cut, folded on from it. Aggregates whose every delivery
is inside the cut (most of them, for an ``at`` in a long history) cost nothing; those the cut
misses entirely cost nothing either.

:class:`Index` is what a live fold keeps between questions (every delivery's position, every
keyframe as flat arrays); it is made again after a batch changes the fold.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from itertools import chain
from operator import attrgetter
from typing import Any

import numpy as np
import polars as pl

from concursus_lab.common.gc_pause import paused_gc
from concursus_lab.live.layout import Layout, layout
from concursus_lab.live.refold import Settings
from concursus_lab.live.tail import TALLIES, fold
from concursus_lab.live.track import START, Keyframe, Track
from concursus_lab.timetravel.reducing import Folded
from concursus_lab.timetravel.replay import prepare

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_ALWAYS = np.iinfo(np.int64).max


@dataclasses.dataclass(frozen=True)
class Index:
    """Every kept delivery's place (``lay``) and every keyframe, heads included, as arrays
    sorted by aggregate (``lay``'s order) then position, :data:`START` last (the keyframe of
    an aggregate none of whose keyframes lies inside a cut)."""

    lay: Layout
    first: np.ndarray  # index of each aggregate's first keyframe (and the end, last)
    pos: np.ndarray
    max_ts: np.ndarray
    max_pts: np.ndarray
    counts: np.ndarray  # (TALLIES, keyframes): a row per tally, read a row at a time
    last: np.ndarray
    states: np.ndarray  # objects
    ts: np.ndarray  # each position's event time, epoch us
    pts: np.ndarray  # each position's processing time, epoch us


def index(
    frame: pl.DataFrame, settings: Settings, tracks: dict[str, Track], lay: Layout | None = None
) -> Index:
    """The :class:`Index` of ``frame`` (every delivery a live fold kept) and its tracks;
    ``lay``: ``frame``'s layout, if the last batch's refold made it (it held every row)."""
    if lay is None:
        lay = layout(frame, settings.types)
    with paused_gc():
        keyframes: list[Keyframe] = []
        chosen = _in_layout_order(tracks, lay.ids)
        sizes = np.fromiter((len(t.frames) + 1 for t in chosen), np.int64, count=len(chosen))
        for track in chosen:
            keyframes.extend(track.frames)
            keyframes.append(track.head)
        keyframes.append(START)
        n = len(keyframes)
        pos, max_ts, max_pts, last = (
            np.fromiter(map(attrgetter(name), keyframes), dtype=np.int64, count=n)
            for name in ("pos", "max_ts", "max_pts", "last")
        )
        counts = np.fromiter(chain.from_iterable(map(attrgetter("counts"), keyframes)), np.int64)
        states = np.empty(n, dtype=object)
        states[:] = list(map(attrgetter("state"), keyframes))
    first = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    times = frame.select(
        pl.col("event_timestamp").dt.epoch("us"), pl.col("processing_timestamp").dt.epoch("us")
    )
    ts = times["event_timestamp"].to_numpy()[lay.order]
    pts = times["processing_timestamp"].to_numpy()[lay.order]
    counts = np.ascontiguousarray(counts.reshape(n, len(TALLIES)).T)
    return Index(lay, first, pos, max_ts, max_pts, counts, last, states, ts, pts)


def _in_layout_order(tracks: dict[str, Track], ids: list[str]) -> list[Track]:
    """The tracks of ``ids``, in that order (matched by a join: looking each id up in the
    dict costs more than the rest of the index at a million events)."""
    held = pl.DataFrame({"id": pl.Series(list(tracks), dtype=pl.String)}).with_row_index("k")
    wanted = pl.DataFrame({"id": pl.Series(ids, dtype=pl.String)}).with_row_index("s")
    place = wanted.join(held, on="id", how="left").sort("s")["k"]
    if place.null_count():
        raise KeyError(f"{place.null_count()} aggregate(s) of the deliveries have no track")
    listed = list(tracks.values())
    return [listed[k] for k in place.to_list()]


@dataclasses.dataclass(frozen=True)
class Answer:
    """The states at a cut, and what a StateAt reports beside them."""

    counts: dict[str, int]
    undecodable_in: list[str]  # aggregates with a delivery that did not decode, in the cut
    ids: list[str]  # the layout's, one per segment
    kept: np.ndarray  # every keyframe's state (objects: the index's)
    best: np.ndarray  # per segment, its keyframe
    replayed: np.ndarray  # the segments the tail folded on (sorted)
    states: list[Any]  # their states, in that order
    applied: np.ndarray  # per segment
    latest: np.ndarray  # per segment
    keep: np.ndarray  # the segments that have a state at the cut
    as_head: np.ndarray  # per segment of ``keep``: its live state is its answer

    def folded(self, part: np.ndarray | None = None) -> Folded:
        """The states of the aggregates of ``keep`` (only those of ``part``, a mask over
        them, if given), in layout order: each its keyframe's, or the tail's fold on from
        it. Only the states asked for are gathered (most of an answer's are its live
        states, taken from their own columns: ``answers.py``)."""
        chosen = self.keep if part is None else self.keep[part]
        with paused_gc():
            states = self.kept[self.best[chosen]].tolist()
            places = np.searchsorted(chosen, self.replayed)
            hit = places < len(chosen)
            hit[hit] = chosen[places[hit]] == self.replayed[hit]
            for k, j in zip(places[hit].tolist(), np.flatnonzero(hit).tolist(), strict=True):
                states[k] = self.states[j]  # one by one: a sequence state stays one object
            ids = [self.ids[s] for s in chosen.tolist()]
            return Folded(ids, states, self.applied[chosen], self.latest[chosen])


def state_at(
    idx: Index,
    frame: pl.DataFrame,
    settings: Settings,
    at: dt.datetime | None,
    known_at: dt.datetime | None,
) -> Answer:
    """The states of ``frame``'s aggregates at ``at``, as known at ``known_at``, folded on
    from the last keyframe inside that cut (see the module's text)."""
    lay = idx.lay
    at_us, known_us = _us(at), _us(known_at)
    best = _starts(idx, at_us, known_us)
    start_pos = idx.pos[best]
    after = lay.pos >= start_pos[lay.segment] if len(lay.pos) else np.zeros(0, dtype=bool)
    # what lies outside the cut is only counted, as the replay's plan counts it; the rest of
    # the cut is what the plan is given (the part before each keyframe is the keyframe's)
    not_known = 0
    if known_at is not None:
        known = idx.pts <= known_us
        not_known = int(np.count_nonzero(after & ~known))
        after &= known
    known_after = int(np.count_nonzero(after))
    after &= idx.ts < at_us
    tail_idx = np.flatnonzero(after)
    outside = {"not_known_yet": not_known, "after_at": known_after - len(tail_idx)}
    rows = np.sort(lay.order[tail_idx])
    tail = frame[rows]
    segments = np.unique(lay.segment[tail_idx])
    names = [lay.ids[s] for s in segments.tolist()]
    first = dict(zip(names, idx.states[best[segments]].tolist(), strict=True))
    created = [i for i, state in first.items() if state is not None]
    replay = prepare(
        tail,
        settings.types,
        None,
        None,
        settings.duplicates,
        strict=settings.strict,
        created=pl.Series(created, dtype=pl.String) if created else None,
    )
    replay.counts.update(outside)
    states, _ = fold(replay, settings.reducer, settings.types, first)
    where = dict(zip(names, segments.tolist(), strict=True))
    return _answer(idx, best, replay, states, frame.height, where)


def _starts(idx: Index, at: int, known_at: int) -> np.ndarray:
    """Per aggregate, the index of the last keyframe whose deliveries all lie inside the cut
    (their times only rise along an aggregate's keyframes: the ones inside come first), or
    of :data:`START`."""
    inside = (idx.max_ts < at) & (idx.max_pts <= known_at)
    if len(idx.first) == 1:
        return np.zeros(0, dtype=np.int64)
    counts = np.add.reduceat(inside[:-1].astype(np.int64), idx.first[:-1])  # START left out
    return np.where(counts > 0, idx.first[:-1] + counts - 1, len(idx.pos) - 1)


def _answer(
    idx: Index, best: np.ndarray, replay, states: list[Any], read: int, where: dict[str, int]
) -> Answer:
    """Each aggregate's state: folded on from its keyframe where the tail applied an event
    to it (``where``: the segment of each aggregate in the tail), else the keyframe's own;
    counts are the keyframes' and the tail's."""
    ids = idx.lay.ids
    folded = np.array([where[i] for i in replay.aggregate_ids], dtype=np.int64)
    by = np.argsort(folded)
    applied = idx.counts[TALLIES.index("applied")].take(best)
    applied[folded] += replay.segment_sizes
    latest = idx.last.take(best)
    latest[folded] = np.maximum(latest[folded], _last_applied(replay))
    keep = np.flatnonzero(applied)
    counts = dict(replay.counts)
    for name, row in zip(TALLIES, idx.counts, strict=True):
        counts[name] += int(row.take(best).sum())
    counts["read"] = read
    broken = idx.counts[TALLIES.index("undecodable")].take(best) > 0
    bad = {ids[s] for s in np.flatnonzero(broken).tolist()}
    if replay.counts["undecodable"]:
        bad.update(replay.undecodable["aggregate_id"].unique().to_list())
    as_head = best[keep] == idx.first[keep + 1] - 1  # the head: the last keyframe of each
    replayed = [states[k] for k in by.tolist()]
    return Answer(
        counts, sorted(bad), ids, idx.states, best, folded[by], replayed, applied, latest, keep,
        as_head,
    )  # fmt: skip


def _last_applied(replay) -> np.ndarray:
    """The latest event time (epoch us) of the events the tail applied, per aggregate."""
    sizes = replay.segment_sizes
    if len(sizes) == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    return np.maximum.reduceat(np.asarray(replay.meta[1], dtype=np.int64), offsets)


def _us(value: dt.datetime | None) -> int:
    """Epoch microseconds (no bound: the largest)."""
    if value is None:
        return _ALWAYS
    return (value - _EPOCH) // dt.timedelta(microseconds=1)
