"""Testing upcasters against a stored history: what each one did, and what still fails.

:func:`check_upcasters` runs the declared chain of each ``EventTypes`` over every stored row
of its aggregate type (every delivery: a duplicate written in an old version must upcast
too), through the same code every replay uses (``events/upcast.py``), then decodes the
result. It reports, per upcaster, how many events it was given and made (per target, for a
split), a few before/after examples, how many of the events it started decoded afterwards,
and each event that did not: an upcaster that raises, or parameters the declared type
refuses after the chain. ``assert_ok()`` turns a problem into an ``AssertionError`` for a
test suite; printed, a short deterministic summary for notebook CI.

>>> import concursus_lab as cl
>>> from concursus_lab import testing
>>> report = testing.check_upcasters(cl.sample.parcels(5, seed=1), cl.sample.parcel_types)
>>> report.ok, report.steps.height
(True, 0)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import polars as pl

from concursus_lab.common.printed import Printed
from concursus_lab.common.text import clip
from concursus_lab.events.types import EventTypes
from concursus_lab.events.upcast import Watch, upcast
from concursus_lab.events.upcasters import STORED, STORED_DTYPE, show
from concursus_lab.exceptions import SchemaError, UpcastError
from concursus_lab.frame.schema import validate

_ROW = "__stored_row"  # which stored row a failing part came from
#: How long an example's parameters may be in the summary.
_WIDTH = 70

_STEPS = {
    "aggregate_type": pl.String,
    "upcaster": pl.String,
    "name": pl.String,
    "version": pl.String,
    "starts": pl.Int64,
    "events_in": pl.Int64,
    "events_out": pl.Int64,
    "made": pl.String,
    "decoded_after": pl.Int64,
    "failed_after": pl.Int64,
}
_EXAMPLES = {
    "aggregate_type": pl.String,
    "upcaster": pl.String,
    "before": pl.String,
    "after": pl.List(pl.String),
}


@dataclasses.dataclass(frozen=True, repr=False, eq=False)
class UpcasterReport(Printed):
    """What :func:`check_upcasters` found.

    ``steps``: a row per declared upcaster (``aggregate_type``, ``upcaster``, the source
    ``name`` and ``version``, ``starts``: the stored events whose chain starts at it,
    ``events_in``: the events it was given, from earlier steps too, ``events_out``, ``made``
    per target, ``decoded_after`` and ``failed_after``: of the ``starts``, how many decode
    after the chain and how many do not). ``examples``: the first
    events each upcaster was given (``before``) and what it made (``after``, one per
    target). ``failures``: the rows that do not decode after upcasting, with ``reason`` and
    ``stored`` (the row as stored). ``errors``: an upcaster that raised, per aggregate type.
    """

    steps: pl.DataFrame
    examples: pl.DataFrame
    failures: pl.DataFrame
    errors: tuple[UpcastError, ...]
    events: int

    @property
    def ok(self) -> bool:
        """Whether every upcast event decodes and no upcaster raised."""
        return not self.errors and self.failures.height == 0

    def assert_ok(self) -> None:
        """Raise ``AssertionError`` with the summary if an upcaster raised or an upcast event
        does not decode."""
        if not self.ok:
            raise AssertionError(self.summary())

    def summary(self) -> str:
        """The upcasters with their counts and first example, then the problems."""
        lines = [
            f"Upcasters over {self.events:,} stored events: {self.steps.height:,} upcasters, "
            f"{self.steps['starts'].sum():,} events upcast, {self.failures.height:,} fail to "
            f"decode after, {len(self.errors):,} raised"
        ]
        for row in self.steps.iter_rows(named=True):
            lines.append(
                f"  {row['aggregate_type']} {row['upcaster']}: {row['starts']:,} stored, "
                f"{row['events_in']:,} in, "
                f"{row['made'] or 'nothing'}; {_fared(row)}"
            )
            first = self.examples.filter(
                aggregate_type=row["aggregate_type"], upcaster=row["upcaster"]
            ).head(1)
            for before, after in first.select("before", "after").iter_rows():
                made = " + ".join(clip(str(a), _WIDTH) for a in after)
                lines.append(f"      e.g. {clip(str(before), _WIDTH)} -> {made}")
        lines += [f"! raised: {error}" for error in self.errors]
        for reason, count in (
            self.failures.group_by("reason")
            .len()
            .sort("len", "reason", descending=[True, False])
            .iter_rows()
        ):
            lines.append(f"! {count:,} x {reason}")
        return "\n".join(lines)


def _fared(row: dict[str, Any]) -> str:
    if row["decoded_after"] is None:
        return "not decoded (an upcaster raised)"
    return f"decoded after {row['decoded_after']:,}, failed {row['failed_after']:,}"


def check_upcasters(
    events: pl.DataFrame, types: EventTypes | Sequence[EventTypes], *, examples: int = 3
) -> UpcasterReport:
    """Run each types object's upcasters over the stored ``events`` and report what each
    did and what does not decode after them (see the module's docstring).

    Parameters
    ----------
    events
        A canonical event frame: the stored history, older versions and all.
    types
        One ``EventTypes`` or several (one per aggregate type).
    examples
        How many before/after examples to keep per upcaster.
    """
    frame = validate(events, check_parameters=False)
    many = [types] if isinstance(types, EventTypes) else list(types)
    if not many or not all(isinstance(t, EventTypes) for t in many):
        raise SchemaError(f"`types` must be an EventTypes or a list of them, got {types!r}.")
    steps, shown, failures, errors = [], [], [], []
    for one in many:
        mine = frame.filter(pl.col("aggregate_type") == one.aggregate_type).with_row_index(_ROW)
        watch = Watch(examples)
        try:
            done = upcast(one, mine, watch=watch).frame
        except UpcastError as error:
            errors.append(error)
            done = None
        failed = _failures(one, done)
        failures.append(failed)
        steps.append(_steps(one, watch, mine, failed if done is not None else None))
        shown.append(_examples(one, watch))
    return UpcasterReport(
        pl.concat(steps, how="vertical"),
        pl.concat(shown, how="vertical"),
        pl.concat(failures, how="vertical").drop(_ROW),
        tuple(errors),
        frame.height,
    )


def _failures(types: EventTypes, done: pl.DataFrame | None) -> pl.DataFrame:
    """The upcast rows that do not decode, with their reason."""
    if done is None or STORED not in done.columns:
        return _no_failures()
    undecodable = types.decode(done).undecodable
    failed = undecodable.filter(pl.col(STORED).is_not_null())
    return failed.select(
        _ROW,
        "aggregate_type",
        "aggregate_id",
        "event_timestamp",
        "name",
        "version",
        "parameters",
        STORED,
        "reason",
    )


def _no_failures() -> pl.DataFrame:
    time = pl.Datetime("us", "UTC")
    return pl.DataFrame(
        schema={_ROW: pl.UInt32, "aggregate_type": pl.String, "aggregate_id": pl.String,
                "event_timestamp": time, "name": pl.String, "version": pl.String,
                "parameters": pl.String, STORED: STORED_DTYPE, "reason": pl.String}
    )  # fmt: skip


def _steps(types: EventTypes, watch: Watch, mine: pl.DataFrame, failed: pl.DataFrame | None):
    """A row per declared upcaster: what it was given and made, and how the stored events
    its chain starts fared (null when an upcaster raised: nothing was decoded)."""
    starts = mine.group_by("name", "version").len()
    started = {(n, v): c for n, v, c in starts.iter_rows()}
    failing: dict[tuple[str, str], int] = {}
    if failed is not None:  # a split event counts once, however many of its parts fail
        events = failed.unique(_ROW).select(pl.col(STORED).struct.field("name", "version"))
        failing = {(n, v): c for n, v, c in events.group_by("name", "version").len().iter_rows()}
    rows: list[dict[str, Any]] = []
    for step in types.upcasters:
        seen = watch.steps.get(step.source, {"in": 0, "out": [0] * len(step.targets)})
        made = ", ".join(
            f"{count:,} {show(target)}"
            for target, count in zip(step.targets, seen["out"], strict=True)
        )
        bad = failing.get(step.source, 0)
        rows.append(
            {
                "aggregate_type": types.aggregate_type,
                "upcaster": step.label,
                "name": step.source[0],
                "version": step.source[1],
                "starts": started.get(step.source, 0),
                "events_in": seen["in"],
                "events_out": sum(seen["out"]),
                "made": made if seen["in"] else "",
                "decoded_after": None if failed is None else started.get(step.source, 0) - bad,
                "failed_after": None if failed is None else bad,
            }
        )
    return pl.DataFrame(rows, schema=_STEPS)


def _examples(types: EventTypes, watch: Watch) -> pl.DataFrame:
    rows = [
        {
            "aggregate_type": types.aggregate_type,
            "upcaster": step.label,
            "before": before,
            "after": list(after),
        }
        for step in types.upcasters
        for before, after in watch.steps.get(step.source, {}).get("examples", [])
    ]
    return pl.DataFrame(rows, schema=_EXAMPLES)
