"""latest and index: hand-made histories worked out by hand, then properties against a plain
replay on random messy histories."""

from __future__ import annotations

import datetime as dt
import json

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import concursus_lab as cl
from concursus_lab.exceptions import SchemaError
from concursus_lab.sample.parcels import (
    Delivered,
    DeliveryFailed,
    LoadedOntoTruck,
    ReceivedAtDepot,
    parcel_types,
)
from tests.unit.test_timetravel import TIMES, bulbs, histories

UTC = dt.UTC
T0 = dt.datetime(2026, 3, 1, tzinfo=UTC)


def minutes(m: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=m)


def ev(cls, minute, *args, known=None, parcel="p1", stream=""):
    return cls(
        *args,
        aggregate_id=parcel,
        event_timestamp=minutes(minute),
        stream_id=stream,
        processing_timestamp=minutes(minute if known is None else known),
    )


def test_a_parameter_absent_later_keeps_its_last_value():
    events = parcel_types.encode(
        [ev(ReceivedAtDepot, 0, "Lewisham"), ev(LoadedOntoTruck, 5, "LEW-1"), ev(DeliveryFailed, 9)]
    )
    out = cl.latest(events)
    assert out.columns == [
        "aggregate_type",
        "aggregate_id",
        "last_event",
        "last_event_timestamp",
        "events",
        "depotId",
        "truckId",
    ]
    assert out.rows() == [("parcel", "p1", "deliveryFailed", minutes(9), 3, "Lewisham", "LEW-1")]


def test_an_older_value_arriving_later_never_overwrites_a_newer_one():
    events = parcel_types.encode(
        [
            ev(LoadedOntoTruck, 10, "LEW-1", known=11),
            ev(LoadedOntoTruck, 5, "LEW-2", known=60),  # happened earlier, logged much later
            ev(LoadedOntoTruck, 3, "CAM-1", parcel="p2"),
        ]
    )
    assert cl.latest(events)["truckId"].to_list() == ["LEW-1", "CAM-1"]
    assert cl.index(events, "truckId").rows() == [("CAM-1", ["p2"]), ("LEW-1", ["p1"])]
    # before minute 8 only the late one had happened
    assert cl.index(events, "truckId", at=minutes(8)).rows() == [
        ("CAM-1", ["p2"]),
        ("LEW-2", ["p1"]),
    ]
    # ... and at minute 30 it was not known yet
    assert cl.index(events, "truckId", at=minutes(8), known_at=minutes(30)).rows() == [
        ("CAM-1", ["p2"])
    ]


def test_bounds_exclusive_at_and_inclusive_known_at():
    events = parcel_types.encode(
        [ev(LoadedOntoTruck, 0, "A"), ev(LoadedOntoTruck, 10, "B", known=20)]
    )
    assert cl.latest(events, at=minutes(10))["truckId"].to_list() == ["A"]
    assert cl.latest(events, at=minutes(10) + dt.timedelta(microseconds=1))[
        "truckId"
    ].to_list() == ["B"]
    assert cl.latest(events, known_at=minutes(20))["truckId"].to_list() == ["B"]
    assert cl.latest(events, known_at=minutes(19))["truckId"].to_list() == ["A"]


def test_latest_is_by_causal_order_terminal_last_then_time_then_stream():
    events = parcel_types.encode(
        [
            ev(Delivered, 0, "dest-1"),  # terminal: last whatever its time
            ev(LoadedOntoTruck, 5, "LEW-1", stream="b"),
            ev(LoadedOntoTruck, 5, "LEW-2", stream="a"),
        ]
    )
    assert cl.latest(events).select("last_event", "last_event_timestamp", "truckId").row(0) == (
        "delivered",
        minutes(0),
        "LEW-1",
    )


def test_duplicates_last_or_first_processed():
    events = parcel_types.encode(
        [ev(LoadedOntoTruck, 5, "LEW-1", known=6), ev(LoadedOntoTruck, 5, "LEW-9", known=7)]
    )
    assert cl.latest(events)["truckId"].to_list() == ["LEW-9"]
    assert cl.latest(events)["events"].to_list() == [1]
    assert cl.latest(events, duplicates="first")["truckId"].to_list() == ["LEW-1"]
    with pytest.raises(SchemaError, match="'last' or 'first'"):
        cl.latest(events, duplicates="keep")


def test_a_loser_delivery_never_lends_its_parameters():
    # the overwrite of this identity has no truck: the earlier truck must come back
    frame = parcel_types.encode(
        [ev(LoadedOntoTruck, 1, "LEW-1"), ev(LoadedOntoTruck, 5, "LEW-2", known=6)]
    )
    overwrite = frame.tail(1).with_columns(
        name=pl.lit("deliveryFailed"),
        parameters=pl.lit("{}"),
        processing_timestamp=pl.lit(minutes(7)).dt.cast_time_unit("us"),
    )
    out = cl.latest(pl.concat([frame, overwrite]))
    assert out.select("last_event", "truckId").row(0) == ("deliveryFailed", "LEW-1")


def test_null_counts_as_absent_and_aggregate_types_stay_apart():
    frame = parcel_types.encode([ev(LoadedOntoTruck, 1, "LEW-1"), ev(LoadedOntoTruck, 2, "X")])
    frame = frame.with_columns(
        parameters=pl.when(pl.col("parameters").str.contains("X"))
        .then(pl.lit('{"truckId":null}'))
        .otherwise("parameters"),
    )
    robots = frame.with_columns(aggregate_type=pl.lit("robot"), parameters=pl.lit('{"arm":2}'))
    out = cl.latest(pl.concat([robots, frame]))
    assert out.select("aggregate_type", "aggregate_id", "arm", "truckId").rows() == [
        ("parcel", "p1", None, "LEW-1"),
        ("robot", "p1", 2, None),
    ]


