"""A batch re-folds only what it must: deliveries that land after all of their aggregate's
are folded on from its live state without placing its old deliveries again."""

from __future__ import annotations

import polars as pl

import concursus_lab as cl
from concursus_lab.live.window import window
from concursus_lab.sample import parcel_state, parcel_types


def _long_histories(aggregates: int, repeats: int) -> pl.DataFrame:
    """Parcels whose histories go round ``repeats`` times, an hour apart, in time order
    (their terminal events only in the last round: a later event would land before one)."""
    events = cl.sample.parcels(aggregates, seed=2)
    ends = events.filter(pl.col("characteristics") == 2)
    events = events.filter(pl.col("characteristics") != 2)
    rounds = [
        events.with_columns(
            pl.col("event_timestamp") + pl.duration(hours=i),
            pl.col("processing_timestamp") + pl.duration(hours=i),
        )
        for i in range(repeats)
    ]
    rounds.append(
        ends.with_columns(
            pl.col("event_timestamp", "processing_timestamp") + pl.duration(hours=repeats)
        )
    )
    return pl.concat(rounds).sort("event_timestamp", "aggregate_id")


def _check(live, read: pl.DataFrame) -> None:
    want = cl.state_at(read, parcel_state, types=parcel_types)
    got = live.result()
    assert got.frame.equals(want.frame)
    assert got.counts == want.counts


def test_batches_in_time_order_place_only_themselves():
    events = _long_histories(6, 40)
    live = cl.live.states(parcel_state, types=parcel_types, every=4, keyframes=5)
    folded_on = 0
    for start in range(0, events.height, 25):
        batch = events[start : start + 25]
        win = window(live._kept, batch, live._tracks, parcel_types)
        assert win.frame.height == batch.height  # no old delivery placed again
        folded_on += len(win.base)
        live.update(batch)
        _check(live, events[: start + 25])
    assert folded_on > 0
    assert live.memory()["keyframes"] <= 6 * (5 + 1)


def test_a_later_event_below_a_terminal_one_is_placed_among_the_old():
    events = _long_histories(3, 1)
    one = events.filter(pl.col("aggregate_id") == events["aggregate_id"][0])
    assert one["characteristics"].to_list()[-1] == 2  # it ends delivered (terminal)
    live = cl.live.states(parcel_state, types=parcel_types, every=1)
    live.update(events)
    # a scan made after the delivery, in event time: still replayed before it (its rank)
    scan = one.filter(pl.col("characteristics") == 0).tail(1)
    scan = scan.with_columns(
        pl.col("event_timestamp") + pl.duration(days=1),
        pl.col("processing_timestamp") + pl.duration(days=1),
    )
    win = window(live._kept, scan, live._tracks, parcel_types)
    assert win.frame.height == one.height + 1 and not win.base
    changes = live.update(scan)
    assert changes.frame["change"].to_list() == ["past"]
    _check(live, pl.concat([events, scan]))


def test_a_repeat_of_the_newest_event_is_placed_among_the_old():
    events = _long_histories(3, 2)
    live = cl.live.states(parcel_state, types=parcel_types, duplicates="first")
    live.update(events)
    repeat = events.tail(1).with_columns(pl.col("processing_timestamp") + pl.duration(days=1))
    win = window(live._kept, repeat, live._tracks, parcel_types)
    assert win.frame.height > 1 and not win.base
    live.update(repeat)
    want = cl.state_at(
        pl.concat([events, repeat]), parcel_state, types=parcel_types, duplicates="first"
    )
    assert live.result().frame.equals(want.frame)
    assert live.result().counts == want.counts


def test_kept_deliveries_are_read_back_from_any_row_on():
    from concursus_lab.live.kept import Kept

    kept = Kept()
    rows = pl.DataFrame({"aggregate_id": [f"a{i}" for i in range(1000)], "n": range(1000)})
    sizes = [1, 7, 30, 2, 100, 5, 5, 5, 300, 45, 500]
    done = 0
    for size in sizes:
        kept.append(rows[done : done + size])
        done += size
        assert kept.frame.equals(rows[:done])
        assert len(kept._pieces) <= done.bit_length() + 1  # about log2 pieces
        for row in (0, done // 3, done - 1):
            since = kept.since(row)
            assert since.equals(rows[done - since.height : done])  # a tail of what was read
            assert since.height >= done - row
