"""Folding aggregates on from their best keyframe, and keeping new keyframes on the way.

:func:`refold` is the one operation behind a live fold's batch and a keyframe cache's
build: given all of some aggregates' deliveries (the rows of a frame, in arrival order),
where new ones land in each aggregate's causal order, and the aggregates' tracks, it folds
each aggregate from the last keyframe before that point (``track.py``), through time
travel's own plan (``tail.py``), keeps a keyframe every ``every`` deliveries, and replaces
the heads. Everything but the reducer calls and one small object per keyframe is
vectorised.
"""

from __future__ import annotations

import dataclasses
from itertools import chain
from operator import attrgetter
from typing import Any

import numpy as np
import polars as pl

from concursus_lab.common.gc_pause import paused_gc
from concursus_lab.events.types import EventTypes
from concursus_lab.live.layout import Layout
from concursus_lab.live.tail import (
    APPLIED,
    CONFLICTING,
    DUPLICATE,
    OUTCOMES,
    TALLIES,
    fold,
    outcomes,
    plan,
    upcast_rows,
)
from concursus_lab.live.track import NEVER, START, Keyframe, Track
from concursus_lab.timetravel.reducer import Reducer


@dataclasses.dataclass(frozen=True)
class Settings:
    """What a kept fold folds, and how it keeps keyframes."""

    reducer: Reducer
    types: EventTypes
    duplicates: str = "last"
    every: int = 64  # a keyframe every this many deliveries of an aggregate
    limit: int = 32  # most keyframes per aggregate (then every other one is dropped)
    strict: bool = False


@dataclasses.dataclass(frozen=True)
class Refolded:
    """Per aggregate folded (``ids``, at ``segments`` of the layout): the head before (None:
    a new aggregate) and after, and the keyframe the fold started from."""

    ids: list[str]
    segments: np.ndarray
    before: list[Keyframe | None]
    after: list[Keyframe]
    start: list[Keyframe]


def refold(
    frame: pl.DataFrame,
    lay: Layout,
    landing: np.ndarray,
    tracks: dict[str, Track],
    settings: Settings,
    since: int = 0,
) -> Refolded:
    """Fold the aggregates of ``lay`` (every delivery of each, rows of ``frame``) on from the
    last keyframe at or before ``landing`` (a position per aggregate), updating ``tracks``;
    a new aggregate's track notes ``since``, the row its first delivery is kept at or after
    (``kept.py``)."""
    ids = lay.ids
    old = [tracks.get(i) for i in ids]
    starts = [
        START if t is None else t.start_for(p) for t, p in zip(old, landing.tolist(), strict=True)
    ]
    start_pos = np.fromiter(map(attrgetter("pos"), starts), dtype=np.int64, count=len(starts))
    tail_idx = np.flatnonzero(lay.pos >= start_pos[lay.segment])
    arrival = np.sort(lay.order[tail_idx])
    tail = frame[arrival] if len(arrival) < frame.height else frame
    first = {ids[s]: starts[s].state for s in np.unique(lay.segment[tail_idx]).tolist()}
    replay = plan(tail, settings.types, settings.duplicates, first, strict=settings.strict)
    where = np.empty(frame.height, dtype=np.int64)
    where[lay.order] = np.arange(len(lay.order))
    by_order = np.empty(frame.height, dtype=np.int8)  # outcome, indexed by order position
    by_order[where[arrival]] = outcomes(tail, replay, settings.duplicates)
    upcast = upcast_rows(settings.types, frame)[lay.order[tail_idx]]
    running = _running(frame, lay, tail_idx, by_order, starts, upcast)
    applied_at = where[arrival[replay.rows]]  # order position of each applied row
    keep, cut = _snapshots(lay, tail_idx, applied_at, start_pos, settings.every)
    states, kept = fold(replay, settings.reducer, settings.types, first, keep)
    segments = np.unique(lay.segment[tail_idx])
    with paused_gc():  # one keyframe object per aggregate: the collector would walk them all
        marks = np.flatnonzero(keep).tolist()
        framed = running.keyframes(tail_idx, cut, lay, [kept[j] for j in marks])
        new: dict[int, list[Keyframe]] = {}
        for s, keyframe in zip(lay.segment[cut].tolist(), framed, strict=True):
            new.setdefault(s, []).append(keyframe)
        state_of = dict(zip(replay.aggregate_ids, states, strict=True))
        ends = (lay.firsts[1:] - 1)[segments]
        heads = running.keyframes(
            tail_idx, ends, lay, [state_of.get(ids[s], starts[s].state) for s in segments]
        )
        top = lay.top_rank()[segments].tolist()
        limit = settings.limit
        before: list[Keyframe | None] = []
        for s, head, rank in zip(segments.tolist(), heads, top, strict=True):
            track = old[s]
            if track is None:
                before.append(None)
                track = tracks[ids[s]] = Track(head, new.get(s) or [], rank, since)
                if len(track.frames) > limit:
                    track.thin(limit)
            else:
                before.append(track.head)
                track.resumed(starts[s], new.get(s) or [], head, limit, rank)
        chosen = segments.tolist()
        return Refolded(
            [ids[s] for s in chosen], segments, before, heads, [starts[s] for s in chosen]
        )


