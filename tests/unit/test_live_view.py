"""live_view driven in the kernel: the rows and points its front end is sent, batch by
batch, the pause button (a trait the browser sets), and what it refuses."""

from __future__ import annotations

import polars as pl
import pytest

import concursus_lab as cl
from concursus_lab.exceptions import SchemaError, SourceError
from concursus_lab.sample import parcel_state, parcel_types
from concursus_lab.widgets import live_view

RECEIVED = pl.col("name") == "receivedAtDepot"


@pytest.fixture(scope="module")
def parcels() -> pl.DataFrame:
    return cl.sample.parcels(40, seed=5)


def _fed(batches: list[pl.DataFrame], **options):
    live = cl.live.states(parcel_state, types=parcel_types)
    view = live_view(live, **options)
    changes = []
    for batch in batches:
        changes.append(live.update(batch))
        view.update(changes[-1])
    return live, view, changes


def test_every_delivery_read_is_a_point_and_late_ones_are_marked(parcels):
    # every parcel's first scan arrives after the rest: each restates its parcel's past
    on_time, late = parcels.filter(~RECEIVED), parcels.filter(RECEIVED)
    live, view, changes = _fed([on_time, late])
    points = view.board.points
    assert [p[0] for p in points] == list(range(parcels.height))
    kept = live.deliveries
    assert [p[1] for p in points] == kept["event_timestamp"].dt.epoch("ms").to_list()
    assert [p[2] for p in points] == kept["processing_timestamp"].dt.epoch("ms").to_list()
    assert [(p[3], p[4]) for p in points] == kept.select("aggregate_id", "name").rows()
    restated = [p for p in points if p[5]]
    # one per restated parcel: the delivery that caused it (the first to land)
    assert sorted(p[3] for p in restated) == changes[1].restated["aggregate_id"].to_list()
    had_events = set(late["aggregate_id"]) & set(on_time["aggregate_id"])
    assert set(changes[1].restated["aggregate_id"]) == had_events
    assert {p[4] for p in restated} == {"receivedAtDepot"}
    assert all(not p[5] for p in points[: on_time.height])


def test_the_table_keeps_the_latest_aggregates_restated_ones_on_top(parcels):
    ids = parcels["aggregate_id"].unique().sort()
    first = parcels.filter(pl.col("aggregate_id").is_in(ids[:10].implode()) & ~RECEIVED)
    others = parcels.filter(pl.col("aggregate_id").is_in(ids[10:].implode()))
    late = parcels.filter(pl.col("aggregate_id").is_in(ids[:3].implode()) & RECEIVED)
    live, view, _ = _fed([first, others, late], rows=12)
    rows = view.board.rows
    assert len(rows) == 12
    assert [r["aggregate_id"] for r in rows[:3]] == ids[:3].to_list()
    assert all(r["restated"] and r["change"] == "past" and r["batch"] == 3 for r in rows[:3])
    assert not any(r["restated"] for r in rows[3:])
    assert len({r["aggregate_id"] for r in rows}) == 12  # a row per aggregate, no repeats
    states = live.states
    for row in rows:
        assert row["state"] == repr(states[row["aggregate_id"]])
        want = live.result().frame.filter(pl.col("aggregate_id") == row["aggregate_id"])
        assert row["events_applied"] == want["events_applied"].item()
    assert "3 restated states" in view.board.caption


def test_pausing_holds_batches_and_resuming_shows_them_all(parcels):
    chunks = [parcels[i : i + 30] for i in range(0, parcels.height, 30)]
    _, straight, _ = _fed(chunks)
    live = cl.live.states(parcel_state, types=parcel_types)
    view = live_view(live)
    view.update(live.update(chunks[0]))
    shown = (list(view.board.rows), list(view.board.points))
    view.board.paused = True  # what the pause button does in the browser
    for chunk in chunks[1:]:
        view.update(live.update(chunk))
    assert (view.board.rows, view.board.points) == shown
    assert view.board.caption.endswith(f"paused, {len(chunks) - 1} batches held")
    assert "paused" in str(view)
    view.paused = False
    assert view.board.points == straight.board.points
    assert view.board.rows == straight.board.rows
    assert view.board.caption == straight.board.caption


def test_the_timeline_keeps_the_latest_points(parcels):
    chunks = [parcels[i : i + 25] for i in range(0, parcels.height, 25)]
    _, view, _ = _fed(chunks, points=50)
    numbers = [p[0] for p in view.board.points]
    assert numbers == list(range(parcels.height - 50, parcels.height))


def test_a_view_refuses_changes_it_cannot_place(parcels):
    live = cl.live.states(parcel_state, types=parcel_types)
    view = live_view(live)
    old = live.update(parcels[:20])
    live.update(parcels[20:40])
    with pytest.raises(SourceError, match="batch 1, but the live fold has folded 2"):
        view.update(old)
    with pytest.raises(SchemaError, match="`rows` must be a positive int, got 0"):
        live_view(live, rows=0)


def test_an_empty_batch_changes_nothing_but_the_caption(parcels):
    live, view, _ = _fed([parcels[:30]])
    before = (list(view.board.rows), list(view.board.points))
    view.update(live.update(parcels.clear()))
    assert (view.board.rows, view.board.points) == before
    assert view.board.caption.startswith("batch 2:")


def test_following_in_a_thread_shows_every_batch_and_stops(parcels, tmp_path):
    store = cl.open(str(tmp_path / "store"), create=True)
    store.append(parcels[:60])
    live = cl.live.states(parcel_state, types=parcel_types)
    view = live_view(live, points=10_000)
    thread = view.follow(store, batch=25, poll_timeout=0.05, idle_timeout=1.5)
    with pytest.raises(SourceError, match="already follows"):
        view.follow(store)
    store.append(parcels[60:])
    thread.join(timeout=60)
    assert not thread.is_alive()  # it stopped when nothing came for idle_timeout
    assert live.read == parcels.height
    assert len(view.board.points) == parcels.height
    assert view.board.caption.startswith(f"batch {live.batches}:")
    assert view.stop()  # it had ended
    again = view.follow(store, poll_timeout=0.05, idle_timeout=20)
    store.append(parcels[:5])  # a batch: stop() ends the follow after it
    assert view.stop(timeout=30)
    assert not again.is_alive()
    assert live.read == parcels.height + 5
