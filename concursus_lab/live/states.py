"""A live fold: every aggregate's state kept up to date as deliveries arrive.

:class:`LiveStates` keeps every delivery it was given (of its aggregate type) and, per
aggregate, a :class:`~concursus_lab.live.track.Track` (its live state and keyframes). A batch
folds only what is new: for each aggregate it touches, the new deliveries land somewhere in
that aggregate's causal order (``layout.py``); the aggregate is folded on from its last
keyframe before that point (``refold.py``), so a delivery that arrives in order costs one
reducer call, and a late one re-folds its own aggregate from the keyframe before it, never
another. Where a new delivery repeats an identity, it lands where that identity's first
delivery sits, so that the rule that picks which delivery counts sees them all.

After every batch the states are those :func:`~concursus_lab.state_at` gives over
everything read so far (``tests/unit/test_live.py`` checks it after every batch, late
events, repeats and conflicting deliveries included).

>>> import concursus_lab as cl
>>> from concursus_lab.sample import parcel_state, parcel_types
>>> events = cl.sample.parcels(50, seed=3)
>>> live = cl.live.states(parcel_state, types=parcel_types)
>>> changes = live.update(events[:100])
>>> changes = live.update(events[100:])
>>> live.result().frame.equals(cl.state_at(events, parcel_state, types=parcel_types).frame)
True
"""

from __future__ import annotations

import dataclasses
from operator import attrgetter
from typing import Any

import numpy as np
import polars as pl

from concursus_lab.common.gc_pause import paused_gc
from concursus_lab.common.time import TimeLike
from concursus_lab.events.types import EventTypes, as_event_types
from concursus_lab.frame.cut import bounds
from concursus_lab.frame.identity import check_duplicates, tie_columns
from concursus_lab.frame.schema import columns_of, validate
from concursus_lab.live import answers, following, travel
from concursus_lab.live.changes import Changes, changes_of
from concursus_lab.live.kept import Kept
from concursus_lab.live.layout import Layout, layout
from concursus_lab.live.offsets import Offsets
from concursus_lab.live.refold import Settings, refold
from concursus_lab.live.tail import TALLIES
from concursus_lab.live.track import Track
from concursus_lab.live.window import window
from concursus_lab.timetravel.reducer import Reducer, check_reducer
from concursus_lab.timetravel.reducing import Folded
from concursus_lab.timetravel.replay import UPCAST_COUNTS, prepare
from concursus_lab.timetravel.state_at import StateAt, states_result
from concursus_lab.timetravel.state_columns import state_class


