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
from tests.contract import event, frame


def _deliveries(*arrivals: float, aggregate: str = "p1", stream: str = "") -> list:
    """One event (event time 0) delivered at each of ``arrivals`` seconds."""
    return [event(aggregate, 0, at, stream_id=stream) for at in arrivals]


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
