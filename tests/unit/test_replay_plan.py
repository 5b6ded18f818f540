"""The one replay plan: every delivery's fate, given once, is what every rendering shows."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import concursus_lab as cl
from concursus_lab.common.time import optional_utc
from concursus_lab.sample import parcel_types
from concursus_lab.timetravel.replay import OUTCOMES, prepare

AT, KNOWN_AT = "2026-03-10", "2026-03-10 06:00"


@pytest.mark.parametrize("duplicates", ["last", "first", "keep"])
@pytest.mark.parametrize("bounds", [(None, None), (AT, KNOWN_AT)])
def test_the_fates_are_the_counts(duplicates, bounds):
    events = cl.sample.parcels(400, seed=3)
    at, known_at = optional_utc(bounds[0], "at"), optional_utc(bounds[1], "known_at")
    plan = prepare(events, parcel_types, at, known_at, duplicates, strict=False, shown=True)
    assert plan.counts["duplicate"] or duplicates == "keep"
    assert plan.counts["after_at"] or at is None
    fates = np.bincount(plan.fate, minlength=len(OUTCOMES))
    if plan.left_out is not None:
        fates += np.bincount(plan.left_out[plan.left_out >= 0], minlength=len(OUTCOMES))
    assert dict(zip(OUTCOMES, fates.tolist(), strict=True)) == {
        name: plan.counts[name] for name in OUTCOMES
    }
    # the applied rows, in the plan's order, are the events its fold builds
    assert (plan.fate[plan.rows] == OUTCOMES.index("applied")).all()
    assert [e.event_timestamp for e in plan.events()] == list(
        plan.frame["event_timestamp"].gather(pl.Series(plan.rows))
    )


def test_history_of_every_aggregate_adds_up_to_the_plans_counts():
    events = cl.sample.parcels(60, seed=8)
    counts = cl.state_at(events, lambda s, e: e, types=parcel_types, at=AT, known_at=KNOWN_AT)
    counts = counts.counts
    statuses: dict[str, int] = {}
    for aggregate_id in events["aggregate_id"].unique().to_list():
        shown = cl.history(events, aggregate_id, types=parcel_types, at=AT, known_at=KNOWN_AT)
        for status, n in shown.group_by("status").len().rows():
            statuses[status] = statuses.get(status, 0) + n
    assert statuses == {name: counts[name] for name in OUTCOMES if counts[name]}
