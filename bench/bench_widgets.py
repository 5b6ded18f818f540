"""The widgets' kernel side: summarising a big frame for the timeline, building its chart.

What the browser receives is bounded (a few thousand marks), so the kernel's summary is
the part that grows with the frame. Baseline: one polars group-by of events per aggregate,
the least any per-aggregate summary must do. The browser side (render time) is measured by
tests/browser (test-artifacts/timeline-million.txt).
"""

from __future__ import annotations

import polars as pl

import concursus_lab as cl
from bench._harness import measure, row
from concursus_lab.widgets._timeline import timeline_chart
from concursus_lab.widgets._timeline_data import Filters, summarise

MAX_SCALE = 1_000_000
EVENTS_PER_PARCEL = 3.25


def run(scale: int, quick: bool) -> list[dict]:
    parcels = max(1, int(scale / EVENTS_PER_PARCEL))
    repeat = 1 if quick else 3
    events = cl.sample.parcels(parcels, seed=1)
    n = events.height
    floor = measure(
        lambda: events.group_by("aggregate_type", "aggregate_id").agg(pl.len()), repeat=repeat
    )
    base = "polars group_by per aggregate"
    busiest = measure(lambda: summarise(events), repeat=repeat)
    rows = [
        row(
            "timeline summary: busiest 40 aggregates",
            n,
            busiest,
            base,
            floor,
            note=str(busiest.result),
        )
    ]
    one = events.with_columns(aggregate_id=pl.lit("one-aggregate"))
    binned = measure(lambda: summarise(one), repeat=repeat)
    rows.append(
        row(
            "timeline summary: one aggregate, binned",
            n,
            binned,
            base,
            floor,
            note=str(binned.result),
        )
    )
    filtered = measure(lambda: summarise(events, Filters(name="deliveryFailed")), repeat=repeat)
    rows.append(row("timeline summary: filtered by name", n, filtered, base, floor))
    spec = measure(lambda: timeline_chart(busiest.result).to_dict(), repeat=repeat)
    rows.append(
        row(
            "timeline chart spec (altair, validated)",
            n,
            spec,
            note=f"{busiest.result.n_marks:,} marks, whatever the frame size",
        )
    )
    return rows


if __name__ == "__main__":
    import sys

    for r in run(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000, quick=False):
        print(r)
