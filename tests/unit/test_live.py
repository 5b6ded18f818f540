"""Live states: a fold kept batch by batch equals a full ``state_at`` after every batch."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import polars as pl
import pytest

import concursus_lab as cl
from concursus_lab.exceptions import SchemaError
from concursus_lab.sample import order_state, order_types, parcel_state, parcel_types


def _messy_orders() -> pl.DataFrame:
    """Orders (initial events declared) with late repeats, conflicting repeats and rows
    that do not decode."""
    orders = cl.from_polars(cl.sample.orders_export(120), cl.sample.ORDERS)
    later = pl.col("processing_timestamp") + pl.duration(hours=5)
    repeats = orders.sample(25, seed=2).with_columns(later)
    conflicting = (
        orders.filter(pl.col("name") == "paid")
        .head(3)
        .with_columns(pl.col("parameters").str.replace(r"\d", "7"), later)
    )
    broken = orders.head(2).with_columns(pl.lit('{"zzz": 1}').alias("parameters"), later)
    return pl.concat([orders, repeats, conflicting, broken])


def _fold_in_batches(events, reducer, types, *, seed, batches, duplicates="last"):
    """Shuffle the deliveries (so many arrive late), feed them in batches, and compare the
    live states with a full fold of what was read after every batch."""
    events = events.sample(fraction=1.0, shuffle=True, seed=seed)
    cuts = np.sort(np.random.default_rng(seed).choice(events.height, batches, replace=False))
    live = cl.live.states(reducer, types=types, duplicates=duplicates, every=2, keyframes=3)
    done, restated = 0, 0
    for cut in [*cuts.tolist(), events.height]:
        changes = live.update(events[done:cut])
        done = cut
        restated += changes.restated.height
        got = live.result()
        want = cl.state_at(events[:cut], reducer, types=types, duplicates=duplicates)
        assert got.frame.equals(want.frame), (seed, cut)
        assert got.counts == want.counts
        assert got.undecodable.equals(want.undecodable)
    return live, restated


@pytest.mark.parametrize("duplicates", ["last", "first", "keep"])
def test_live_parcels_equal_state_at_after_every_batch(duplicates):
    events = cl.sample.parcels(150, seed=1)
    for seed in range(3):
        live, restated = _fold_in_batches(
            events, parcel_state, parcel_types, seed=seed, batches=9, duplicates=duplicates
        )
        assert restated > 0  # late deliveries did land in the past
        assert live.read == events.height


@pytest.mark.parametrize("duplicates", ["last", "first", "keep"])
def test_live_orders_with_repeats_conflicts_and_undecodable_rows(duplicates):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the conflicting repeats are warned about
        for seed in range(2):
            live, _ = _fold_in_batches(
                _messy_orders(),
                order_state,
                order_types,
                seed=seed,
                batches=15,
                duplicates=duplicates,
            )
            result = live.result()
            broken = 0 if duplicates == "first" else 2  # first: lost to the first delivery
            assert result.counts["undecodable"] == result.undecodable.height == broken


def test_one_delivery_per_batch():
    events = cl.sample.parcels(12, seed=4)
    _fold_in_batches(events, parcel_state, parcel_types, seed=1, batches=events.height - 1)


def test_keyframes_are_bounded_per_aggregate():
    events = cl.sample.parcels(5, seed=2)
    one = events.filter(pl.col("aggregate_id") == events["aggregate_id"][0])
    many = pl.concat(  # one aggregate, 400 deliveries, read 20 at a time
        one.with_columns(
            pl.col("event_timestamp") + pl.duration(minutes=i),
            pl.col("processing_timestamp") + pl.duration(minutes=i),
        )
        for i in range(400 // one.height + 1)
    )
    live = cl.live.states(parcel_state, types=parcel_types, every=4, keyframes=5)
    for start in range(0, many.height, 20):
        live.update(many[start : start + 20])
    assert live.memory()["keyframes"] <= 5 + 1
    assert live.result().frame.equals(cl.state_at(many, parcel_state, types=parcel_types).frame)
    late = many[::37].with_columns(pl.col("processing_timestamp") + pl.duration(days=30))
    live.update(late)  # repeats landing all along the history: keyframes after them dropped
    every = pl.concat([many, late])
    for at, known_at in _cuts(every, np.random.default_rng(3), 12):
        want = cl.state_at(every, parcel_state, types=parcel_types, at=at, known_at=known_at)
        assert live.state_at(at, known_at).frame.equals(want.frame)


def test_changes_say_whether_the_present_moved_or_the_past_was_restated():
    bulbs = cl.EventTypes("lightbulb")

    @bulbs.initial
    class Created:
        wattage: int

    @bulbs.event
    class SwitchedOn: ...

    def count(state, event):
        if isinstance(event, Created):
            return {"wattage": event.wattage, "on": 0}
        return {**state, "on": state["on"] + 1}

    def ev(kind, at, known):
        return kind(aggregate_id="b1", event_timestamp=at, processing_timestamp=known)

    live = cl.live.states(count, types=bulbs)
    first = live.update(
        bulbs.encode([ev(lambda **k: Created(60, **k), "2026-03-01 10:00", "2026-03-01 10:00")])
    )
    assert first.frame["change"].to_list() == ["new"]
    assert first.after == {"b1": {"wattage": 60, "on": 0}}
    moved = live.update(bulbs.encode([ev(SwitchedOn, "2026-03-01 12:00", "2026-03-01 12:00")]))
    assert moved.frame.select("change", "state_changed", "events_applied").rows() == [
        ("present", True, 2)
    ]
    late = live.update(bulbs.encode([ev(SwitchedOn, "2026-03-01 11:00", "2026-03-01 13:00")]))
    row = late.frame.row(0, named=True)
    assert (row["change"], row["name"], row["event_timestamp"].hour) == ("past", "switchedOn", 11)
    assert late.before == {"b1": {"wattage": 60, "on": 1}}
    assert late.after == {"b1": {"wattage": 60, "on": 2}}
    assert late.summary() == (
        "batch 3: 1 deliveries, 1 aggregates changed (0 new, 0 present, 1 past)"
    )
    repeat = live.update(bulbs.encode([ev(SwitchedOn, "2026-03-01 12:00", "2026-03-01 14:00")]))
    assert repeat.frame["change"].to_list() == ["past"]  # the same identity, delivered again
    assert repeat.frame["state_changed"].to_list() == [False]


def test_other_aggregate_types_are_counted_and_an_empty_batch_changes_nothing():
    live = cl.live.states(parcel_state, types=parcel_types)
    orders = cl.from_polars(cl.sample.orders_export(3), cl.sample.ORDERS)
    changes = live.update(orders)
    assert len(changes) == 0 and changes.frame.columns[:2] == ["aggregate_id", "change"]
    result = live.result()
    assert result.counts["other_aggregate_types"] == orders.height
    assert result.frame.height == 0
    assert "status" in result.frame.columns  # the state's fields, though there is no state


def test_offsets_follow_the_records_read():
    events = cl.sample.parcels(3, seed=1)
    batch = events.with_columns(
        pl.Series("kafka_partition", [i % 2 for i in range(events.height)], dtype=pl.Int32),
        pl.Series("kafka_offset", list(range(events.height)), dtype=pl.Int64),
    )
    live = cl.live.states(parcel_state, types=parcel_types)
    live.update(batch)
    last = events.height - 1
    assert live.offsets.kafka == {last % 2: last + 1, 1 - last % 2: last}


@pytest.mark.parametrize("name,value", [("every", 0), ("keyframes", "3"), ("every", True)])
def test_bad_keyframe_settings_say_what_to_pass(name, value):
    with pytest.raises(SchemaError, match=f"`{name}` must be a positive int, got {value!r}"):
        cl.live.states(parcel_state, types=parcel_types, **{name: value})


def _cuts(events: pl.DataFrame, rng: np.random.Generator, n: int):
    """``n`` questions (at, known_at): exact event and processing times of deliveries (the
    bounds' edges), and no bound at all."""
    ts, ps = events["event_timestamp"], events["processing_timestamp"]
    for q in range(n):
        at = None if q % 5 == 0 else ts[int(rng.integers(events.height))]
        known_at = None if q % 4 == 1 else ps[int(rng.integers(events.height))]
        yield at, known_at


@pytest.mark.parametrize("duplicates", ["last", "first", "keep"])
def test_state_at_from_keyframes_equals_a_full_fold(duplicates):
    rng = np.random.default_rng(5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the conflicting repeats are warned about
        for events, reducer, types in (
            (cl.sample.parcels(120, seed=6), parcel_state, parcel_types),
            (_messy_orders(), order_state, order_types),
        ):
            events = events.sample(fraction=1.0, shuffle=True, seed=7)
            live = cl.live.states(reducer, types=types, duplicates=duplicates, every=2, keyframes=4)
            for part in np.array_split(np.arange(events.height), 4):
                live.update(events[part])
                for at, known_at in _cuts(events, rng, 8):
                    got = live.state_at(at, known_at)
                    want = cl.state_at(
                        live.deliveries,
                        reducer,
                        types=types,
                        at=at,
                        known_at=known_at,
                        duplicates=duplicates,
                    )
                    assert got.frame.equals(want.frame), (at, known_at)
                    assert list(got.states.items()) == list(want.states.items())  # id order
                    assert got.counts == want.counts
                    assert got.undecodable.equals(want.undecodable)
                    assert (got.at, got.known_at) == (want.at, want.known_at)


@dataclasses.dataclass(frozen=True)
class _Seen:
    count: int
    last: str


def _count_then_seen(state, event):
    """A reducer whose states change class: an int after one event, then a dataclass."""
    if state is None:
        return 1
    return _Seen((state if isinstance(state, int) else state.count) + 1, type(event).__name__)


def test_state_at_from_keyframes_has_the_columns_of_its_own_states():
    # the live states mix ints and _Seen (a `state` column); an answer at a cut where every
    # state is a _Seen has its fields as columns, as a full fold of the same cut has
    events = cl.sample.parcels(60, seed=4)
    live = cl.live.states(_count_then_seen, types=parcel_types, every=2, keyframes=4)
    live.update(events)
    assert live.result().frame.columns[1] == "state"
    times = events["event_timestamp"].sort()
    for k in range(1, 8):
        at = times[events.height * k // 8]
        got = live.state_at(at)
        want = cl.state_at(events, _count_then_seen, types=parcel_types, at=at)
        assert got.frame.schema == want.frame.schema, at
        plain = [c for c, dtype in want.frame.schema.items() if dtype != pl.Object]
        assert got.frame.select(plain).equals(want.frame.select(plain))  # objects: below
        assert list(got.states.items()) == list(want.states.items())


def test_a_reducer_that_raises_in_time_travel_names_the_aggregate_and_event():
    # time travel replays only what the live fold applied: a reducer raises there only if
    # it is not a pure function, as this one is not once armed
    events = cl.sample.parcels(40, seed=8)
    at = events["event_timestamp"].sort()[events.height // 2]
    straddling = events.group_by("aggregate_id").agg(
        pl.col("event_timestamp").min().alias("a"), pl.col("event_timestamp").max().alias("b")
    )
    bad = straddling.filter((pl.col("a") < at) & (pl.col("b") >= at))["aggregate_id"].max()
    armed = []

    def fussy(state, event):
        if armed and event.aggregate_id == bad:
            raise ValueError("no further")
        return parcel_state(state, event)

    live = cl.live.states(fussy, types=parcel_types)
    live.update(events)
    armed.append(True)
    with pytest.raises(cl.exceptions.ReducerError, match=f"aggregate '{bad}'") as raised:
        live.state_at(at)
    assert raised.value.aggregate_id == bad
    assert isinstance(raised.value.__cause__, ValueError)
