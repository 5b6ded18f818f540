"""The explorer's answers at any cut, from one replay of the aggregate walked once.

Moving a slider must not replay the whole aggregate again. :class:`Cuts` walks it once
(:func:`cl.trace <concursus_lab.trace>` of every delivery: replay A) and keeps the state
before and after every step and :func:`cl.history <concursus_lab.history>`'s marks. The
replay at a cut (``at``, ``known_at``) is A without the deliveries the cut leaves out. Up to
the first of those that matters (the *keyframe*: the first row of an event that A applied,
or whose deliveries the cut parts, so that another of them may win), the two replays see
the same states: what else A did not apply changed nothing. So the state there is A's,
and only the deliveries inside the cut that come after it in causal order are folded on
from it, through time travel's own plan (``timetravel/replay.py``, told that a state
exists, as a live fold resumes: ``live/``). Their marks come from that plan; every other
delivery keeps A's mark, but those the cut leaves out: "not known yet" (processed after
``known_at``) or "not happened yet" (at or after ``at``). When the keyframe lies after every
delivery inside the cut, nothing is folded at all: moving ``at`` along one ``known_at``
mostly reads the walk (causal order puts terminal events last, so terminal events before
``at`` can lie after an event that ``at`` leaves out: those are folded on).

An aggregate whose identity (``event_id`` or ``sequence``) has deliveries at different event
times, and types that upcast, are answered the slow way (:meth:`Cuts.answer` says None,
and the caller asks ``cl.state_of`` and ``cl.history``), as is a cut whose fold raises
(``cl.state_of`` says why).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from functools import reduce
from typing import Any

import numpy as np
import polars as pl

from concursus_lab.common.time import epoch_us
from concursus_lab.events.types import EventTypes
from concursus_lab.frame.identity import IDENTITY, identity_of
from concursus_lab.timetravel.history import as_frame, history
from concursus_lab.timetravel.replay import prepare
from concursus_lab.timetravel.trace import RAISED, trace

#: The ``cl.history`` statuses a cut on ``at`` reads or gives.
AFTER_AT, NOT_KNOWN_YET, APPLIED = "after_at", "not_known_yet", "applied"


class Cuts:
    """One aggregate's answers at any cut (see the module).

    ``labels`` renames ``cl.history``'s statuses in the frames :meth:`answer` returns.
    """

    def __init__(
        self,
        mine: pl.DataFrame,
        reducer: Callable[[Any, Any], Any],
        *,
        types: EventTypes,
        aggregate_id: str,
        duplicates: str,
        labels: Mapping[str, str],
    ) -> None:
        options = {"duplicates": duplicates}
        self._reducer, self._types, self._duplicates = reducer, types, duplicates
        self._labels = dict(labels)
        self._created = pl.Series([aggregate_id], dtype=pl.String)
        self.steps = trace(mine, reducer, types=types, aggregate_id=aggregate_id, **options).steps
        full = history(mine, aggregate_id, types=types, **options)
        self._rows = full.drop("status")  # the deliveries, as a plan takes them
        self._event_us = full["event_timestamp"].dt.epoch("us").to_numpy()
        self._processing_us = full["processing_timestamp"].dt.epoch("us").to_numpy()
        self._applied = (full["status"] == APPLIED).to_numpy()
        self._event, self._first = _events_of(full, identity_of(mine))
        self._history = full.with_columns(pl.col("status").replace_strict(self._labels))
        raised = [i for i, s in enumerate(self.steps) if s.status == RAISED]
        self._walked = raised[0] if raised else len(self.steps)  # steps with a state after
        whole = len(self.steps) == full.height or bool(raised)
        self.usable = whole and not types.upcasters and _one_time_per_event(mine)
        self.folded = 0  # deliveries the last answer folded on from its keyframe

    def answer(self, at: dt.datetime, known_at: dt.datetime) -> tuple[Any, pl.DataFrame] | None:
        """The state at (``at``, ``known_at``) and the marked history, or None where the
        walked replay cannot answer (see the module)."""
        self.folded = 0
        if not self.usable:
            return None
        known = self._processing_us <= epoch_us(known_at)
        inside = known & (self._event_us < epoch_us(at))
        taken = np.flatnonzero(inside)
        last = int(taken[-1]) if taken.size else -1
        # what the cut leaves out and the walk applied, or an event the cut parts
        parted = np.bincount(self._event, weights=inside, minlength=self._first.size) > 0
        missing = ~inside & (self._applied | parted[self._event])
        key = int(self._first[self._event[np.argmax(missing)]]) if missing.any() else len(inside)
        status = (
            pl.when(pl.Series(~known))
            .then(pl.lit(self._labels[NOT_KNOWN_YET]))
            .when(pl.Series(~inside))
            .then(pl.lit(self._labels[AFTER_AT]))
        )
        if key > last:  # nothing A applied is missing before the last delivery before `at`
            if last >= self._walked:
                return None  # A raised inside the cut: cl.state_of says so
            state = self.steps[last].after if last >= 0 else None
            return state, self._history.with_columns(status.otherwise("status").alias("status"))
        if key >= self._walked:
            return None
        tail = taken[taken >= key]
        self.folded = tail.size
        folded = self._fold_on(self.steps[key].before, tail)
        if folded is None:
            return None
        state, marks = folded
        shown = self._history["status"].scatter(tail, marks)
        return state, self._history.with_columns(status.otherwise(shown).alias("status"))

    def _fold_on(self, start: Any, tail: np.ndarray) -> tuple[Any, pl.Series] | None:
        """The deliveries ``tail`` (rows of A, in causal order) folded on from ``start``:
        the state after them and their marks; None if the fold raises or ends in no state."""
        rows = self._rows[tail]
        created = self._created if start is not None else None
        plan = prepare(
            rows,
            self._types,
            None,
            None,
            self._duplicates,
            strict=False,
            created=created,
            shown=True,
        )
        marked = as_frame(plan, rows, self._types)
        try:
            state = reduce(self._reducer, plan.events(), start)
        except Exception:  # cl.state_of raises it, with the events that led to it
            return None
        if state is None and len(plan.rows):
            return None
        return state, marked["status"].replace_strict(self._labels)


def _events_of(full: pl.DataFrame, identity: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Each row's event (a number per identity) and each event's first row."""
    codes = full.select(pl.struct(list(identity)).rank("dense").cast(pl.Int64) - 1).to_series()
    event = codes.to_numpy()
    first = np.full(int(event.max()) + 1 if event.size else 0, event.size, dtype=np.int64)
    np.minimum.at(first, event, np.arange(event.size))
    return event, first


def _one_time_per_event(mine: pl.DataFrame) -> bool:
    """Whether every event's deliveries share one event time (always so by IDENTITY)."""
    identity = identity_of(mine)
    if set(IDENTITY) <= set(identity):
        return True
    times = mine.group_by(list(identity)).agg(pl.col("event_timestamp").n_unique().alias("n"))
    return times.height == 0 or times["n"].max() == 1
