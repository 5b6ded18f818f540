"""Live views (``cl.live.view``): after every batch, the view equals ``cl.project`` over
everything read so far; a keyed fold re-folds only the keys the batch's aggregates name."""

from __future__ import annotations

import dataclasses
import warnings

import polars as pl
import pytest

import concursus_lab as cl
from concursus_lab.sample import Delivered, LoadedOntoTruck, parcel_state, parcel_types


@dataclasses.dataclass(frozen=True)
class Trips:
    loads: int = 0
    delivered: int = 0


def trips(state: Trips, event) -> Trips:
    if isinstance(event, LoadedOntoTruck):
        return dataclasses.replace(state, loads=state.loads + 1)
    if isinstance(event, Delivered):
        return dataclasses.replace(state, delivered=state.delivered + 1)
    return state


def by_truck(duplicates: str = "last"):
    return cl.fold(trips, types=parcel_types, key="truckId", initial=Trips(), duplicates=duplicates)


def batches(events: pl.DataFrame, n: int, seed: int) -> list[pl.DataFrame]:
    """``events`` in ``n`` batches of arrival order, a tenth of them (receipts, redeliveries
    of loads) held back and sent last, so the last batch lands in the past of many."""
    late = pl.col("name") == "receivedAtDepot"
    sample = events.filter(~late).sample(fraction=1.0, shuffle=True, seed=seed)
    redelivered = events.filter(pl.col("name") == "loadedOntoTruck").sample(fraction=0.2, seed=seed)
    redelivered = redelivered.with_columns(
        pl.col("processing_timestamp") + pl.duration(days=2),
        pl.lit(None, dtype=pl.String).alias("processing_id"),
    )
    size = sample.height // n + 1
    parts = [sample[i : i + size] for i in range(0, sample.height, size)]
    return [*parts, events.filter(late), redelivered]


@pytest.mark.parametrize("duplicates", ["last", "keep"])
@pytest.mark.parametrize("projection", ["by_truck", "by_parcel"])
def test_after_every_batch_the_view_is_project_of_all_read(projection, duplicates):
    events = cl.sample.parcels(150, seed=7)
    if projection == "by_truck":
        chosen = by_truck(duplicates)
    else:
        chosen = cl.fold(parcel_state, types=parcel_types, duplicates=duplicates)
    live = cl.live.view(chosen)
    assert live.frame.equals(cl.project(events.head(0), chosen))  # the same shape, empty
    read = []
    for batch in batches(events, 5, seed=3):
        changes = live.update(batch)
        read.append(batch)
        want = cl.project(pl.concat(read), chosen)
        assert live.frame.equals(want), changes
        assert changes.after.equals(want.filter(pl.col(chosen.key).is_in(changes.keys)))
    assert live.batches == 7 and live.read == sum(b.height for b in read)


def test_a_batch_refolds_only_the_keys_its_aggregates_name_before_or_after():
    events = parcel_types.encode(
        [
            LoadedOntoTruck("T1", aggregate_id="p1", event_timestamp="2026-03-02 09:00"),
            Delivered("d1", aggregate_id="p1", event_timestamp="2026-03-02 10:00"),
            LoadedOntoTruck("T2", aggregate_id="p2", event_timestamp="2026-03-02 09:00"),
        ]
    )
    live = cl.live.view(by_truck())
    first = live.update(events)
    assert first.keys == ["T1", "T2"]
    # p1 was really loaded onto T3 after T1 (known late): its delivery moves to T3
    late = parcel_types.encode(
        [LoadedOntoTruck("T3", aggregate_id="p1", event_timestamp="2026-03-02 09:30")]
    )
    changes = live.update(late)
    assert changes.keys == ["T1", "T3"]  # T2 untouched
    assert changes.before["truckId"].to_list() == ["T1"]
    assert live.frame.select("truckId", "loads", "delivered").rows() == [
        ("T1", 1, 0),
        ("T2", 1, 0),
        ("T3", 1, 1),
    ]
    assert live.frame.equals(cl.project(pl.concat([events, late]), by_truck()))


def test_a_projection_of_the_whole_frame_is_run_again_per_batch():
    events = cl.sample.parcels(60, seed=2)
    count = cl.projection(lambda frame: frame.group_by("name").len().sort("name"), key="name")
    live = cl.live.view(count)
    assert live.aggregate_type is None  # it reads every type
    read = []
    for batch in batches(events, 3, seed=1):
        changes = live.update(batch)
        read.append(batch)
        assert changes.keys is None
        assert live.frame.equals(cl.project(pl.concat(read), count))


def test_undecodable_deliveries_are_warned_of_per_batch():
    events = cl.sample.parcels(10, seed=2)
    broken = events.head(2).with_columns(pl.lit("teleported").alias("name"))
    live = cl.live.view(by_truck())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        live.update(events)  # nothing undecodable: no warning
    with pytest.warns(UserWarning, match="teleported|undecodable|decode"):
        live.update(broken)
    with pytest.warns(UserWarning, match="teleported"):
        want = cl.project(pl.concat([events, broken]), by_truck())
    assert live.frame.equals(want)


def test_a_view_whose_columns_come_from_its_states_takes_them_from_the_first_rows():
    @dataclasses.dataclass(frozen=True)
    class Loads:  # defined here: its fields are known from a state, not from the empty view
        loads: int = 0

    def loads(state, event):
        return Loads(state.loads + 1) if isinstance(event, LoadedOntoTruck) else state

    fold = cl.fold(loads, types=parcel_types, key="truckId", initial=Loads())
    events = cl.sample.parcels(20, seed=5)
    live = cl.live.view(fold)
    live.update(events[:30])
    assert live.frame.equals(cl.project(events[:30], fold))
    live.update(events[30:])
    assert live.frame.equals(cl.project(events, fold))
