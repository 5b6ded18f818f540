"""Keyframes: an aggregate's states kept every N deliveries, valid on both time axes.

A :class:`Keyframe` is the state of one aggregate after the first ``pos`` of its deliveries
in causal order (``layout.py``), with what became of those deliveries (``counts``), the
latest event time applied (``last``) and the latest event and processing times among them
(``max_ts``, ``max_pts``). It answers "the state at ``at``, as known at ``known_at``" exactly
when every one of those deliveries lies inside that cut: ``max_ts < at`` and ``max_pts <=
known_at``; the rest of the cut then lies after it in causal order, and is folded on from it.
All three are non-decreasing along an aggregate's keyframes, so the valid ones are always a
first part of them.

A delivery that arrives later lands at a position in that order. The keyframes before it
keep their deliveries, and stay valid for every ``known_at``; those at or after it would now
miss a delivery known later, so they are dropped (the kept replay is folded on from the last
good one, making new ones). A :class:`Track` is one aggregate's keyframes and its head (the
state after all of its deliveries: the live state); its memory is bounded by thinning: past
``limit`` keyframes, every other one is dropped, so old parts of a long history are kept
more sparsely than recent ones.
"""

from __future__ import annotations

import dataclasses
from typing import Any

#: The smallest time (epoch microseconds): "nothing applied yet".
NEVER = -(2**63)


@dataclasses.dataclass(frozen=True, slots=True)
class Keyframe:
    """One aggregate's state after its first ``pos`` deliveries (see the module docstring)."""

    pos: int
    state: Any
    counts: tuple[int, ...]  # TALLIES of tail.py: applied, skipped, duplicate, ..., upcast
    last: int  # latest event time applied, epoch us (NEVER: none)
    max_ts: int  # latest event time among the deliveries, epoch us
    max_pts: int  # latest processing time among them, epoch us

    @property
    def applied(self) -> int:
        return self.counts[0]


#: Before any delivery: no state, nothing counted.
START = Keyframe(0, None, (0, 0, 0, 0, 0, 0), NEVER, NEVER, NEVER)


@dataclasses.dataclass(slots=True)
class Track:
    """An aggregate's keyframes (positions rising) and its head, the state after all of its
    ``head.pos`` deliveries."""

    head: Keyframe
    frames: list[Keyframe] = dataclasses.field(default_factory=list)
    rank: int = 0  # the highest causal rank among its deliveries (``live/window.py``)
    since: int = 0  # its first delivery is kept at this row or after (``live/kept.py``)

    # which keyframe answers a cut (at, known_at): live/travel.py, for every aggregate at once

    def start_for(self, landing: int) -> Keyframe:
        """The last keyframe (the head included) at or before position ``landing``."""
        if self.head.pos <= landing:
            return self.head
        best = START
        for frame in self.frames:
            if frame.pos > landing:
                break
            best = frame
        return best

    def resumed(
        self, start: Keyframe, new: list[Keyframe], head: Keyframe, limit: int, rank: int
    ) -> None:
        """After a replay from ``start``: the keyframes before it kept, ``new`` ones added,
        the head replaced, then thinned to ``limit``; ``rank`` the top rank of the
        deliveries replayed."""
        frames = self.frames
        if new or (frames and frames[-1].pos > start.pos):
            frames = [f for f in frames if f.pos <= start.pos]
            frames.extend(new)
            self.frames = frames
            self.thin(limit)
        self.head = head
        self.rank = max(self.rank, rank)

    def thin(self, limit: int) -> None:
        """Drop every other keyframe until at most ``limit`` are left (the newest kept)."""
        frames = self.frames
        while len(frames) > limit:
            frames = frames[1::2] if len(frames) % 2 == 0 else frames[::2]
        self.frames = frames

    def __len__(self) -> int:
        return len(self.frames) + 1
