"""cl.idempotency: Concursus's Hazelcast idempotency filter, replayed on hand-worked histories.

The rules (delivery/idempotency.py): the filter's clock is the processing time, deliveries go
in arrival order, an entry put at t is gone from t + ttl on, and a stopped repeat does not
extend its entry's life.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import concursus_lab as cl
from concursus_lab.exceptions import SchemaError
from concursus_lab.sources.hazelcast.window import ENTRY_SCHEMA
from tests.contract import at, event, frame


def _deliveries(*arrivals: float, aggregate: str = "p1", stream: str = "") -> list:
    """One event (event time 0) delivered at each of ``arrivals`` seconds."""
    return [event(aggregate, 0, second, stream_id=stream) for second in arrivals]


def _outcomes(events: pl.DataFrame, ttl) -> list[str]:
    return cl.idempotency(events, ttl=ttl).deliveries["outcome"].cast(pl.String).to_list()


def test_a_repeat_inside_the_ttl_is_stopped_and_one_at_the_ttl_passes():
    history = frame(*_deliveries(0, 5, 9.999, 10, 15, 20))
    assert _outcomes(history, "10s") == [
        "first", "stopped", "stopped", "slipped", "stopped", "slipped",
    ]


def test_a_stopped_repeat_does_not_extend_the_entry():
    # putIfAbsent that finds the entry writes nothing: 12 s is measured from 0, not from 8
    assert _outcomes(frame(*_deliveries(0, 8, 12)), "10s") == ["first", "stopped", "slipped"]


def test_without_a_ttl_every_repeat_is_stopped():
    assert _outcomes(frame(*_deliveries(0, 3_600, 86_400 * 30)), None) == [
        "first", "stopped", "stopped",
    ]


def test_the_identity_is_concursus_s_four_fields():
    history = frame(
        *_deliveries(0, 1),
        *_deliveries(2, stream="phone"),  # another stream: another event
        *_deliveries(3, aggregate="p2"),
        event("p1", 1, 4),  # another event time
    )
    assert _outcomes(history, "1h") == ["first", "stopped", "first", "first", "first"]


def test_deliveries_go_in_arrival_order_not_row_order():
    history = frame(*_deliveries(30, 0, 5))
    replay = cl.idempotency(history, ttl="10s")
    got = replay.deliveries.select(
        pl.col("processing_timestamp").dt.epoch("s") % 86_400, "outcome", "since_stored"
    )
    assert got.rows() == [
        (0, "first", None),
        (5, "stopped", dt.timedelta(seconds=5)),
        (30, "slipped", dt.timedelta(seconds=30)),
    ]
    assert replay.longest_repeat == dt.timedelta(seconds=30)
    assert replay.counts == {"first": 1, "stopped": 1, "slipped": 1}
    assert replay.slipped.height == 1


def test_printed_it_says_what_slipped_and_the_ttl_that_stops_all():
    text = str(cl.idempotency(frame(*_deliveries(0, 5, 30)), ttl="10s"))
    assert text == (
        "Idempotency filter with a TTL of 10.0s: 3 deliveries, 2 repeats: 1 stopped, "
        "1 slipped through.\n"
        "A TTL longer than 30.0s stops every repeat (the longest time from an event's first "
        "delivery to its last)."
    )


@pytest.mark.parametrize("ttl", [0, "0s", "-5s", "soon"])
def test_a_ttl_that_is_not_a_positive_duration_is_refused(ttl):
    with pytest.raises(SchemaError, match="`ttl`"):
        cl.idempotency(frame(*_deliveries(0, 1)), ttl=ttl)


def test_the_sample_s_repeats_and_the_chart():
    sample = cl.open("data/sample").events(duplicates="keep")
    replay = cl.idempotency(sample, ttl="10m")
    repeats = sample.height - sample.unique(cl.IDENTITY).height
    c = replay.counts
    assert c["first"] == sample.unique(cl.IDENTITY).height
    assert c["stopped"] + c["slipped"] == repeats > 0
    chart = cl.plot.idempotency(replay).to_dict()
    assert [layer["mark"]["type"] for layer in chart["layer"]] == ["line", "rule"]


arrivals = st.lists(st.integers(0, 500), min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(arrivals, st.integers(1, 200))
def test_by_ttl_agrees_with_a_replay_at_each_ttl_and_slips_fall_as_the_ttl_grows(times, ttl):
    history = frame(*_deliveries(*times), *_deliveries(*times[::2], aggregate="p2"))
    replay = cl.idempotency(history, ttl=f"{ttl}s")
    table = replay.by_ttl([f"{ttl}s", f"{ttl * 2}s", "1000s"])
    assert table.row(0) == (
        dt.timedelta(seconds=ttl), replay.counts["stopped"], replay.counts["slipped"]
    )
    assert table["slipped"].to_list() == sorted(table["slipped"].to_list(), reverse=True)
    assert table["slipped"][-1] == 0  # longer than any repeat: every repeat is stopped


# -- a live filter's map held against the history (delivery/live_filter.py) ----------------


def _entries(read_second: int, *held: tuple[str, int, int]) -> pl.DataFrame:
    """A live map as IdempotencyWindow.entries() gives it: (aggregate, event s, stored s)."""
    rows = [
        {
            "aggregate_type": "parcel",
            "aggregate_id": aggregate,
            "event_timestamp": at(second),
            "stream_id": "",
            "stored_at": at(stored),
            "expires_at": at(stored + 10),
            "ttl": dt.timedelta(seconds=10),
            "read_at": at(read_second),
        }
        for aggregate, second, stored in held
    ]
    return pl.DataFrame(rows, schema=ENTRY_SCHEMA)


def test_what_a_filter_holds_at_a_moment_is_its_last_store_within_the_ttl():
    # p1: first at 0, stopped at 5, slipped at 10 (stored again); p2 stored at 2, gone at 12
    history = frame(*_deliveries(0, 5, 10), *_deliveries(2, aggregate="p2"))
    replay = cl.idempotency(history, ttl="10s")
    held = replay.held(at(15)).sort("aggregate_id")
    assert held["aggregate_id"].to_list() == ["p1"]
    assert held["stored_at"].to_list() == [at(10)]
    assert held["expires_at"].to_list() == [at(20)]
    # at 11 p2 is still held; p1's entry is the one stored at 10 (deliveries after 11 not yet)
    assert replay.held(at(11)).sort("aggregate_id")["stored_at"].to_list() == [at(10), at(2)]
    assert replay.held(at(9))["stored_at"].to_list() in ([at(0), at(2)], [at(2), at(0)])


def test_comparing_a_live_map_names_each_disagreement():
    history = frame(
        *_deliveries(0),                      # p1: stored at 0, held until 10
        *_deliveries(1, aggregate="p2"),      # p2: stored at 1, held until 11: the map lost it
        *_deliveries(-20, aggregate="p3"),    # p3: expired at -10, but the map still holds it
    )
    entries = _entries(
        5,
        ("p1", 0, 0),
        ("p3", 0, -20),
        ("p4", 0, 3),  # the filter saw an event the history never stored
    )
    found = cl.idempotency(history, ttl="10s").compare(entries)
    statuses = dict(
        found.identities.select("aggregate_id", pl.col("status").cast(pl.String)).iter_rows()
    )
    assert statuses == {
        "p1": "held", "p2": "missing", "p3": "held past expiry", "p4": "not in history",
    }
    assert found.at == at(5)
    assert found.counts == {"held": 1, "missing": 1, "not in history": 1, "held past expiry": 1}
    assert str(found).startswith(
        "Live filter vs history at 2026-03-02 00:00:05 UTC: they disagree;"
    )


def test_a_map_that_agrees_with_the_history_reads_as_agreeing():
    history = frame(*_deliveries(0, 4), *_deliveries(2, aggregate="p2"))
    found = cl.idempotency(history, ttl="10s").compare(_entries(6, ("p1", 0, 0), ("p2", 0, 2)))
    assert found.counts == {"held": 2, "missing": 0, "not in history": 0, "held past expiry": 0}
    assert "they agree" in str(found)


def test_comparing_needs_the_entries_columns_and_a_moment():
    replay = cl.idempotency(frame(*_deliveries(0)), ttl="10s")
    with pytest.raises(SchemaError, match="lacks"):
        replay.compare(pl.DataFrame({"aggregate_id": ["p1"]}))
    with pytest.raises(SchemaError, match="at="):
        replay.compare(_entries(0).drop("read_at"))
    assert replay.compare(_entries(0).drop("read_at"), at=at(3)).counts["missing"] == 1
