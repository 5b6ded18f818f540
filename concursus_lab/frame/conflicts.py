"""Conflicting deliveries: repeats of one identity that do not say the same thing.

Deliveries that share an identity (``identity.py``) are one event delivered more than
once, and only one of them counts (``duplicates=``). When they differ in ``name``,
``version`` or ``parameters`` (:data:`PAYLOAD`), they are *conflicting*: the ones that
lost were most likely other events that the identity could not tell apart (``created``
and ``paid`` of one order in the same minute), or a restatement. They are never merged
without a word:

* **counted**: :attr:`Conflicts.deliveries` are the deliveries that lost to a winner that
  differs from them (``counts["conflicting"]`` of ``state_at``), :attr:`Conflicts.identities`
  the identities with such deliveries (what ``describe`` shows);
* **warned**: one :class:`~concursus_lab.exceptions.ConflictingDeliveries` per call
  (:func:`report`), showing up to three of them and saying what to do.

Which delivery wins is unchanged. With ``duplicates="keep"`` nothing is merged, so nothing
conflicts. :func:`find` works on runs of one identity in delivery order, as every place
that resolves duplicates has them; :func:`one_warning` makes a call that resolves
duplicates several times (a trace, restatements) warn once.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import sys
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from concursus_lab.common.text import clip, plural
from concursus_lab.exceptions import ConflictingDeliveries

#: What an event says: deliveries of one identity that differ in these conflict.
PAYLOAD: tuple[str, ...] = ("name", "version", "parameters")

#: How many conflicting identities a warning shows.
SHOWN = 3

_ADVICE = (
    "If these are different events, name a sequence or an event id in the mapping: "
    "cl.Mapping(sequence=..., event_id=...); if they are one event restated, this is the "
    'version that counts (duplicates="last" or "first" chooses).'
)
_ADVICE_NAMED = (
    "The data names these identities (a sequence or an event id), so each is one event "
    "delivered with different contents: the version that counts is chosen by "
    'duplicates="last" or "first". If they are different events, the system that wrote them '
    "gave two events one identity."
)

#: Identity columns by which the data itself names its events.
NAMING = ("sequence", "event_id")


@dataclasses.dataclass(frozen=True)
class Conflicts:
    """What :func:`find` found: counts, and a few examples to show (plain strings, so that
    they travel as JSON, from a Spark worker say)."""

    deliveries: int = 0
    identities: int = 0
    examples: tuple[dict[str, str], ...] = ()
    #: Whether the identities are named by the data (a sequence or an event id), not made
    #: up from the event's time and contents: the advice differs.
    named: bool = False

    def __bool__(self) -> bool:
        return self.deliveries > 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form (:meth:`from_dict` reads it back)."""
        return dataclasses.asdict(self) | {"examples": list(self.examples)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Conflicts:
        return cls(
            data["deliveries"],
            data["identities"],
            tuple(data["examples"]),
            bool(data.get("named", False)),
        )

    @classmethod
    def total(cls, parts: Sequence[Conflicts]) -> Conflicts:
        """The conflicts of disjoint parts (whole aggregates each) added up."""
        examples = sorted((e for p in parts for e in p.examples), key=_example_key)
        return cls(
            sum(p.deliveries for p in parts),
            sum(p.identities for p in parts),
            tuple(examples[:SHOWN]),
            any(p.named for p in parts),
        )

    def message(self) -> str:
        """The warning's text: how many, up to three shown, and what to do."""
        lines = [
            f"{plural(self.identities, 'identity', 'identities')} "
            f"{'has' if self.identities == 1 else 'have'} conflicting deliveries (the same "
            f"identity, a different name, version or parameters); only one delivery of each "
            f"counts, so {plural(self.deliveries, 'delivery', 'deliveries')} "
            f"{'was' if self.deliveries == 1 else 'were'} left out:"
        ]
        for e in self.examples:
            lines.append(
                f"  {e['aggregate_type']} {e['aggregate_id']!r}, {e['identity']}: "
                f"{e['won']} won ({e['why']}) over {e['lost']}"
            )
        if self.identities > len(self.examples):
            lines.append(f"  ... and {self.identities - len(self.examples):,} more")
        lines.append(_ADVICE_NAMED if self.named else _ADVICE)
        return "\n".join(lines)


def find(
    frame: pl.DataFrame,
    rows: np.ndarray,
    run_start: np.ndarray,
    counted: np.ndarray,
    identity: Sequence[str],
    duplicates: str,
) -> tuple[np.ndarray, Conflicts]:
    """The conflicting deliveries among runs of one identity each.

    ``rows`` are row positions in ``frame`` of deliveries grouped in runs of one identity,
    each run in delivery order; ``run_start`` marks each run's first, ``counted`` the
    deliveries that count (one per run, or all with ``"keep"``). Returns a mask over
    ``rows`` of the deliveries that lost to a winner differing from them, and the counts.
    """
    lost = ~counted
    if not lost.any():
        return np.zeros(len(rows), dtype=bool), Conflicts()
    run = np.cumsum(run_start) - 1
    winner = np.flatnonzero(counted)[run]  # position (in rows) of each run's winner
    losers = np.flatnonzero(lost)
    payload = frame.select(PAYLOAD)
    mine = payload[rows[losers]]
    theirs = payload[rows[winner[losers]]]
    differs = np.zeros(len(losers), dtype=bool)
    for column in PAYLOAD:
        differs |= mine[column].ne_missing(theirs[column]).to_numpy()
    mask = np.zeros(len(rows), dtype=bool)
    mask[losers[differs]] = True
    if not differs.any():
        return mask, Conflicts()
    conflicting = losers[differs]
    runs, first = np.unique(run[conflicting], return_index=True)
    examples = _examples(frame, rows, conflicting[first], winner, identity, duplicates)
    named = any(column in identity for column in NAMING)
    return mask, Conflicts(len(conflicting), len(runs), examples, named)


def _examples(frame, rows, losers, winner, identity, duplicates) -> tuple[dict[str, str], ...]:
    """Up to :data:`SHOWN` identities' first conflicting loser and its winner, as text, in
    the order of the identities (so the same ones are shown whatever the row order)."""
    keys = frame.select(identity)[rows[losers]].with_row_index("__i")
    chosen = keys.sort(list(identity), nulls_last=True).head(SHOWN)["__i"].to_numpy()
    out = []
    for i in chosen:
        lost, won = int(rows[losers[i]]), int(rows[winner[losers[i]]])
        key = frame.row(lost, named=True)
        out.append(
            {
                "aggregate_type": key["aggregate_type"],
                "aggregate_id": key["aggregate_id"],
                "identity": describe_identity(key, identity),
                "won": _version(frame.row(won, named=True)),
                "lost": _version(key),
                "why": "processed first" if duplicates == "first" else "processed last",
            }
        )
    return tuple(sorted(out, key=_example_key))


def describe_identity(row: dict[str, Any], identity: Sequence[str]) -> str:
    """The identity's own columns (after aggregate type and id) as text, e.g.
    ``event_timestamp 2026-03-02 09:05:00, stream_id ''`` or ``sequence 3``."""
    from concursus_lab.common.time import when

    parts = []
    for column in identity[2:]:
        value = row[column]
        shown = when(value) if column == "event_timestamp" else repr(value)
        parts.append(f"{column} {shown}")
    return ", ".join(parts)


def _version(row: dict[str, Any]) -> str:
    """A delivery's name, version (when not "0") and parameters, clipped."""
    version = "" if row["version"] == "0" else f" v{row['version']}"
    return f"{row['name']}{version} {clip(str(row['parameters']), 60)}"


def _example_key(example: dict[str, str]) -> tuple[str, ...]:
    return (example["aggregate_type"], example["aggregate_id"], example["identity"])


# ------------------------------------------------------------------------------ warning

_COLLECTOR: contextvars.ContextVar[list[Conflicts] | None] = contextvars.ContextVar(
    "concursus_lab_conflicts", default=None
)
_PACKAGE = str(Path(__file__).parents[1])  # as code objects name their files
_SKIPPED = (_PACKAGE, contextlib.__file__)


def report(conflicts: Conflicts) -> None:
    """Warn of ``conflicts`` (nothing when there are none), once per call: inside
    :func:`one_warning` the warning waits until the outermost call ends."""
    if not conflicts:
        return
    pending = _COLLECTOR.get()
    if pending is not None:
        pending.append(conflicts)
        return
    warnings.warn(conflicts.message(), ConflictingDeliveries, stacklevel=user_level())


@contextlib.contextmanager
def one_warning(*, disjoint: bool = False) -> Iterator[None]:
    """Within this block, conflicts :func:`report`-ed make one warning at its end: the
    largest of them (several replays of the same deliveries, say), or with ``disjoint``
    their total (the buckets of a store, each its own aggregates)."""
    if _COLLECTOR.get() is not None:  # an outer block warns
        yield
        return
    with gathered() as pending:
        yield
    if pending:
        warnings.warn(
            (Conflicts.total(pending) if disjoint else largest(pending)).message(),
            ConflictingDeliveries,
            stacklevel=user_level(),
        )


@contextlib.contextmanager
def gathered() -> Iterator[list[Conflicts]]:
    """The conflicts :func:`report`-ed within this block, kept instead of warned about (a
    Spark worker sends them to the driver, which warns)."""
    pending: list[Conflicts] = []
    token = _COLLECTOR.set(pending)
    try:
        yield pending
    finally:
        _COLLECTOR.reset(token)


def largest(found: Sequence[Conflicts]) -> Conflicts:
    """The largest of conflicts found by several looks at the same deliveries."""
    return max(found, key=lambda c: (c.identities, c.deliveries), default=Conflicts())


def user_level() -> int:
    """The ``stacklevel`` that points at the first caller outside this package (and the
    ``with`` machinery)."""
    frame = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_code.co_filename.startswith(_SKIPPED):
        frame = frame.f_back
        level += 1
    return level