class LiveStates:
    """The states of every aggregate of one type, kept up to date batch by batch.

    Make one with :func:`concursus_lab.live.states`; give it batches with :meth:`update`
    (or let :func:`concursus_lab.live.follow` do it). ``result()`` is the
    :class:`~concursus_lab.results.StateAt` of everything read so far; ``offsets`` says
    where a follow that stopped goes on from.
    """

    def __init__(self, reducer: Reducer, types: EventTypes, settings: Settings) -> None:
        self._reducer = reducer
        self._settings = settings
        self._tracks: dict[str, Track] = {}
        self._kept = Kept()  # every delivery of the type read so far
        self._other = 0  # rows of other aggregate types read
        self.offsets = Offsets()
        self.batches = 0
        self._index: travel.Index | None = None  # kept between time-travel questions
        self._whole: Layout | None = None  # the last batch's layout, when it held every row
        self._heads: answers.Heads | None = None  # the live states' columns, for them too
        self._clean: pl.DataFrame | None = None  # `undecodable` when nothing is

    @property
    def aggregate_type(self) -> str:
        return self._settings.types.aggregate_type

    @property
    def read(self) -> int:
        """Deliveries of the aggregate type read so far."""
        return self._kept.height

    @property
    def deliveries(self) -> pl.DataFrame:
        """Every delivery of the aggregate type read so far, in the order read."""
        if self._kept.height == 0:
            return validate(pl.DataFrame(schema=_schema()), check_parameters=False)
        return self._kept.frame

    def update(self, frame: pl.DataFrame) -> Changes:
        """Fold the deliveries of ``frame`` (a canonical frame: a batch of a follow) into the
        states; returns what changed, per aggregate. Nothing is kept of a batch whose fold
        raised (a reducer's error): its deliveries are not counted as read."""
        frame = validate(frame, check_parameters=False)
        mine = frame.filter(pl.col("aggregate_type") == self.aggregate_type)
        changes = changes_of(self.batches + 1, [], [], [], [], [], mine, 0)
        if mine.height:
            mine = mine.select(*columns_of(mine), *tie_columns(mine))
            win = window(self._kept, mine, self._tracks, self._settings.types)
            touched, new = win.frame, win.new
            lay = layout(touched, self._settings.types, win.base)
            landing, cause = _landing(lay, new)
            refolded = refold(touched, lay, landing, self._tracks, self._settings, self.read)
            segments = refolded.segments
            counts = np.bincount(lay.segment[new[lay.order]], minlength=len(lay.ids))
            changes = changes_of(
                self.batches + 1,
                refolded.ids,
                refolded.before,
                refolded.after,
                landing[segments].tolist(),
                counts[segments].tolist(),
                touched[cause[segments]],
                mine.height,
            )
            self._kept.append(mine)
            self._whole = lay if touched.height == self._kept.height else None
            self._index = None
            self._heads = None
        self._other += frame.height - mine.height
        self.offsets = self.offsets.after(frame)
        self.batches += 1
        return changes

    #: Follow a source (a Kafka topic, a RabbitMQ exchange), folding each batch it brings:
    #: see :func:`concursus_lab.live.following.follow`.
    follow = following.follow

    def result(self) -> StateAt:
        """The :class:`~concursus_lab.results.StateAt` of everything read so far: the same
        as ``cl.state_at(live.deliveries, reducer, types=...)`` (its ``at`` and
        ``known_at`` None)."""
        return self._result()[0]

    def _result(self) -> tuple[StateAt, Folded]:
        """:meth:`result`, and the states it holds (in the tracks' order)."""
        types = self._settings.types
        with paused_gc():  # in the tracks' order: looking each id up costs more than all else
            ids = list(self._tracks)
            heads = list(map(attrgetter("head"), self._tracks.values()))
            states = list(map(attrgetter("state"), heads))
        sizes = np.fromiter((h.applied for h in heads), dtype=np.int64, count=len(heads))
        last = np.fromiter((h.last for h in heads), dtype=np.int64, count=len(heads))
        totals = np.array([h.counts for h in heads], dtype=np.int64).reshape(-1, len(TALLIES))
        counts = dict.fromkeys(("read", "not_known_yet", "after_at", *UPCAST_COUNTS), 0)
        counts.update(zip(TALLIES, totals.sum(axis=0).tolist(), strict=True))
        counts["read"] = self.read
        counts["other_aggregate_types"] = self._other
        keep = sizes > 0  # a replay names only aggregates the reducer saw an event of
        folded = Folded(
            [i for i, k in zip(ids, keep.tolist(), strict=True) if k],
            [s for s, k in zip(states, keep.tolist(), strict=True) if k],
            sizes[keep],
            last[keep],
        )
        per_aggregate = totals[:, TALLIES.index("undecodable")].tolist()
        bad = [i for i, n in zip(ids, per_aggregate, strict=True) if n]
        seen = _Seen(counts, self._undecodable(bad, None, None))
        kind = state_class(self._reducer)
        return states_result(types, None, None, seen, folded, None, kind), folded

    def state_at(self, at: TimeLike | None = None, known_at: TimeLike | None = None) -> StateAt:
        """The states at event time ``at``, as known at processing time ``known_at``, of
        everything read so far: the same as ``cl.state_at(live.deliveries, reducer,
        types=..., at=at, known_at=known_at)``, folded on from the keyframes inside that
        cut (``live/travel.py``) rather than from the beginning.

        The first question after a batch places every delivery kept again (a sort, as a
        replay's); the ones after it reuse that.
        """
        at_, known_at_ = bounds(at, known_at)
        if self._index is None:
            self._index = travel.index(self.deliveries, self._settings, self._tracks, self._whole)
            self._whole = None
        answer = travel.state_at(self._index, self.deliveries, self._settings, at_, known_at_)
        counts = {**answer.counts, "other_aggregate_types": self._other}
        seen = _Seen(counts, self._undecodable(answer.undecodable_in, at_, known_at_))
        kind = state_class(self._reducer)
        types = self._settings.types
        if self._heads is None:
            result, folded = self._result()
            self._heads = answers.heads(result, folded, self._index.lay.ids)
        asked = {"types": types, "at": at_, "known_at": known_at_, "seen": seen, "kind": kind}
        quick = answers.answer_frame(self._heads, answer, asked)
        if quick is not None:
            return quick
        return states_result(types, at_, known_at_, seen, answer.folded(), None, kind)

    def _undecodable(self, bad: list[str], at, known_at) -> pl.DataFrame:
        """The deliveries that could not be decoded, with their reasons (the replay of the
        few aggregates ``bad`` that have one, worked out again when asked)."""
        settings = self._settings
        if not bad and self._clean is not None:
            return self._clean
        frame = self.deliveries
        frame = frame.filter(pl.col("aggregate_id").is_in(bad)) if bad else frame.clear()
        found = prepare(frame, settings.types, at, known_at, settings.duplicates, strict=False)
        if not bad:
            self._clean = found.undecodable  # none: the same empty frame every time
        return found.undecodable

    @property
    def states(self) -> dict[str, Any]:
        """``aggregate_id -> state``, every aggregate that has one, sorted by id."""
        return self.result().states

    def memory(self) -> dict[str, int]:
        """What is kept: deliveries (and their bytes, as polars estimates them), aggregates,
        keyframes (live states included; their states' size is the reducer's)."""
        return {
            "deliveries": self.read,
            "delivery_bytes": self.deliveries.estimated_size(),
            "aggregates": len(self._tracks),
            "keyframes": sum(len(t) for t in self._tracks.values()),
        }

    def summary(self) -> str:
        """One deterministic line: what was read and how many states there are."""
        states = sum(1 for t in self._tracks.values() if t.head.state is not None)
        return (
            f"live {self.aggregate_type} states: {states:,} states from {self.read:,} "
            f"deliveries in {self.batches:,} batches"
        )

    def __repr__(self) -> str:
        return self.summary()