def test_index_groups_aggregates_by_value():
    events = parcel_types.encode(
        [ev(ReceivedAtDepot, 0, "Lewisham", parcel=p) for p in ("p3", "p1", "p2")]
        + [ev(ReceivedAtDepot, 1, "Camden", parcel="p2")]
    )
    assert cl.index(events, "depotId").rows() == [("Camden", ["p2"]), ("Lewisham", ["p1", "p3"])]


def test_index_says_which_parameters_exist():
    events = parcel_types.encode([ev(LoadedOntoTruck, 0, "LEW-1"), ev(ReceivedAtDepot, 0, "A")])
    with pytest.raises(
        SchemaError,
        match=r"'truck'.*did you mean .truckId.\?\)\. Parameters seen: .depotId., "
        r"'truckId'",
    ):
        cl.index(events, "truck")
    with pytest.raises(SchemaError, match="parameter name"):
        cl.index(events, 3)


def test_empty_and_untouched():
    empty = cl.frame.empty()
    assert cl.latest(empty).height == 0
    events = parcel_types.encode([ev(LoadedOntoTruck, 0, "LEW-1")])
    before = events.clone()
    cl.latest(events, at=minutes(1))
    cl.index(events, "truckId")
    assert events.equals(before)


# ----------------------------------------------------------------------------- properties


def reference(frame: pl.DataFrame, at, known_at, duplicates) -> list[tuple]:
    rows = [
        (i, r)
        for i, r in enumerate(frame.iter_rows(named=True))
        if (known_at is None or r["processing_timestamp"] <= known_at)
        and (at is None or r["event_timestamp"] < at)
    ]
    chosen: dict = {}
    for i, r in sorted(rows, key=lambda ir: (ir[1]["processing_timestamp"], ir[0])):
        key = (r["aggregate_type"], r["aggregate_id"], r["event_timestamp"], r["stream_id"])
        if duplicates == "last" or key not in chosen:
            chosen[key] = (i, r)
    by_aggregate: dict = {}
    for _, r in chosen.values():
        rank = {1: 0, 0: 1, 2: 2}[r["characteristics"]]
        key = (rank, r["event_timestamp"], r["stream_id"])
        by_aggregate.setdefault((r["aggregate_type"], r["aggregate_id"]), []).append((key, r))
    out = []
    for aggregate, items in sorted(by_aggregate.items()):
        items.sort(key=lambda item: item[0])
        values: dict = {}
        for _, r in items:
            values.update({k: v for k, v in json.loads(r["parameters"]).items() if v is not None})
        last = items[-1][1]
        out.append(
            (
                *aggregate,
                last["name"],
                last["event_timestamp"],
                len(items),
                tuple(sorted(values.items())),
            )
        )
    return out


def _rows(latest: pl.DataFrame) -> list[tuple]:
    fixed = ["aggregate_type", "aggregate_id", "last_event", "last_event_timestamp", "events"]
    params = [c for c in latest.columns if c not in fixed]
    return [
        (*(r[c] for c in fixed), tuple(sorted((k, r[k]) for k in params if r[k] is not None)))
        for r in latest.iter_rows(named=True)
    ]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=histories(), at=TIMES, known_at=TIMES, duplicates=st.sampled_from(["last", "first"]))
def test_latest_agrees_with_a_plain_replay(frame, at, known_at, duplicates):
    out = cl.latest(frame, at=at, known_at=known_at, duplicates=duplicates)
    assert _rows(out) == reference(frame, at, known_at, duplicates)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=histories(), at=TIMES, data=st.data())
def test_latest_and_index_do_not_depend_on_row_order(frame, at, data):
    shuffled = frame[list(data.draw(st.permutations(list(range(frame.height)))))]
    assert cl.latest(frame, at=at).equals(cl.latest(shuffled, at=at))
    if "wattage" in cl.latest(frame).columns:
        assert cl.index(frame, "wattage").equals(cl.index(shuffled, "wattage"))


def test_latest_answers_what_a_last_value_fold_answers():
    """The vectorised path and state_at agree on the sample data."""
    events = cl.sample.parcels(300, seed=7)

    def last_values(state, event):
        values = dict(state or {})
        values.update(
            {k: v for k, v in vars(event).items() if k in ("depotId", "truckId", "destinationId")}
        )
        return values

    folded = cl.state_at(
        events, last_values, types=parcel_types, at="2026-03-08", known_at="2026-03-09"
    )
    fast = cl.latest(events, at="2026-03-08", known_at="2026-03-09")
    assert fast["aggregate_id"].to_list() == folded.frame["aggregate_id"].to_list()
    for row in fast.iter_rows(named=True):
        state = folded.states[row["aggregate_id"]]
        assert {k: row[k] for k in state} == state
    assert bulbs.aggregate_type == "lightbulb"  # the shared strategy's types


def test_parameter_texts_sharing_a_hash_are_still_told_apart(monkeypatch):
    from concursus_lab.timetravel import latest as _latest

    events = cl.sample.parcels(60, seed=4)
    expected = cl.latest(events)
    real_hash = pl.Series.hash

    def colliding(series, seed=0, *args, **kwargs):  # every text shares the first hash
        hashed = real_hash(series, seed, *args, **kwargs)
        return hashed * 0 if seed == 17 else hashed

    monkeypatch.setattr(pl.Series, "hash", colliding)
    code, texts = _latest._text_codes(events["parameters"])
    assert [texts[int(c)] for c in code] == events["parameters"].to_list()
    assert texts.n_unique() == texts.len()
    assert cl.latest(events).equals(expected)
