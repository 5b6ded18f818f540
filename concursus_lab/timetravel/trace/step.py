"""One step of a trace, and what every printed trace result shares.

A :class:`Step` is one delivery of the aggregate: what became of it, the event the reducer
saw, the state before and after, and the fields it changed. :func:`holds` is the breakpoint
rule: only an applied step can stop a trace, and a condition that raises is a
:class:`~concursus_lab.exceptions.BreakpointError` naming the step. :class:`Printed`
(``common/printed.py``) is the base of :class:`~concursus_lab.timetravel.trace.walk.Trace` and its
comparison: a result whose text and notebook view are its summary.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from typing import Any

from concursus_lab.common.text import clip
from concursus_lab.common.time import when
from concursus_lab.exceptions import BreakpointError
from concursus_lab.timetravel.changes import Change

#: The status of the step at which the reducer raised (the trace ends there).
RAISED = "raised"
Condition = Callable[[Any, Any], Any]


@dataclasses.dataclass(frozen=True, repr=False, eq=False)
class Step:
    """One delivery of a trace: what became of it, and the state before and after it.

    ``number`` counts from 1 over every delivery of the aggregate; ``event`` is the
    instance the reducer saw (None unless ``status`` is ``"applied"`` or ``"raised"``);
    ``reason`` says why an undecodable delivery could not be decoded; ``stored`` is the
    event as it was stored when an upcaster rewrote it (a dict of ``name``, ``version``,
    ``parameters`` and ``part``, the part of a split event), else None: ``name`` and
    ``parameters`` are then the event's as upcast.
    """

    number: int
    status: str
    name: str
    event_timestamp: dt.datetime
    processing_timestamp: dt.datetime
    stream_id: str
    parameters: str
    event: Any
    before: Any
    after: Any
    changes: tuple[Change, ...]
    reason: str | None = None
    stored: dict[str, Any] | None = None

    def changed(self, field: str) -> bool:
        """Whether this step changed ``field``."""
        return any(change.field == field for change in self.changes)

    def line(self) -> str:
        """The step as one line of a log: number, status, event, times, what changed."""
        what = ", ".join(
            f"{c.field}: {clip(repr(c.before), 24)} -> {clip(repr(c.after), 24)}"
            for c in self.changes
        )
        if self.reason:
            what = self.reason
        if self.stored is not None:
            was = self.stored
            part = f", part {was['part'] + 1}" if was["part"] else ""
            what = f"(upcast from {was['name']} v{was['version']}{part}) {what}"
        stream = f" [{self.stream_id}]" if self.stream_id else ""
        return (
            f"{self.number:>4}  {self.status:<13} {self.name:<18} {when(self.event_timestamp)}"
            f"{stream}  known {when(self.processing_timestamp)}  {what}".rstrip()
        )

    def __repr__(self) -> str:
        return f"Step({self.line().strip()})"


def holds(condition: Condition, step: Step) -> bool:
    """Whether a breakpoint holds after ``step`` (only applied steps can stop a trace);
    a condition that raises is a :class:`BreakpointError` naming the step."""
    if step.status != "applied":
        return False
    try:
        return bool(condition(step.after, step.event))
    except Exception as exc:
        raise BreakpointError(
            f"the breakpoint raised {type(exc).__name__}: {exc} after step {step.number} "
            f"({step.event!r}, state {step.after!r}); a breakpoint is a function (state, "
            "event) -> bool that works for every state and event."
        ) from exc
