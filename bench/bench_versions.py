"""Event versions: what upcasting costs a fold.

The sample parcels are declared in a version 1 whose parameters are named differently from
version 0 (``depot`` became ``depotId``, and so on). Half of the events are stored in
version 0, so each needs one upcast (a rename of a field, columnar) on its way to the
reducer; the baseline is the same fold over the same events all stored in version 1, so
that nothing needs upcasting. Both give the same states (checked).

``python -m bench.bench_versions [events]`` prints the rows.
"""

from __future__ import annotations

import sys

import polars as pl

import concursus_lab as cl
from bench._harness import measure, row

MAX_SCALE = 1_000_000  # state_at holds every event as a Python object
EVENTS_PER_PARCEL = 3.25

parcel = cl.EventTypes("parcel")


@parcel.event(version="1")
class ReceivedAtDepot:
    depotId: str


@parcel.event(version="1")
class LoadedOntoTruck:
    truckId: str


@parcel.event(version="1")
class DeliveryFailed:
    pass


@parcel.terminal(version="1")
class Delivered:
    destinationId: str


parcel.upcast(("receivedAtDepot", "0"), to=ReceivedAtDepot, rename={"depot": "depotId"})
parcel.upcast(("loadedOntoTruck", "0"), to=LoadedOntoTruck, rename={"truck": "truckId"})
parcel.upcast(("deliveryFailed", "0"), to=DeliveryFailed)
parcel.upcast(("delivered", "0"), to=Delivered, rename={"destination": "destinationId"})


#: Each event's status, and the parameter that says where the parcel is (None: where it was).
PLACES = {
    ReceivedAtDepot: ("at depot", "depotId"),
    LoadedOntoTruck: ("on truck", "truckId"),
    DeliveryFailed: ("failed", None),
    Delivered: ("delivered", "destinationId"),
}


def where(state, event):
    """Where a parcel is, as a (status, place) tuple."""
    status, place = PLACES[type(event)]
    return (status, getattr(event, place) if place else state and state[1])


def histories(scale: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(half the events stored in version 0, all of them in version 1)."""
    events = cl.sample.parcels(max(1, int(scale / EVENTS_PER_PARCEL)), seed=1)
    newest = events.with_columns(version=pl.lit("1"))
    # every delivery of an event in one version (a redelivery repeats what was written)
    old = pl.struct(cl.IDENTITY).hash(seed=1) % 2 == 0
    renamed = pl.col("parameters").str.replace(r'^\{"(depot|truck|destination)Id"', r'{"$1"')
    stored = newest.with_columns(
        version=pl.when(old).then(pl.lit("0")).otherwise("version"),
        parameters=pl.when(old).then(renamed).otherwise("parameters"),
    )
    return stored, newest


def run(scale: int, quick: bool) -> list[dict]:
    stored, newest = histories(scale)
    n = stored.height
    repeat = 1 if quick else 3
    ours = measure(lambda: cl.state_at(stored, where, types=parcel), repeat=repeat)
    baseline = measure(lambda: cl.state_at(newest, where, types=parcel), repeat=repeat)
    if not ours.result.frame.equals(baseline.result.frame):
        raise AssertionError("the upcast history and the newest one fold to different states")
    upcast = ours.result.counts["upcast"]
    return [
        row(
            "state_at, half the events one upcast behind",
            n,
            ours,
            "the same fold, every event stored in the newest version",
            baseline,
            goal=">= 0.8x",
            note=f"{upcast:,} events upcast (a field renamed, columnar)",
        )
    ]


if __name__ == "__main__":
    for r in run(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000, quick=False):
        print(r)
