"""``cl.trace``: one aggregate's replay, step by step: what each delivery did to its state.

A trace lists every delivery of one aggregate in causal replay order, each with what became
of it (the statuses of :func:`cl.history <concursus_lab.history>`: applied, skipped by the
creation rules, duplicate, after ``at``, not known yet, undecodable), the state before and
after it, and the fields it changed (``timetravel/changes.py``). Nothing here decides what
a replay applies: a trace walks the replay plan of ``cl.state_of``
(``timetravel/replay.py``) as ``cl.history`` shows it, each applied step with the very
instance that plan's fold builds for that delivery. So the state after every step is, by
construction, ``cl.state_of`` of the deliveries up to that step.

A breakpoint (``stop_when=lambda state, event: ...``) ends the trace after the first applied
event after which it holds; a reducer that raises ends it at that event, with the state
before and the error (the :class:`~concursus_lab.exceptions.ReducerError` ``cl.state_of``
would raise). ``.changed("status")`` keeps the steps that changed a field, and
``.compare(other)`` (``trace/compare.py``) lines up two replays of one aggregate.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import functools
import html
from collections.abc import Iterator
from typing import Any

import polars as pl

from concursus_lab.common.printed import Printed
from concursus_lab.common.text import plural
from concursus_lab.common.time import TimeLike, when
from concursus_lab.events.types import EventTypes
from concursus_lab.events.upcasters import STORED, STORED_DTYPE
from concursus_lab.exceptions import ReducerError, SchemaError
from concursus_lab.timetravel.aggregate_ids import deliveries_of
from concursus_lab.timetravel.changes import changes, fields
from concursus_lab.timetravel.history import INDEX, PLANNED, as_frame
from concursus_lab.timetravel.reducer import (
    Reducer,
    check_reducer,
    raise_reducer_error,
    returned_none,
)
from concursus_lab.timetravel.replay import Plan, prepare
from concursus_lab.timetravel.state_at import arguments
from concursus_lab.timetravel.trace.step import RAISED, Condition, Step, holds

#: Most steps a printed trace lists (the frame and ``.steps`` hold them all).
SHOWN = 40


@dataclasses.dataclass(frozen=True, repr=False, eq=False)
class Trace(Printed):
    """One aggregate's replay, a :class:`Step` per delivery; build it with :func:`trace`.

    Attributes
    ----------
    steps
        The deliveries in causal replay order (those a breakpoint or an error cut off are
        not there; after ``.changed(field)``, only the steps that changed it).
    aggregate_type, aggregate_id, at, known_at, duplicates
        The question asked.
    stopped
        ``"breakpoint"``, ``"error"`` or None (the trace ran to the end).
    error
        The :class:`~concursus_lab.exceptions.ReducerError` that stopped it, if one did.
    deliveries
        How many deliveries the aggregate has (``len(trace)`` may be fewer).
    stopped_at
        The step a breakpoint or an error stopped at (None: it ran to the end).
    state
        The state the replay ended with: after its last step (before it, when the reducer
        raised there), also after ``.changed(field)`` dropped steps.
    """

    steps: tuple[Step, ...]
    aggregate_type: str
    aggregate_id: str
    at: dt.datetime | None
    known_at: dt.datetime | None
    duplicates: str
    stopped: str | None
    error: ReducerError | None
    deliveries: int
    state: Any
    stopped_at: Step | None
    kept: str | None = None  # the field `.changed` kept steps for

    def changed(self, field: str) -> Trace:
        """This trace with only the steps that changed ``field`` (a new trace)."""
        known = {name for step in self.steps for name in _field_names(step)}
        if field not in known:
            near = difflib.get_close_matches(field, sorted(known), 1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise SchemaError(
                f"`field` {field!r} is not a field of any state in this trace{hint}; its "
                f"states have {sorted(known)!r}."
            )
        kept = tuple(step for step in self.steps if step.changed(field))
        return dataclasses.replace(self, steps=kept, kept=field)

    def find(self, condition: Condition, *, after: int = 0) -> Step | None:
        """The first applied step numbered above ``after`` after which ``condition(state,
        event)`` holds (None if there is none): the breakpoint rule of ``stop_when``."""
        for step in self.steps:
            if step.number > after and holds(condition, step):
                return step
        return None

    def compare(self, other: Trace) -> Any:
        """Line this trace up with ``other`` (the same aggregate at another cut): where the
        two replays part, and the deliveries counted differently (see ``trace/compare.py``)."""
        from concursus_lab.timetravel.trace.compare import compare

        return compare(self, other)

    @functools.cached_property
    def frame(self) -> pl.DataFrame:
        """The steps as a frame: one row per step, states and values as their reprs."""
        change = pl.Struct({"field": pl.String, "before": pl.String, "after": pl.String})
        s = self.steps
        return pl.DataFrame(
            {
                "step": [x.number for x in s],
                "status": [x.status for x in s],
                "name": [x.name for x in s],
                "event_timestamp": [x.event_timestamp for x in s],
                "processing_timestamp": [x.processing_timestamp for x in s],
                "stream_id": [x.stream_id for x in s],
                "changed": [[c.field for c in x.changes] for x in s],
                "changes": [
                    [
                        {"field": c.field, "before": repr(c.before), "after": repr(c.after)}
                        for c in x.changes
                    ]
                    for x in s
                ],
                "before": [repr(x.before) for x in s],
                "after": [repr(x.after) for x in s],
                "stored": [x.stored for x in s],
            },
            schema_overrides={
                "step": pl.Int64,
                "event_timestamp": pl.Datetime("us", "UTC"),
                "processing_timestamp": pl.Datetime("us", "UTC"),
                "changed": pl.List(pl.String),
                "changes": pl.List(change),
                "stored": STORED_DTYPE,
            },
        )

    def summary(self) -> str:
        """The trace as a short deterministic log: the question, each step, the outcome."""
        tally: dict[str, int] = {}
        for step in self.steps:
            tally[step.status] = tally.get(step.status, 0) + 1
        counts = ", ".join(f"{n:,} {status}" for status, n in tally.items())
        kept = f", {len(self.steps):,} of them changed {self.kept!r}" if self.kept else ""
        lines = [
            f"Trace of {self.aggregate_type} {self.aggregate_id!r} at {_bound(self.at)}, as "
            f"known at {_bound(self.known_at)}: {plural(self.deliveries, 'delivery', 'deliveries')}"
            f"{kept}" + (f" ({counts})" if counts else ""),
            *(step.line() for step in self.steps[:SHOWN]),
        ]
        if len(self.steps) > SHOWN:
            lines.append(f"  ... and {len(self.steps) - SHOWN:,} more steps (see .steps, .frame)")
        lines += self._outcome()
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        try:
            from concursus_lab.timetravel.trace.view import trace_html

            return trace_html(self, SHOWN)
        except Exception as exc:  # a display hook must never raise
            return f"<pre>{html.escape(repr(exc))}</pre>"

    def _outcome(self) -> list[str]:
        stop = self.stopped_at
        if self.stopped == "error" and stop is not None and self.error is not None:
            cause = self.error.__cause__ or self.error
            return [
                f"stopped at step {stop.number}: the reducer raised "
                f"{type(cause).__name__}: {cause}",
                f"state before: {stop.before!r}",
            ]
        if self.stopped == "breakpoint" and stop is not None:
            left = self.deliveries - stop.number
            return [
                f"stopped at step {stop.number} by the breakpoint ({left:,} not replayed)",
                f"state: {stop.after!r}",
            ]
        return [f"state: {self.state!r}"]

    def __len__(self) -> int:
        return len(self.steps)

    def __iter__(self) -> Iterator[Step]:
        return iter(self.steps)

    def __getitem__(self, index: int) -> Step:
        return self.steps[index]


def trace(
    events: pl.DataFrame,
    reducer: Reducer,
    *,
    types: EventTypes,
    aggregate_id: str,
    at: TimeLike | None = None,
    known_at: TimeLike | None = None,
    duplicates: str = "last",
    stop_when: Condition | None = None,
) -> Trace:
    """Step through one aggregate's replay: what each delivery did to its state.

    Parameters
    ----------
    events
        A canonical event frame (every delivery, to see duplicates).
    reducer
        A plain function ``(state | None, event) -> state``, as for :func:`cl.state_at
        <concursus_lab.state_at>`.
    types
        The :class:`~concursus_lab.EventTypes` of the aggregate type.
    aggregate_id
        The aggregate to trace.
    at, known_at, duplicates
        As for :func:`cl.state_of <concursus_lab.state_of>`: event time (exclusive),
        processing time (inclusive), which delivery of an identity counts.
    stop_when
        A breakpoint ``(state, event) -> bool``: the trace ends after the first applied
        event after which it holds (``state`` is the state after ``event``).

    Returns
    -------
    Trace
        ``.steps`` (one :class:`Step` per delivery), ``.state``, ``.frame``, ``.stopped``
        and ``.error``; printed, a short log of the state.

    Examples
    --------
    >>> import concursus_lab as cl
    >>> from concursus_lab.sample import parcel_state, parcel_types
    >>> messy = cl.sample.fixture("messy")
    >>> steps = cl.trace(messy, parcel_state, types=parcel_types, aggregate_id="parcel-B")
    >>> [(step.name, step.status) for step in steps][:2]  # its receipt arrived late
    [('receivedAtDepot', 'applied'), ('loadedOntoTruck', 'applied')]
    >>> steps[1].changes[1]
    Change(field='truck', before=None, after='HAC-2')
    >>> failed = cl.trace(messy, parcel_state, types=parcel_types, aggregate_id="parcel-B",
    ...                   stop_when=lambda state, event: state.status == "failed")
    >>> failed.stopped_at.name, failed.state.status
    ('deliveryFailed', 'failed')
    """
    if stop_when is not None and not callable(stop_when):
        raise SchemaError(
            f"`stop_when` must be a function (state, event) -> bool, got {stop_when!r}; "
            "for example stop_when=lambda state, event: state.status == 'failed'."
        )
    types, frame, at, known_at = arguments(events, types, at, known_at, duplicates)
    check_reducer(reducer)
    mine = deliveries_of(frame, aggregate_id, types.aggregate_type)  # as state_of does
    plan = prepare(mine, types, at, known_at, duplicates, strict=False, shown=True)
    marked = as_frame(plan, mine, types)  # cl.history's frame: the plan's deliveries
    fold = _Fold(reducer, types, aggregate_id, plan.events(), stop_when)
    steps = fold.run(marked, _reasons(plan, marked))
    return Trace(
        tuple(steps),
        types.aggregate_type,
        aggregate_id,
        at,
        known_at,
        duplicates,
        fold.stopped,
        fold.error,
        marked.height,
        steps[-1].after if steps else None,
        steps[-1] if fold.stopped else None,
    )


#: The fields of a Step that are columns of cl.history, in Step's order.
_FROM_HISTORY = tuple(f.name for f in dataclasses.fields(Step))[1:7]


class _Fold:
    """The fold of ``cl.state_of``, one event at a time, keeping every step."""

    def __init__(self, reducer, types, aggregate_id, seen, stop_when) -> None:
        self.reducer, self.types, self.aggregate_id = reducer, types, aggregate_id
        self.seen, self.stop_when = seen, stop_when
        self.stopped: str | None = None
        self.error: ReducerError | None = None

    def run(self, marked: pl.DataFrame, reasons: dict[int, str]) -> list[Step]:
        columns = [marked[c].to_list() for c in _FROM_HISTORY]
        stored = marked[STORED].to_list() if STORED in marked.columns else [None] * marked.height
        index = marked[INDEX].to_list()
        steps: list[Step] = []
        state = None
        for i, (status, *row) in enumerate(zip(*columns, strict=True)):
            was = stored[i]
            if status != "applied":
                steps.append(Step(i + 1, status, *row, None, state, state, (), reasons.get(i), was))
                continue
            event = self.seen[index[i]]  # the event the plan's fold applies for this row
            after, error = self._apply(state, event, index[i] + 1)
            if error is not None:
                self.stopped, self.error = "error", error
                steps.append(Step(i + 1, RAISED, *row, event, state, state, (), None, was))
                break
            changed = changes(state, after)
            step = Step(i + 1, status, *row, event, state, after, changed, None, was)
            steps.append(step)
            state = after
            if self.stop_when is not None and holds(self.stop_when, step):
                self.stopped = "breakpoint"
                break
        return steps

    def _apply(self, state: Any, event: Any, applied: int) -> tuple[Any, ReducerError | None]:
        try:
            after = self.reducer(state, event)
        except Exception as exc:
            try:  # state_of's own error: the events replayed again, one by one
                raise_reducer_error(
                    self.reducer,
                    self.seen[:applied],
                    state=None,
                    subject=f"aggregate {self.aggregate_id!r}",
                    aggregate_id=self.aggregate_id,
                    error=exc,
                )
            except ReducerError as error:
                return state, error
        if after is None and self.types.declares_initial:
            return state, returned_none(self.aggregate_id, event)
        return after, None


def _reasons(plan: Plan, marked: pl.DataFrame) -> dict[int, str]:
    """Why each undecodable step could not be decoded, by its position in ``marked``."""
    reasons = plan.classified.reasons
    planned = marked[PLANNED].to_list()
    return {i: reasons[row] for i, row in enumerate(planned) if row in reasons}


def _field_names(step: Step) -> list[str]:
    return [*fields(step.before), *fields(step.after)]


def _bound(value: dt.datetime | None) -> str:
    return "any time" if value is None else f"{when(value)} UTC"
