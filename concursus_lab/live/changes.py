"""What a batch changed: per aggregate, the state before and after and why.

A live fold yields these the way a subscription to a view does (Materialize's
``SUBSCRIBE``, RisingWave's subscription cursors), with the second time axis kept: a
delivery that lands after everything its aggregate had *moved the present*; one that lands
before some of it (a late event, or a repeat of an identity already folded) *restated the
past*, and the states at the times between changed too, though the latest may not have.
"""

from __future__ import annotations

import dataclasses
import html
from itertools import repeat
from operator import is_, ne
from typing import Any

import numpy as np
import polars as pl

from concursus_lab.common.gc_pause import paused_gc
from concursus_lab.live.track import Keyframe

#: Why an aggregate's row is in :attr:`Changes.frame`.
KINDS = ("new", "present", "past")


@dataclasses.dataclass(frozen=True, repr=False)
class Changes:
    """The aggregates one batch changed.

    Attributes
    ----------
    frame
        One row per aggregate whose state changed, or whose past was restated: its
        ``aggregate_id``; ``change`` (``"new"``: its first state; ``"present"``: later
        events folded on; ``"past"``: a delivery landed before events already folded,
        a late one); ``state_changed`` (False for a past restated that left today's state
        as it was); ``deliveries`` (its deliveries in this batch); ``events_applied`` now;
        and the delivery that caused it, the one that landed first in its causal order:
        ``name``, ``event_timestamp``, ``processing_timestamp``.
    before, after
        ``aggregate_id -> state`` before and after the batch, for the aggregates of
        ``frame`` (None: no state).
    batch
        The batch's number in its live fold (1 the first).
    read
        Deliveries of the aggregate type in the batch.
    """

    frame: pl.DataFrame
    before: dict[str, Any]
    after: dict[str, Any]
    batch: int
    read: int

    @property
    def restated(self) -> pl.DataFrame:
        """The rows of aggregates whose past a late delivery changed."""
        return self.frame.filter(pl.col("change") == "past")

    def summary(self) -> str:
        """One deterministic line: the batch, what it read and what it changed."""
        kinds = dict(self.frame.group_by("change").len().rows())
        parts = ", ".join(f"{kinds.get(k, 0):,} {k}" for k in KINDS)
        return (
            f"batch {self.batch}: {self.read:,} deliveries, {self.frame.height:,} "
            f"aggregates changed ({parts})"
        )

    def __len__(self) -> int:
        return self.frame.height

    def __repr__(self) -> str:
        return f"{self.summary()}\n{self.frame!r}"

    def _repr_html_(self) -> str:
        try:
            return f"<p>{html.escape(self.summary())}</p>{self.frame._repr_html_()}"
        except Exception as exc:
            return f"<pre>{html.escape(repr(exc))}</pre>"


_TIME = pl.Datetime("us", "UTC")
SCHEMA = {
    "aggregate_id": pl.String,
    "change": pl.String,
    "state_changed": pl.Boolean,
    "deliveries": pl.Int64,
    "events_applied": pl.Int64,
    "name": pl.String,
    "event_timestamp": _TIME,
    "processing_timestamp": _TIME,
}


def changes_of(
    batch: int,
    ids: list[str],
    before: list[Keyframe | None],
    after: list[Keyframe],
    landing: list[int],
    deliveries: list[int],
    causes: pl.DataFrame,
    read: int,
) -> Changes:
    """The :class:`Changes` of a batch from what it re-folded (per aggregate: heads before
    and after, where its new deliveries landed, how many, the row of the first)."""
    n = len(ids)
    with paused_gc():
        was_states = [None if k is None else k.state for k in before]
        now_states = [k.state for k in after]
        changed = np.fromiter(map(ne, was_states, now_states), dtype=bool, count=n)
        old_pos = np.fromiter((-1 if k is None else k.pos for k in before), np.int64, count=n)
        applied = np.fromiter((k.applied for k in after), dtype=np.int64, count=n)
        fresh = np.fromiter(map(is_, was_states, repeat(None)), dtype=bool, count=n)
    past = (old_pos >= 0) & (np.asarray(landing, dtype=np.int64) < old_pos)
    picked = np.flatnonzero(changed | past)
    kind = np.where(past, "past", np.where(fresh, "new", "present"))[picked]
    chosen = [ids[k] for k in picked.tolist()]
    frame = pl.DataFrame(
        {
            "aggregate_id": pl.Series(chosen, dtype=pl.String),
            "change": pl.Series(kind.tolist(), dtype=pl.String),
            "state_changed": changed[picked],
            "deliveries": np.asarray(deliveries, dtype=np.int64)[picked],
            "events_applied": applied[picked],
        }
    )
    cause = causes.select("name", "event_timestamp", "processing_timestamp")[picked]
    frame = pl.concat([frame, cause], how="horizontal").sort("aggregate_id")
    was = {ids[k]: was_states[k] for k in picked.tolist()}
    now = {ids[k]: now_states[k] for k in picked.tolist()}
    return Changes(frame.cast(SCHEMA), was, now, batch, read)  # type: ignore[arg-type]
