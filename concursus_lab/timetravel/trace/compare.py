"""Two replays of one aggregate side by side: where they part, and which deliveries did it.

``cl.trace(..., known_at=P1).compare(cl.trace(..., known_at=P2))`` lines up two traces of
the same deliveries (one aggregate, two cuts on either axis, or two ``duplicates=``
choices). Both list every delivery in the same causal order, so step *n* of one is step
*n* of the other. They **part** at the first step after which their states differ; the
deliveries **counted differently** (the reducer saw them in one replay only: not known yet
at P1 but applied at P2, the late ones; a duplicate that won in one and lost in the other)
are why. One not counted in either (not known yet in one, after ``at`` in the other) is
not among them.

>>> import concursus_lab as cl
>>> from concursus_lab.sample import parcel_state, parcel_types
>>> messy = cl.sample.fixture("messy")
>>> def at(known_at):
...     return cl.trace(messy, parcel_state, types=parcel_types, aggregate_id="parcel-A",
...                     known_at=known_at)
>>> comparison = at("2026-03-02 09:00").compare(at(None))
>>> comparison.parted_at, comparison.differences["right"].to_list()
(2, ['applied', 'applied'])
>>> print(comparison.summary().splitlines()[1])  # doctest: +ELLIPSIS
The replays part at step 2 (loadedOntoTruck at 2026-03-02 09:00:00): not known yet on the left, ...
"""

from __future__ import annotations

import dataclasses
from typing import Any

import polars as pl

from concursus_lab.common.printed import Printed
from concursus_lab.common.text import clip, plural
from concursus_lab.common.time import when
from concursus_lab.exceptions import SchemaError
from concursus_lab.timetravel.changes import Change, changes
from concursus_lab.timetravel.trace.step import RAISED

_KEY = ("name", "event_timestamp", "processing_timestamp", "stream_id")
#: The statuses of a delivery the reducer saw: counted differently means one side only.
_COUNTED = ("applied", RAISED)


@dataclasses.dataclass(frozen=True, repr=False, eq=False)
class Comparison(Printed):
    """Two traces of one aggregate lined up; build it with ``Trace.compare``.

    Attributes
    ----------
    left, right
        The two traces.
    parted_at
        The first step number after which their states differ (None: they never do).
    differences
        The deliveries counted differently (applied on one side only): ``step``, ``name``,
        both times, ``stream_id``, and ``left`` and ``right`` (what became of it on each
        side).
    state_changes
        The fields in which the two final states differ (left is before, right after).
    """

    left: Any  # the two Traces (trace.py imports this module, not the other way round)
    right: Any
    parted_at: int | None
    differences: pl.DataFrame
    state_changes: tuple[Change, ...]

    def summary(self) -> str:
        """A few deterministic lines: the two cuts, where they part, and why."""
        a, b = self.left, self.right
        lines = [
            f"{a.aggregate_type} {a.aggregate_id!r}: left {_cut(a)}; right {_cut(b)}",
        ]
        if self.parted_at is None:
            lines.append("The replays never part: the state is the same after every step.")
        else:
            step = a.steps[self.parted_at - 1]
            other = b.steps[self.parted_at - 1]
            lines.append(
                f"The replays part at step {step.number} ({step.name} at "
                f"{when(step.event_timestamp)}): {_label(step.status)} on the left, "
                f"{_label(other.status)} on the right."
            )
        lines.append(
            f"{plural(self.differences.height, 'delivery', 'deliveries')} counted differently:"
        )
        for row in self.differences.iter_rows(named=True):
            lines.append(
                f"  step {row['step']:>3}  {row['name']:<18} {when(row['event_timestamp'])}, "
                f"known {when(row['processing_timestamp'])}: {_label(row['left'])} -> "
                f"{_label(row['right'])}"
            )
        if self.state_changes:
            lines.append(
                "Final states differ in "
                + ", ".join(
                    f"{c.field} ({clip(repr(c.before), 24)} -> {clip(repr(c.after), 24)})"
                    for c in self.state_changes
                )
            )
        else:
            lines.append(f"Final states agree: {a.state!r}")
        return "\n".join(lines)


def compare(left: Any, right: Any) -> Comparison:
    """Line up two traces of the same deliveries (see the module docstring)."""
    if not isinstance(right, type(left)):
        raise SchemaError(f"`other` must be a trace (cl.trace), got {type(right).__name__}.")
    if (left.aggregate_type, left.aggregate_id) != (right.aggregate_type, right.aggregate_id):
        raise SchemaError(
            f"traces of different aggregates cannot be lined up: {left.aggregate_id!r} and "
            f"{right.aggregate_id!r}; trace the same aggregate at two cuts."
        )
    if left.kept or right.kept:
        raise SchemaError(
            "compare whole traces, not ones filtered with .changed(); filter the comparison's "
            "differences instead."
        )
    n = min(len(left.steps), len(right.steps))
    pairs = list(zip(left.steps[:n], right.steps[:n], strict=True))
    for a, b in pairs:
        if tuple(getattr(a, k) for k in _KEY) != tuple(getattr(b, k) for k in _KEY):
            raise SchemaError(
                f"the traces hold different deliveries (step {a.number}: {a.name} and "
                f"{b.name}); trace one events frame at two cuts to compare them."
            )
    parted = next((a.number for a, b in pairs if changes(a.after, b.after)), None)
    rows = [
        {**{k: getattr(a, k) for k in _KEY}, "step": a.number, "left": a.status, "right": b.status}
        for a, b in pairs
        if (a.status in _COUNTED) != (b.status in _COUNTED)
    ]
    schema = {
        "step": pl.Int64,
        "name": pl.String,
        "event_timestamp": pl.Datetime("us", "UTC"),
        "processing_timestamp": pl.Datetime("us", "UTC"),
        "stream_id": pl.String,
        "left": pl.String,
        "right": pl.String,
    }
    differences = (
        pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)
    )
    differences = differences.select(list(schema))
    return Comparison(left, right, parted, differences, changes(left.state, right.state))


def _label(status: str) -> str:
    return status.replace("_", " ").replace("after at", "after `at`")


def _cut(t: Any) -> str:
    at = "any time" if t.at is None else when(t.at)
    known = "any time" if t.known_at is None else when(t.known_at)
    stop = f", stopped by {t.stopped}" if t.stopped else ""
    return f"at {at}, known at {known} ({len(t.steps)} steps{stop})"