@dataclasses.dataclass(frozen=True)
class _Seen:
    """What a StateAt reports beside its states (a replay's counts and undecodable rows)."""

    counts: dict[str, int]
    undecodable: pl.DataFrame


def _schema() -> dict[str, pl.DataType]:
    from concursus_lab.frame.schema import SCHEMA

    return dict(SCHEMA)


def _landing(lay: Layout, new: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per aggregate of ``lay``: the first position (in causal order) that its new
    deliveries change (where an identity they repeat is first delivered), and the frame row
    of the new delivery that lands first (the cause of the change)."""
    is_new = new[lay.order]
    keys = pl.DataFrame({"s": lay.segment, "i": lay.identity[lay.order], "p": lay.pos})
    first = keys.select(pl.col("p").min().over("s", "i")).to_series().to_numpy()
    n = len(lay.ids)
    landing = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(landing, lay.segment[is_new], first[is_new])
    where = np.flatnonzero(is_new)
    order = np.lexsort((first[where], lay.segment[where]))
    seg = lay.segment[where[order]]
    leads = np.append(True, seg[1:] != seg[:-1])
    cause = np.zeros(n, dtype=np.int64)
    cause[seg[leads]] = lay.order[where[order][leads]]
    return landing, cause


def states(
    reducer: Reducer,
    *,
    types: EventTypes,
    duplicates: str = "last",
    every: int = 64,
    keyframes: int = 32,
    strict: bool = False,
) -> LiveStates:
    """A live fold of ``types``' aggregates with ``reducer``, empty until given batches.

    Parameters
    ----------
    reducer, types, duplicates, strict
        As :func:`~concursus_lab.state_at` takes them.
    every
        Keep a keyframe (an aggregate's state part way) every this many deliveries of an
        aggregate, so that a late delivery re-folds from the keyframe before it.
    keyframes
        Most keyframes kept per aggregate; past it, every other one is dropped (memory per
        aggregate stays bounded; a late delivery far in the past folds on from further back).
    """
    from concursus_lab.exceptions import SchemaError

    check_reducer(reducer)
    types = as_event_types(types)
    duplicates = check_duplicates(duplicates)
    for name, value in (("every", every), ("keyframes", keyframes)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise SchemaError(f"`{name}` must be a positive int, got {value!r}.")
    splits = [step.label for step in types.upcasters if step.split]
    if splits:
        raise SchemaError(
            f"a live fold upcasts event for event, and {types.aggregate_type!r} declares "
            f"{len(splits)} upcaster(s) that split one event into several ({', '.join(splits)}): "
            "a split event's parts have no place of their own among the deliveries that "
            "keyframes count. Fold with cl.state_at, which splits them (docs/versions.md)."
        )
    settings = Settings(reducer, types, duplicates, every, keyframes, strict)
    return LiveStates(reducer, types, settings)
