"""Projections: ``cl.project`` of a vectorised view and of a keyed fold, against the plain
Python a careful user writes for the same question, in the same run; and ``cl.chaos``.

Both baselines start from the same polars frame and must give the same answer:

* the vectorised view is deliveries per truck per day (attempts, delivered), each parcel's
  events attributed to the truck it was last loaded onto (``cl.threads``). The baseline
  takes the rows out of the frame, keeps the last processed delivery of each identity in a
  dict, groups the events by parcel, sorts each causally, ``json.loads`` the parameters,
  carries the truck forward and counts in a dict;
* the fold is each truck's load (``cl.fold(..., key="truckId")``) with the same reducer.
  The baseline is the same replay, building each event's instance from ``json.loads``,
  then grouping by truck, ordering each truck's events and folding them.

``python -m bench.bench_projections [events]`` prints the rows.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections import defaultdict
from functools import reduce

import polars as pl

import concursus_lab as cl
from bench._harness import measure, row
from concursus_lab.sample.parcels import Delivered, DeliveryFailed, LoadedOntoTruck, parcel_types

MAX_SCALE = 1_000_000  # the fold and its baseline hold every event as a Python object
EVENTS_PER_PARCEL = 3.25
#: chaos projects the history once per redelivery: not run above this.
MAX_CHAOS_SCALE = 100_000
_RANK = {1: 0, 0: 1, 2: 2}


@cl.projection(key=["truck", "day"])
def attempts_per_truck_day(events: pl.DataFrame) -> pl.DataFrame:
    """Delivery attempts and successes per truck per day (vectorised)."""
    trips = cl.threads(events, via="truckId").filter(
        pl.col("name").is_in(["delivered", "deliveryFailed"])
    )
    return trips.group_by(
        pl.col("thread").alias("truck"), pl.col("event_timestamp").dt.date().alias("day")
    ).agg(attempts=pl.len(), delivered=(pl.col("name") == "delivered").sum())


@dataclasses.dataclass(frozen=True)
class Load:
    on_board: int = 0
    delivered: int = 0
    failed: int = 0


def load(state: Load, event) -> Load:
    """A truck's load: parcels on board, delivered and failed."""
    match event:
        case LoadedOntoTruck():
            return Load(state.on_board + 1, state.delivered, state.failed)
        case Delivered():
            return Load(state.on_board - 1, state.delivered + 1, state.failed)
        case DeliveryFailed():
            return Load(state.on_board - 1, state.delivered, state.failed + 1)
    return state


def _histories(events: pl.DataFrame) -> dict:
    """Plain Python: last processed delivery per identity, grouped by parcel, causal order."""
    rows = events.select(
        "aggregate_type",
        "aggregate_id",
        "event_timestamp",
        "stream_id",
        "processing_timestamp",
        "name",
        "version",
        "parameters",
        "characteristics",
    ).rows()
    winners: dict = {}
    for r in rows:
        key = r[:4]
        seen = winners.get(key)
        if seen is None or r[4] >= seen[4]:
            winners[key] = r
    histories = defaultdict(list)
    for r in winners.values():
        histories[(r[0], r[1])].append(r)
    for history in histories.values():
        history.sort(key=lambda r: (_RANK[r[8]], r[2], r[3]))
    return histories


def naive_attempts(events: pl.DataFrame) -> dict:
    counts: dict = defaultdict(lambda: [0, 0])
    loads = json.loads
    for history in _histories(events).values():
        truck = None
        for r in history:
            named = loads(r[7]).get("truckId")
            if named is not None:
                truck = named
            if truck is not None and r[5] in ("delivered", "deliveryFailed"):
                counted = counts[(truck, r[2].date())]
                counted[0] += 1
                counted[1] += r[5] == "delivered"
    return {k: tuple(v) for k, v in counts.items()}


def naive_fold(events: pl.DataFrame) -> dict:
    declared = dict(parcel_types._by_key)
    loads = json.loads
    per_truck = defaultdict(list)
    for (_, aggregate_id), history in _histories(events).items():
        truck, latest = None, None
        for position, r in enumerate(history):
            event_type = declared.get((r[5], r[6]))
            if event_type is None:
                continue
            parameters = loads(r[7])
            truck = parameters.get("truckId", truck)
            latest = r[2] if latest is None else max(latest, r[2])
            if truck is None:
                continue
            event = event_type.cls(
                **parameters,
                aggregate_id=aggregate_id,
                event_timestamp=r[2],
                processing_timestamp=r[4],
                stream_id=r[3],
            )
            per_truck[truck].append(((latest, aggregate_id, position), event))
    states = {}
    for truck, keyed in per_truck.items():
        keyed.sort(key=lambda item: item[0])
        states[truck] = reduce(load, (event for _, event in keyed), Load())
    return states


def run(scale: int, quick: bool) -> list[dict]:
    parcels = max(1, int(scale / EVENTS_PER_PARCEL))
    events = cl.sample.parcels(parcels, seed=1)
    n = events.height
    repeat = 1 if quick or n > 500_000 else 3
    rows = []

    ours = measure(lambda: cl.project(events, attempts_per_truck_day), repeat=repeat)
    naive = measure(lambda: naive_attempts(events), repeat=repeat)
    got = {
        (t, d): (a, s)
        for t, d, a, s in ours.result.select("truck", "day", "attempts", "delivered").rows()
    }
    if got != naive.result:
        raise AssertionError("the vectorised projection and the plain Python one disagree")
    rows.append(
        row(
            "project: vectorised view (attempts per truck per day)",
            n,
            ours,
            "plain Python: dict dedupe, causal sort, json.loads, dict counts",
            naive,
            note=f"{ours.result.height:,} rows",
        )
    )

    fold = cl.fold(load, types=parcel_types, key="truckId", initial=Load())
    ours = measure(lambda: cl.project(events, fold), repeat=repeat)
    naive = measure(lambda: naive_fold(events), repeat=repeat)
    got = {
        r["truckId"]: Load(r["on_board"], r["delivered"], r["failed"])
        for r in ours.result.iter_rows(named=True)
    }
    if got != naive.result:
        raise AssertionError("the fold and the plain Python fold disagree")
    rows.append(
        row(
            "project: fold keyed by truckId (truck load)",
            n,
            ours,
            "plain Python: dedupe, causal sort, json.loads -> instances, fold",
            naive,
            note=f"{ours.result.height:,} trucks",
        )
    )

    if n <= MAX_CHAOS_SCALE * 1.1:
        stable = measure(
            lambda: cl.chaos(events, attempts_per_truck_day, runs=20, seed=1), repeat=1
        )
        assert stable.result.stable
        rows.append(row("chaos: 20 redeliveries of a sound view", n, stable))

        @cl.projection(duplicates="keep", key=["truck", "day"])
        def counts_repeats(frame: pl.DataFrame) -> pl.DataFrame:
            return attempts_per_truck_day.function(frame)

        found = measure(lambda: cl.chaos(events, counts_repeats, runs=20, seed=1), repeat=1)
        assert not found.result.stable
        rows.append(
            row(
                "chaos: catch and shrink a repeat bug",
                n,
                found,
                note=f"shrunk to {found.result.counterexample.height} event(s) in "
                f"{found.result.tests} tests",
            )
        )
        bisected = measure(
            lambda: cl.bisect(events, counts_repeats, attempts_per_truck_day), repeat=1
        )
        rows.append(
            row(
                "bisect (exact)",
                n,
                bisected,
                note=f"{bisected.result.evaluations:,} prefixes projected",
            )
        )
    return rows


if __name__ == "__main__":
    for r in run(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000, quick=False):
        print(r)
