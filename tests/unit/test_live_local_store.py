"""A live fold following a local store that grows while it is followed (read again every
poll): equal to a full fold after every batch, late events restating the past, identical
deliveries read as often as stored, and a stopped follow resumed losing and repeating
nothing."""

from __future__ import annotations

import threading
import time

import polars as pl
import pytest

import concursus_lab as cl
from concursus_lab.exceptions import SourceError
from concursus_lab.live.polling import unread
from concursus_lab.sample import parcel_state, parcel_types
from tests.contract import canonical_sort


def _late(events: pl.DataFrame, n: int) -> pl.DataFrame:
    """``n`` parcels' first scans again, an hour before them and processed a day later: they
    land before what their parcels already have."""
    firsts = events.sort("event_timestamp").group_by("aggregate_id", maintain_order=True).first()
    return (
        firsts.sort("aggregate_id")
        .head(n)
        .select(events.columns)
        .with_columns(
            pl.col("event_timestamp") - pl.duration(hours=1),
            pl.col("processing_timestamp") + pl.duration(days=30),
            pl.lit(None, dtype=pl.String).alias("processing_id"),
        )
    )


def test_a_live_fold_follows_a_growing_local_store_and_resumes(tmp_path):
    store = cl.open(str(tmp_path / "store"), create=True)
    sample = cl.sample.parcels(100, seed=44).sort("processing_timestamp")
    settled = ~pl.col("aggregate_id").is_in(sample[120:]["aggregate_id"].implode())
    late = _late(sample[:120].filter(settled), 8)  # parcels read whole before they come
    store.append(sample[:120])
    parts = [sample[120:220], sample[220:], late]

    def write() -> None:
        for part in parts:
            time.sleep(0.4)
            store.append(part)

    writer = threading.Thread(target=write)
    live = cl.live.states(parcel_state, types=parcel_types, every=2)
    restated: list[str] = []
    checked = 0

    def check(changes) -> None:
        nonlocal checked
        restated.extend(changes.restated["aggregate_id"].to_list())
        want = cl.state_at(live.deliveries, parcel_state, types=parcel_types)
        assert live.result().frame.equals(want.frame)
        assert live.result().counts == want.counts
        checked += 1

    follow = live.follow(store, batch=80, poll_timeout=0.1, idle_timeout=5)
    check(next(follow))  # the history: the first 80 of what is stored
    check(next(follow))
    assert live.read == 120
    writer.start()
    check(next(follow))  # the first append
    follow.close()  # stopped while the writer goes on
    writer.join()
    for changes in live.follow(store, batch=80, poll_timeout=0.1, idle_timeout=1):
        check(changes)
    stored = store.events(duplicates="keep")
    assert live.read == stored.height == sample.height + late.height  # nothing lost
    columns = stored.columns
    assert canonical_sort(live.deliveries.select(columns)).equals(canonical_sort(stored))
    assert set(late["aggregate_id"]) <= set(restated)
    assert checked >= 5


def test_unread_counts_identical_deliveries_as_often_as_they_come():
    events = cl.sample.parcels(5, seed=45)
    twice = pl.concat([events, events[:3]])
    assert unread(twice, events).equals(events[:3])
    assert unread(twice, twice).height == 0
    assert unread(events, events.clear()).equals(events)
    with_null = events.with_columns(pl.lit(None, dtype=pl.String).alias("stream_id"))
    assert unread(with_null, with_null[:2]).equals(with_null[2:])  # nulls match nulls


def test_a_source_that_can_be_neither_followed_nor_read_is_refused():
    live = cl.live.states(parcel_state, types=parcel_types)
    with pytest.raises(SourceError, match=r"neither `.follow\(\)` nor `.events\(\)`"):
        live.follow(object())
