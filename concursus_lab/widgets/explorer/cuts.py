"""The explorer's answers along the ``at`` axis, from one replay walked per ``known_at``.

Moving the ``at`` slider must not replay the whole aggregate again. :class:`AtCuts` walks
it once (:func:`cl.trace <concursus_lab.trace>` of everything that had happened, as known
at one ``known_at``: replay A) and keeps the state before and after every step and
:func:`cl.history <concursus_lab.history>`'s marks. The replay at an ``at`` is A without
the deliveries at or after ``at``. Up to the first of those that A applied (the
*keyframe*), the two replays see the same states: what A did not apply changed nothing. So
the state there is A's, and only the deliveries before ``at`` that come after it in causal
order (causal order puts terminal events last, so a terminal event before ``at`` can come
after a later event of another kind) are folded on from it, through time travel's own plan
(``timetravel/replay.py``, told that a state exists, as a live fold resumes: ``live/``).
Their marks come from that plan; every other delivery keeps A's mark, but those at or
after ``at``, which become "not happened yet". When the keyframe lies after every delivery
before ``at``, nothing is folded at all.

This holds because deliveries of one event (one identity) share their event time, so a
cut never parts them; an aggregate whose identity (``event_id`` or ``sequence``) has
deliveries at different event times, and types that upcast, are answered the slow way
(:meth:`AtCuts.answer` says None, and the caller asks ``cl.state_of`` and
``cl.history``), as is a cut whose fold raises (``cl.state_of`` says why).
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


class AtCuts:
    """One aggregate's answers at any ``at`` for one ``known_at`` (see the module).

    ``labels`` renames ``cl.history``'s statuses in the frames :meth:`answer` returns.
    """

    def __init__(
        self,
        mine: pl.DataFrame,
        reducer: Callable[[Any, Any], Any],
        *,
        types: EventTypes,
        aggregate_id: str,
        known_at: dt.datetime,
        duplicates: str,
        labels: Mapping[str, str],
    ) -> None:
        options = {"known_at": known_at, "duplicates": duplicates}
        self.known_at = known_at
        self._reducer, self._types, self._duplicates = reducer, types, duplicates
        self._labels = dict(labels)
        self._created = pl.Series([aggregate_id], dtype=pl.String)
        self.steps = trace(mine, reducer, types=types, aggregate_id=aggregate_id, **options).steps
        full = history(mine, aggregate_id, types=types, **options)
        self._rows = full.drop("status")  # the deliveries, as a plan takes them
        self._event_us = full["event_timestamp"].dt.epoch("us").to_numpy()
        self._known = (full["status"] != NOT_KNOWN_YET).to_numpy()
        self._applied = (full["status"] == APPLIED).to_numpy()
        self._history = full.with_columns(pl.col("status").replace_strict(self._labels))
        raised = [i for i, s in enumerate(self.steps) if s.status == RAISED]
        self._walked = raised[0] if raised else len(self.steps)  # steps with a state after
        whole = len(self.steps) == full.height or bool(raised)
        self.usable = whole and not types.upcasters and _one_time_per_event(mine)
        self.folded = 0  # deliveries the last answer folded on from its keyframe

    def answer(self, at: dt.datetime) -> tuple[Any, pl.DataFrame] | None:
        """The state at ``at`` and the marked history, or None where the walked replay
        cannot answer (see the module)."""
        self.folded = 0
        if not self.usable:
            return None
        inside = self._known & (self._event_us < epoch_us(at))
        later = self._known & ~inside
        taken = np.flatnonzero(inside)
        last = int(taken[-1]) if taken.size else -1
        cut_applied = later & self._applied
        key = int(np.argmax(cut_applied)) if cut_applied.any() else len(inside)
        status = pl.when(pl.Series(later)).then(pl.lit(self._labels[AFTER_AT]))
        if key > last:  # nothing A applied is missing before the last delivery before `at`
            if last >= self._walked:
                return None  # A raised inside the cut: cl.state_of says so
            state = self.steps[last].after if last >= 0 else None
            return state, self._history.with_columns(status.otherwise("status").alias("status"))
        if key >= self._walked:
            return None
        tail = taken[taken > key]
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


def _one_time_per_event(mine: pl.DataFrame) -> bool:
    """Whether every event's deliveries share one event time (always so by IDENTITY)."""
    identity = identity_of(mine)
    if set(IDENTITY) <= set(identity):
        return True
    times = mine.group_by(list(identity)).agg(pl.col("event_timestamp").n_unique().alias("n"))
    return times.height == 0 or times["n"].max() == 1