@dataclasses.dataclass(frozen=True)
class _Running:
    """Per tail position (aligned with ``tail_idx``): counts of each outcome, latest event
    time applied, latest event and processing times, each from the start keyframe on."""

    counts: np.ndarray  # (len(TALLIES), n)
    last: np.ndarray
    max_ts: np.ndarray
    max_pts: np.ndarray

    def keyframes(
        self, tail_idx: np.ndarray, ends: np.ndarray, lay: Layout, states: list[Any]
    ) -> list[Keyframe]:
        """The keyframes just after order positions ``ends`` (tail positions), holding
        ``states``."""
        t = np.searchsorted(tail_idx, ends)
        return list(
            map(
                Keyframe,
                (lay.pos[ends] + 1).tolist(),
                states,
                map(tuple, self.counts[:, t].T.tolist()),
                self.last[t].tolist(),
                self.max_ts[t].tolist(),
                self.max_pts[t].tolist(),
            )
        )


def _running(frame, lay: Layout, tail_idx, by_order, starts: list[Keyframe], upcast) -> _Running:
    seg = lay.segment[tail_idx]
    rows = lay.order[tail_idx]
    times = frame.select(
        pl.col("event_timestamp").dt.epoch("us"), pl.col("processing_timestamp").dt.epoch("us")
    )
    ts = times["event_timestamp"].to_numpy()[rows]
    pts = times["processing_timestamp"].to_numpy()[rows]
    outcome = by_order[tail_idx]
    n = len(starts)
    with paused_gc():
        base = np.fromiter(chain.from_iterable(map(attrgetter("counts"), starts)), np.int64)
        last, max_ts, max_pts = (
            np.fromiter(map(attrgetter(name), starts), dtype=np.int64, count=n)
            for name in ("last", "max_ts", "max_pts")
        )
    base = base.reshape(n, len(TALLIES))
    fresh = np.ones(len(seg), dtype=bool)
    fresh[1:] = seg[1:] != seg[:-1]
    counts = np.empty((len(TALLIES), len(seg)), dtype=np.int64)
    counted = (outcome != DUPLICATE) & (outcome != CONFLICTING)
    for c in range(len(TALLIES)):
        hit = (outcome == c if c < len(OUTCOMES) else counted & upcast).astype(np.int64)
        total = np.cumsum(hit)
        offset = (total - hit)[fresh]  # what came before each segment's first row
        counts[c] = (
            total
            - np.repeat(offset, np.diff(np.append(np.flatnonzero(fresh), len(seg))))
            + base[seg, c]
        )
    applied_ts = np.where(outcome == APPLIED, ts, NEVER)
    key = pl.DataFrame({"s": seg, "a": applied_ts, "t": ts, "p": pts})
    maxes = key.select(pl.col("a", "t", "p").cum_max().over("s"))
    return _Running(
        counts,
        np.maximum(maxes["a"].to_numpy(), last[seg]),
        np.maximum(maxes["t"].to_numpy(), max_ts[seg]),
        np.maximum(maxes["p"].to_numpy(), max_pts[seg]),
    )


def _snapshots(lay: Layout, tail_idx, applied_at, start_pos, every: int):
    """Which applied rows get a keyframe after them (a mask over the replay's rows) and the
    order position each keyframe's cut ends at: about one per ``every`` deliveries, only
    where the cut splits no identity and takes no other applied row, never at the end."""
    n = len(lay.order)
    idx = np.arange(n, dtype=np.int64)
    nxt = np.minimum.accumulate(np.where(lay.clean, idx, n)[::-1])[::-1]
    keep = np.zeros(len(applied_at), dtype=bool)
    if len(applied_at) == 0:
        return keep, np.zeros(0, dtype=np.int64)
    by = np.argsort(applied_at, kind="stable")
    at = applied_at[by]
    cut = nxt[at]
    seg = lay.segment[at]
    following = np.append(at[1:], n)
    following[np.append(seg[1:] != seg[:-1], True)] = n
    pos = lay.pos[cut] + 1
    size = lay.sizes[seg]
    bucket = pos // every
    ok = (cut < following) & (pos < size) & (bucket > start_pos[seg] // every)
    choose = np.flatnonzero(ok)
    if len(choose):
        pairs = seg[choose].astype(np.int64) * (int(bucket.max()) + 1) + bucket[choose]
        _, firsts = np.unique(pairs, return_index=True)
        keep[by[choose[firsts]]] = True
    order = np.flatnonzero(keep)
    return keep, cut[np.argsort(by)][order]
