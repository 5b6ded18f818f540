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


# ------------------------------------------------------- values keep their JSON kind (issue 28)


def _one_each(*parameters: str) -> pl.DataFrame:
    """One aggregate per parameters text (p0, p1, ...), one event each."""
    from tests.contract import event, frame

    return frame(*[event(f"p{i}", 10, 20, parameters=p) for i, p in enumerate(parameters)])


@pytest.mark.parametrize(
    ("values", "shown"),
    [
        # an object and a string that prints like one: two values, each its JSON text
        (['{"a":1}', '"{1}"'], ['{"a":1}', '"{1}"']),
        (['{"a":1}', '"{\\"a\\":1}"'], ['{"a":1}', '"{\\"a\\":1}"']),
        # an integer, a float and a string of the same digits: three values
        (["1", "1.0", '"1"'], ["1", "1.0", '"1"']),
        # a string that holds a list's text, beside a list
        (['"[1, 2]"', "[1,2]"], ['"[1, 2]"', "[1,2]"]),
        # objects and scalars together (polars' decoder panicked on these)
        (['{"a":1}', "1", "true"], ['{"a":1}', "1", "true"]),
        # a big integer keeps every digit, whatever the other rows hold
        (["12345678901234567890123", "1"], ["12345678901234567890123", "1"]),
        (["12345678901234567890123", '"x"'], ["12345678901234567890123", '"x"']),
        (["12345678901234567890123", "1.5"], ["12345678901234567890123", "1.5"]),
        # numbers keep the text they were written with inside objects and arrays
        (['{"n":1.10,"m":-0}', "[1e5]"], ['{"m":-0,"n":1.10}', "[1e5]"]),
    ],
)
def test_values_of_different_json_kinds_are_never_merged(values, shown):
    events = _one_each(*(f'{{"v":{v}}}' for v in values))
    out = cl.latest(events)
    assert out.schema["v"] == pl.String
    assert out["v"].to_list() == shown
    by_value = cl.index(events, "v")
    assert by_value.schema["value"] == pl.String
    assert sorted(by_value.rows()) == sorted((s, [f"p{i}"]) for i, s in enumerate(shown))


@pytest.mark.parametrize(
    ("values", "dtype", "shown"),
    [
        (['"[1, 2]"', '"x"'], pl.String, ["[1, 2]", "x"]),  # strings stay strings
        (['"{1}"', '"\\u00e9\\n"'], pl.String, ["{1}", "é\n"]),
        (["1", "-7", "9223372036854775807"], pl.Int64, [1, -7, 2**63 - 1]),
        (["1.0", "2.5e3", "0.10"], pl.Float64, [1.0, 2500.0, 0.1]),
        (["true", "false"], pl.Boolean, [True, False]),
    ],
)
def test_values_of_one_scalar_kind_have_that_kind_s_dtype(values, dtype, shown):
    events = _one_each(*(f'{{"v":{v}}}' for v in values))
    out = cl.latest(events)
    assert out.schema["v"] == dtype
    assert out["v"].to_list() == shown
    assert cl.index(events, "v").schema["value"] == dtype


def test_an_integer_beyond_64_bits_alone_is_its_exact_text():
    events = _one_each('{"v":18446744073709551615}', '{"v":-9223372036854775809}')
    assert cl.latest(events)["v"].to_list() == ["18446744073709551615", "-9223372036854775809"]


def test_the_kind_of_a_column_follows_the_values_it_shows():
    # the string "1" lost to a later integer: the column shows integers only
    events = _one_each('{"v":"1"}', '{"v":2}')
    later = _one_each('{"v":3}').with_columns(
        event_timestamp=pl.col("event_timestamp") + pl.duration(seconds=1)
    )
    out = cl.latest(pl.concat([events, later]))
    assert out.schema["v"] == pl.Int64
    assert out["v"].to_list() == [3, 2]
    assert cl.latest(events)["v"].to_list() == ['"1"', "2"]  # both shown: JSON texts


def test_a_parameter_that_is_only_ever_null_is_a_string_column_of_nulls():
    out = cl.latest(_one_each('{"v":null}', '{"w":1}'))
    assert out.schema["v"] == pl.String and out["v"].to_list() == [None, None]
