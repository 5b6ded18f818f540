"""The lateness profile, on histories whose answers are worked out by hand."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

import concursus_lab as cl
from concursus_lab.delivery.lateness import lateness_rows
from concursus_lab.exceptions import SchemaError
from tests.contract import event, frame

S = dt.timedelta(seconds=1)


def test_hand_made_history():
    history = frame(
        event("a", 1, 2),  # lateness 1 s
        event("a", 3, 4, name="loadedOntoTruck"),  # 1 s
        event("a", 2, 5, name="x"),  # 3 s, arrives after event time 3: out of order
        event("a", 2, 6, name="x"),  # 4 s, a repeat of the previous identity
        event("b", 5, 4),  # -1 s: clock ahead
        event("b", 4, 9, name="y"),  # 5 s, after event time 5: out of order
        event("c", 1, 1),  # 0 s
    )
    profile = cl.lateness(history).row(0, named=True)
    assert profile["count"] == 7
    assert profile["negative"] == 1
    assert profile["out_of_order"] == 2
    assert profile["duplicates"] == 1
    assert profile["max"] == 5 * S
    assert profile["p50"] == 1 * S  # sorted: -1 0 1 1 3 4 5; nearest rank of 0.5 is 1 s


def test_grouped_and_column_order():
    history = frame(event("a", 1, 2), event("b", 1, 3, stream_id="driver-app"))
    profile = cl.lateness(history, by="stream_id")
    assert profile.columns == [
        "stream_id",
        "count",
        "p50",
        "p90",
        "p99",
        "p999",
        "max",
        "negative",
        "out_of_order",
        "duplicates",
    ]
    assert profile["stream_id"].to_list() == ["", "driver-app"]
    assert profile["max"].to_list() == [S, 2 * S]
    assert profile.schema["p99"] == pl.Duration("us")


def test_a_repeat_does_not_count_as_out_of_order():
    history = frame(event("a", 1, 2), event("a", 5, 6), event("a", 1, 7))
    row = cl.lateness(history).row(0, named=True)
    assert (row["out_of_order"], row["duplicates"]) == (0, 1)


def test_unknown_by_column_suggests_a_near_name():
    with pytest.raises(SchemaError, match="did you mean 'stream_id'"):
        cl.lateness(frame(event("a", 1, 2)), by="streamid")


def test_hash_path_agrees_with_a_plain_python_count():
    history = cl.sample.parcels(1_500, seed=5)
    rows = history.with_row_index("i").sort("processing_timestamp", "i").to_dicts()
    seen: set = set()
    latest: dict = {}
    ooo = 0
    for r in rows:
        identity = tuple(r[k] for k in cl.IDENTITY)
        if identity in seen:
            continue
        seen.add(identity)
        key = (r["aggregate_type"], r["aggregate_id"])
        if key in latest and r["event_timestamp"] < latest[key]:
            ooo += 1
        latest[key] = max(latest.get(key, r["event_timestamp"]), r["event_timestamp"])
    got = cl.lateness(history).row(0, named=True)
    assert got["out_of_order"] == ooo
    assert got["duplicates"] == len(rows) - len(seen)


def test_aggregates_sharing_a_hash_are_told_apart_by_their_names(monkeypatch):
    import concursus_lab.delivery.lateness as lateness_module
    from concursus_lab.frame import keys

    history = cl.sample.parcels(300, seed=4)
    expected = cl.lateness(history, by="name")
    assert expected["out_of_order"].sum() > 0

    def colliding(frame):
        h, h2 = keys.aggregate_hashes(frame)
        return h * 0, h2  # every aggregate shares the first hash

    monkeypatch.setattr(lateness_module, "aggregate_hashes", colliding)
    assert cl.lateness(history, by="name").equals(expected)


def test_the_first_delivery_of_a_tie_is_the_lower_kafka_offset():
    # two deliveries of one identity logged at one instant, the later offset in the first
    # row: Kafka's offset, not row order, says which arrived first (frame/identity's rule)
    history = frame(event("a", 1, 2), event("a", 1, 2), event("a", 3, 2, name="x"))
    history = history.with_columns(
        kafka_partition=pl.lit(0, dtype=pl.Int32),
        kafka_offset=pl.Series([7, 3, 9], dtype=pl.Int64),
    )
    profile = cl.lateness(history, by="kafka_offset")
    assert dict(zip(profile["kafka_offset"], profile["duplicates"], strict=True)) == {
        3: 0,
        7: 1,
        9: 0,
    }
    rows = lateness_rows(history, ["kafka_offset"])
    assert rows["__first"].to_list() == [False, True, True]
    # the same in the frame's row order: only the offsets decide
    flipped = history.reverse()
    assert lateness_rows(flipped, ["kafka_offset"])["__first"].to_list() == [True, True, False]
