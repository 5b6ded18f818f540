"""A live fold upcasts each batch as ``cl.state_at`` does: states, counts and time travel
equal a full fold of everything read, with the same types (upcasters that rewrite one event
as one; a split is refused: ``test_upcasting.py``)."""

from __future__ import annotations

import numpy as np
import polars as pl

import concursus_lab as cl
from tests.versions import declare, histories, where


def _row_for_row() -> cl.EventTypes:
    """``tests/versions.declare``'s types without the split: receivedAtDepot v0 -> v1 -> v2
    (a rename, then a field added); ``transferred`` rows are then of no declared type."""
    return declare(split=False)


def _same(got, want) -> None:
    assert got.frame.equals(want.frame)
    assert list(got.states.items()) == list(want.states.items())
    assert got.counts == want.counts
    assert got.undecodable.equals(want.undecodable)


def test_live_states_of_older_versions_equal_state_at_after_every_batch():
    types = _row_for_row()
    stored, _ = histories(parcels=80, seed=3)
    events = stored.sample(fraction=1.0, shuffle=True, seed=4)  # many arrive late
    live = cl.live.states(where, types=types, every=2, keyframes=3)
    rng = np.random.default_rng(5)
    done = 0
    for cut in [*np.sort(rng.choice(events.height, 8, replace=False)).tolist(), events.height]:
        live.update(events[done:cut])
        done = cut
        want = cl.state_at(events[:cut], where, types=types)
        _same(live.result(), want)
    assert live.result().counts["upcast"] > 0
    assert live.result().counts["undecodable"] > 0  # the transferred rows: no type now


def test_time_travel_in_a_live_fold_upcasts_too():
    types = _row_for_row()
    stored, _ = histories(parcels=60, seed=8)
    live = cl.live.states(where, types=types, every=2, keyframes=4)
    for part in np.array_split(np.arange(stored.height), 3):
        live.update(stored[part])
    ts, ps = stored["event_timestamp"], stored["processing_timestamp"]
    rng = np.random.default_rng(9)
    for q in range(10):
        at = None if q % 4 == 0 else ts[int(rng.integers(stored.height))]
        known_at = None if q % 3 == 1 else ps[int(rng.integers(stored.height))]
        want = cl.state_at(stored, where, types=types, at=at, known_at=known_at)
        _same(live.state_at(at, known_at), want)
    assert pl.Series(stored["version"]).is_in(["0", "1"]).any()


def test_an_older_version_of_an_initial_event_is_placed_as_an_initial_one():
    bulbs = cl.EventTypes("lightbulb")

    @bulbs.initial(version="1")
    class Created:
        wattage: int

    @bulbs.event
    class SwitchedOn: ...

    bulbs.upcast(("created", "0"), to=Created, add={"wattage": 40})

    def count(state, event):
        if isinstance(event, Created):
            return (event.wattage, 0)
        return (state[0], state[1] + 1)

    rng = np.random.default_rng(11)
    made = []
    for b in range(30):
        start = np.datetime64("2026-03-01T10:00") + np.timedelta64(int(rng.integers(600)), "m")
        # switches logged before the creation in event time still replay after it
        for _ in range(int(rng.integers(2, 6))):
            at = start + np.timedelta64(int(rng.integers(-900, 9000)) * 2 + 1, "s")  # never a tie
            made.append(SwitchedOn(aggregate_id=f"b{b}", event_timestamp=str(at)))
        made.append(Created(60, aggregate_id=f"b{b}", event_timestamp=str(start)))
    events = bulbs.encode(made).with_columns(
        pl.col("processing_timestamp") + pl.duration(minutes=pl.int_range(pl.len()))
    )
    old = pl.col("name") == "created"
    old &= pl.int_range(pl.len()) % 2 == 0
    events = events.with_columns(
        pl.when(old).then(pl.lit("0")).otherwise("version").alias("version"),
        pl.when(old).then(pl.lit("{}")).otherwise("parameters").alias("parameters"),
    )
    assert (events["version"] == "0").sum() > 5
    events = events.sample(fraction=1.0, shuffle=True, seed=12)
    live = cl.live.states(count, types=bulbs, every=1, keyframes=4)
    for part in np.array_split(np.arange(events.height), 6):
        live.update(events[part])
        read = live.deliveries
        _same(live.result(), cl.state_at(read, count, types=bulbs))
        for at in read["event_timestamp"].sample(4, seed=13):
            got, want = live.state_at(at), cl.state_at(read, count, types=bulbs, at=at)
            if want.frame.height == 0:  # state_at's empty frame has a Null state column
                assert got.frame.height == 0 and got.counts == want.counts
                continue
            _same(got, want)
