"""Tracing: ``cl.trace`` of one long-lived aggregate against ``cl.state_of`` of the same one.

The aggregate is the sample's parcel events relabelled as one parcel (10,000 events, a
few hundred of them repeated deliveries), beside as many events of other parcels. The
baseline is ``cl.state_of`` asked the same question: the same replay plan and fold, without
keeping a step per delivery. Issue 17's goal: a 10,000-event aggregate traces in under a
second. Both are checked to end in the same state.

``python -m bench.bench_trace [events]`` prints the rows.
"""

from __future__ import annotations

import sys

import polars as pl

import concursus_lab as cl
from bench._harness import measure, row
from concursus_lab.sample.parcels import parcel_state, parcel_types

#: The issue's question is about one aggregate of 10,000 events: not run above that.
MAX_SCALE = 10_000
#: Quick mode (a smoke test) traces a small aggregate.
QUICK_EVENTS = 1_000
AT, KNOWN_AT = "2026-03-10", "2026-03-10 06:00"
BIG = "parcel-big"


def one_aggregate(events: int) -> pl.DataFrame:
    """``events`` events of one parcel, then as many of other parcels."""
    sample = cl.sample.parcels(max(1, int(events * 2 / 3.25)) + 1, seed=1)
    big = sample.head(events).with_columns(aggregate_id=pl.lit(BIG))
    return pl.concat([big, sample.slice(events, events)])


def run(scale: int, quick: bool) -> list[dict]:
    size = QUICK_EVENTS if quick else min(scale, MAX_SCALE)
    events = one_aggregate(size)
    repeat = 1 if quick else 3
    rows = []
    for label, bounds in (("", {}), (", at + known_at", {"at": AT, "known_at": KNOWN_AT})):
        ask = {"types": parcel_types, "aggregate_id": BIG, **bounds}
        ours = measure(lambda a=ask: cl.trace(events, parcel_state, **a), repeat=repeat)
        base = measure(lambda a=ask: cl.state_of(events, parcel_state, **a), repeat=repeat)
        if ours.result.state != base.result:
            raise AssertionError(f"trace and state_of disagree{label}")
        rows.append(
            row(
                f"trace one aggregate{label}",
                size,
                ours,
                "state_of of the same aggregate",
                base,
                goal="< 1 s" if not bounds else "",
                note=f"{len(ours.result):,} steps, {events.height:,} events in the frame",
            )
        )
    whole = ours.result if not bounds else cl.trace(events, parcel_state, **ask)
    changed = measure(lambda: whole.changed("status"), repeat=repeat)
    rows.append(
        row(
            "trace .changed('status')",
            size,
            changed,
            note=f"{len(changed.result):,} of {len(whole):,} steps changed the status",
        )
    )
    return rows


if __name__ == "__main__":
    for r in run(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000, quick=False):
        print(r)
