"""Time travel: ``state_at`` against the replay a careful user writes in plain Python, and the
vectorised ``latest`` against ``state_at`` asked the same question.

The baseline (:func:`naive_state_at`) is what Concursus and most event-sourcing libraries do,
minus the database: take the rows out of the frame, keep the last processed delivery of each
identity in a dict, group the events by aggregate, sort each history causally, ``json.loads``
the parameters into the same event classes, and fold with the same reducer. Both sides start
from the same polars frame and are checked to give the same states.

``python -m bench.bench_timetravel [events]`` prints the rows.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict

import polars as pl

import concursus_lab as cl
from bench._harness import measure, row
from concursus_lab.common.time import to_utc
from concursus_lab.sample.parcels import (
    Delivered,
    DeliveryFailed,
    LoadedOntoTruck,
    ReceivedAtDepot,
    parcel_state,
    parcel_types,
)

MAX_SCALE = 10_000_000
EVENTS_PER_PARCEL = 3.25
#: state_at and its baseline hold every event as a Python object: not run above this.
MAX_FOLD_SCALE = 1_000_000
AT, KNOWN_AT = "2026-03-10", "2026-03-10 06:00"
_RANK = {"initial": 0, "event": 1, "terminal": 2}


def simple(state, event):
    """A simple reducer: where the parcel is, as a (status, place) tuple."""
    match event:
        case ReceivedAtDepot(depotId=depot):
            return ("at depot", depot)
        case LoadedOntoTruck(truckId=truck):
            return ("on truck", truck)
        case DeliveryFailed():
            return ("failed", state[1] if state else None)
        case Delivered(destinationId=destination):
            return ("delivered", destination)
    return state


def last_values(state, event):
    """The question ``latest`` answers, as a fold: last event, last depot, truck, destination."""
    _, depot, truck, destination = state or (None, None, None, None)
    match event:
        case ReceivedAtDepot(depotId=depot):
            pass
        case LoadedOntoTruck(truckId=truck):
            pass
        case Delivered(destinationId=destination):
            pass
    return (type(event).__name__, depot, truck, destination)


def naive_state_at(
    events: pl.DataFrame, reducer, types: cl.EventTypes, at=None, known_at=None
) -> dict:
    """The careful plain-Python replay (see the module docstring); returns id -> state."""
    at = None if at is None else to_utc(at, "at")
    known_at = None if known_at is None else to_utc(known_at, "known_at")
    declared = {key: t for key, t in types._by_key.items()}
    creation = types.declares_initial
    rows = (
        events.filter(pl.col("aggregate_type") == types.aggregate_type)
        .select(
            "aggregate_id",
            "event_timestamp",
            "stream_id",
            "processing_timestamp",
            "name",
            "version",
            "parameters",
        )
        .rows()
    )
    deliveries: dict = {}
    for r in rows:  # the last processed delivery of each identity, as Cassandra keeps it
        if (known_at is not None and r[3] > known_at) or (at is not None and r[1] >= at):
            continue
        key = (r[0], r[1], r[2])
        seen = deliveries.get(key)
        if seen is None or r[3] >= seen[3]:
            deliveries[key] = r
    histories = defaultdict(list)
    for r in deliveries.values():
        histories[r[0]].append(r)
    loads = json.loads
    states = {}
    for aggregate_id, history in histories.items():
        decoded = []
        for aggregate, when, stream, processed, name, version, parameters in history:
            event_type = declared.get((name, version))
            if event_type is None:
                continue
            event = event_type.cls(
                **loads(parameters),
                aggregate_id=aggregate,
                event_timestamp=when,
                processing_timestamp=processed,
                stream_id=stream,
            )
            decoded.append(((_RANK[event_type.kind], when, stream), event_type.kind, event))
        decoded.sort(key=lambda item: item[0])
        state = None
        for _, kind, event in decoded:
            if creation and (state is None) != (kind == "initial"):
                continue
            state = reducer(state, event)
        if state is not None:
            states[aggregate_id] = state
    return states


def run(scale: int, quick: bool) -> list[dict]:
    parcels = max(1, int(scale / EVENTS_PER_PARCEL))
    events = cl.sample.parcels(parcels, seed=1)
    n = events.height
    repeat = 1 if quick or n > 2_000_000 else 3
    slow_repeat = 1 if quick or n > 500_000 else 3
    rows = []
    if n <= MAX_FOLD_SCALE * 1.1:
        cases = [
            ("state_at (simple reducer)", simple, {}, {}),
            ("state_at (simple reducer, workers=2)", simple, {}, {"workers": 2}),
            (
                "state_at (simple reducer, at + known_at)",
                simple,
                {"at": AT, "known_at": KNOWN_AT},
                {},
            ),
            ("state_at (dataclass states: parcel_state)", parcel_state, {}, {}),
        ]
        for label, reducer, bounds, options in cases:
            ours = measure(
                lambda r=reducer, b=bounds, o=options: cl.state_at(
                    events, r, types=parcel_types, **b, **o
                ),
                repeat=repeat,
            )
            naive = measure(
                lambda r=reducer, b=bounds: naive_state_at(events, r, parcel_types, **b),
                repeat=slow_repeat,
            )
            if ours.result.states != naive.result:
                raise AssertionError(f"state_at and the naive replay disagree ({label})")
            if label == cases[0][0]:
                naive_simple = naive
            workers = options.get("workers", 1)
            rows.append(
                row(
                    label,
                    n,
                    ours,
                    "naive per-aggregate Python replay",
                    naive,
                    goal=">= 3x" if label == cases[0][0] else "",
                    note=f"{len(naive.result):,} states; workers={workers}",
                )
            )
        with_dict = measure(  # .states is built on first use: what asking for it costs
            lambda: _with_states(cl.state_at(events, simple, types=parcel_types)),
            repeat=repeat,
        )
        rows.append(
            row(
                "state_at (simple reducer), then .states",
                n,
                with_dict,
                "naive per-aggregate Python replay",
                naive_simple,
                note="the dict of states is made on first use",
            )
        )
        fold = measure(
            lambda: cl.state_at(events, last_values, types=parcel_types, at=AT, known_at=KNOWN_AT),
            repeat=repeat,
        )
        fast = measure(lambda: cl.latest(events, at=AT, known_at=KNOWN_AT), repeat=repeat)
        _check_same_answer(fast.result, fold.result)
        rows.append(
            row(
                "latest (vectorised)",
                n,
                fast,
                "state_at with a last-value reducer, same question",
                fold,
            )
        )
    else:  # best of three even here: a shared machine's noise is larger than the margin
        fast = measure(lambda: cl.latest(events), repeat=1 if quick else 3)
        rows.append(
            row(
                "latest (vectorised)",
                n,
                fast,
                goal="< 5 s at 10M",
                note=f"{fast.result.height:,} aggregates",
            )
        )
    by_truck = measure(lambda: cl.index(events, "truckId", at=AT, known_at=KNOWN_AT), repeat=repeat)
    rows.append(row("index by truckId (vectorised)", n, by_truck))
    return rows


def _with_states(result: cl.results.StateAt) -> cl.results.StateAt:
    """The result after its dict of states is made (returned whole, so that freeing it is
    not timed, as it is not for the other rows)."""
    assert len(result.states) == result.frame.height
    return result


def _check_same_answer(fast: pl.DataFrame, fold: cl.results.StateAt) -> None:
    names = {t.cls.__name__: t.name for t in parcel_types}
    expected = {a: (names[s[0]], *s[1:]) for a, s in fold.states.items()}
    got = {
        r[0]: r[1:]
        for r in fast.select(
            "aggregate_id", "last_event", "depotId", "truckId", "destinationId"
        ).iter_rows()
    }
    if got != expected:
        raise AssertionError("latest and state_at disagree on the same question")


if __name__ == "__main__":
    for r in run(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000, quick=False):
        print(r)
