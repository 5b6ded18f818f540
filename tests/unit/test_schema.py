"""The canonical event frame: validation names every problem; pandas keeps microseconds."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import polars as pl
import pytest

import concursus_lab as cl
from concursus_lab.exceptions import SchemaError
from concursus_lab.frame.schema import for_writing
from tests.contract import event, frame


def good() -> pl.DataFrame:
    return frame(event("p1", 1, 2), event("p2", 3, 4, stream_id="driver-app"))


def test_schema_is_the_design_table_in_order():
    assert list(cl.SCHEMA) == [
        "aggregate_type",
        "aggregate_id",
        "event_timestamp",
        "stream_id",
        "processing_id",
        "processing_timestamp",
        "name",
        "version",
        "parameters",
        "characteristics",
    ]
    assert cl.SCHEMA["event_timestamp"] == pl.Datetime("us", "UTC")
    assert cl.SCHEMA["characteristics"] == pl.Int32
    assert cl.frame.empty().schema == cl.SCHEMA


def test_validate_returns_canonical_column_order_and_keeps_extras():
    shuffled = (
        good()
        .with_columns(pl.lit(1).alias("kafka_partition"))
        .select("kafka_partition", *reversed(cl.SCHEMA.names()))
    )
    out = cl.frame.validate(shuffled)
    assert out.columns == [*cl.SCHEMA.names(), "kafka_partition"]
    assert cl.frame.validate(good()) is not None


def test_every_problem_is_named_at_once():
    bad = (
        good()
        .with_columns(
            pl.col("event_timestamp").dt.replace_time_zone(None),
            pl.col("characteristics").cast(pl.Int64),
        )
        .drop("version")
    )
    with pytest.raises(SchemaError) as info:
        cl.frame.validate(bad)
    message = str(info.value)
    assert "`version` is missing" in message
    assert "`event_timestamp` holds naive timestamps" in message
    assert "replace_time_zone('UTC')" in message
    assert "`characteristics` is Int64; expected Int32" in message


def test_epoch_numbers_are_read_in_the_unit_said_never_as_1970():
    """An int `at` is epoch milliseconds of this century, or an error that names the unit and
    how to say the time; an int `event_timestamp` column gets the hint that says its unit."""
    from concursus_lab.common.time import to_utc

    utc = dt.UTC
    with pytest.raises(SchemaError) as info:
        cl.state_at(good(), lambda s, e: s, types=cl.EventTypes("parcel"), at=1714730000)
    message = str(info.value)
    assert "`at` is the integer 1714730000, taken as epoch milliseconds: 1970-01-20" in message
    assert "as epoch seconds it is 2024-05-03 09:53:20 UTC" in message
    assert "at='2024-05-03 09:53:20'" in message and "at=1714730000000" in message
    for value in (0, 1714730000 * 10**6, -5):  # 1970, epoch microseconds, before 1970
        with pytest.raises(SchemaError, match="epoch milliseconds"):
            to_utc(value, "known_at")
    assert to_utc(1714730000000, "at") == dt.datetime(2024, 5, 3, 9, 53, 20, tzinfo=utc)
    seconds = good().with_columns(
        pl.Series("event_timestamp", [1714730000, 1714730060], dtype=pl.Int64)
    )
    with pytest.raises(SchemaError) as info:
        cl.frame.validate(seconds)
    hint = str(info.value)
    fix = "pl.from_epoch('event_timestamp', time_unit='s')"
    assert fix in hint and "cast(pl.Datetime" not in hint
    assert "1714730000 read as epoch seconds is 2024-05-03 09:53:20 UTC" in hint
    fixed = cl.frame.validate(
        seconds.with_columns(
            pl.from_epoch("event_timestamp", time_unit="s")
            .dt.replace_time_zone("UTC")
            .dt.cast_time_unit("us")
        )
    )
    assert fixed["event_timestamp"].to_list()[0] == dt.datetime(2024, 5, 3, 9, 53, 20, tzinfo=utc)


def test_values_are_checked():
    bad = good().with_columns(
        pl.Series("parameters", ['{"a":1}', "[1, 2]"]),
        pl.Series("characteristics", [0, 7], dtype=pl.Int32),
        pl.Series("aggregate_id", ["", "p2"]),
    )
    with pytest.raises(SchemaError) as info:
        cl.frame.validate(bad)
    message = str(info.value)
    assert "row 1: '[1, 2]' (a JSON array, not an object)" in message
    assert "first at row 1: 7" in message
    assert "`aggregate_id` has 1 empty value(s), first at row 0" in message


def test_not_json_is_reported_with_its_row():
    bad = good().with_columns(pl.Series("parameters", ['{"a":1}', '{"a":']))
    with pytest.raises(SchemaError, match=r"row 1: '\{\"a\":' \(not valid JSON"):
        cl.frame.validate(bad)


def test_nulls_only_where_allowed():
    ok = good().with_columns(pl.lit(None, pl.String).alias("processing_id"))
    cl.frame.validate(ok)
    bad = good().with_columns(pl.lit(None, pl.String).alias("name"))
    with pytest.raises(SchemaError, match="`name` has 2 null"):
        cl.frame.validate(bad)


def test_a_near_column_name_is_suggested():
    with pytest.raises(SchemaError, match="did you mean to rename 'aggregateId'"):
        cl.frame.validate(good().rename({"aggregate_id": "aggregateId"}))


def test_pandas_round_trip_keeps_microseconds_and_utc():
    original = good()
    df = cl.frame.to_pandas(original)
    assert str(df["event_timestamp"].dtype) == "datetime64[us, UTC]"
    assert str(df["processing_timestamp"].dtype) == "datetime64[us, UTC]"
    assert cl.from_pandas(df).equals(original)


def test_from_pandas_converts_units_and_zones_but_refuses_naive_times():
    df = cl.frame.to_pandas(good())
    df["event_timestamp"] = (
        df["event_timestamp"].dt.tz_convert("Europe/London").astype("datetime64[ns, Europe/London]")
    )
    back = cl.from_pandas(df)
    assert back.schema == cl.SCHEMA
    assert back["event_timestamp"].to_list() == good()["event_timestamp"].to_list()
    naive = cl.frame.to_pandas(good())
    naive["event_timestamp"] = naive["event_timestamp"].dt.tz_localize(None)
    with pytest.raises(SchemaError, match="naive"):
        cl.from_pandas(naive)


def test_a_pandas_frame_given_to_validate_gets_a_hint():
    with pytest.raises(SchemaError, match=r"cl\.from_pandas"):
        cl.frame.validate(pd.DataFrame({"a": [1]}))


def test_times_people_type_are_read_as_utc():
    from concursus_lab.common.time import time_range, to_utc

    utc = dt.UTC
    assert to_utc("2026-03-02", "at") == dt.datetime(2026, 3, 2, tzinfo=utc)
    assert to_utc("2026-03-02T01:00:00Z", "at") == dt.datetime(2026, 3, 2, 1, tzinfo=utc)
    assert to_utc(dt.date(2026, 3, 2), "at") == dt.datetime(2026, 3, 2, tzinfo=utc)
    assert to_utc(1459420277981, "at") == dt.datetime(2016, 3, 31, 10, 31, 17, 981000, tzinfo=utc)
    assert to_utc(pd.Timestamp("2026-03-02 01:00", tz="Europe/Paris"), "at").hour == 0
    with pytest.raises(SchemaError, match="`at` must be a time; 'yesterday'"):
        to_utc("yesterday", "at")
    with pytest.raises(SchemaError, match="ends before it starts"):
        time_range(("2026-03-03", "2026-03-02"))
    with pytest.raises(SchemaError, match=r"\(start, end\) pair"):
        time_range("2026-03-03")


@pytest.mark.parametrize(
    "number",
    ["1e400", "-1e400", "1.7976931348623159e308", "1E+309", "9" * 400, "-" + "9" * 309 + ".5"],
)
def test_a_number_no_reader_can_read_back_is_refused_naming_it(number):
    # beyond a double (about 1.8e308): Kafka's and Redis's readers, Java's Jackson and Spark
    # read it as infinity or not at all, so every read would quarantine it (issue 28.8)
    bad = good().with_columns(pl.Series("parameters", ['{"a":1}', f'{{"x":[{number}]}}']))
    with pytest.raises(SchemaError) as info:
        cl.frame.validate(bad)
    message = str(info.value)
    assert "row 1: " in message
    assert f"the number {number[:20]}" in message
    assert "beyond what a double holds" in message
    assert f'"{number[:20]}' in message  # what to write instead: the number as a string
    with pytest.raises(SchemaError, match="beyond what a double holds"):
        for_writing(bad)


@pytest.mark.parametrize(
    "number", ["1.7976931348623157e308", "-1.7976931348623157e308", "1e-400", "4.9e-324"]
)
def test_numbers_within_a_double_s_range_are_written_as_they_are(number):
    ok = good().with_columns(pl.Series("parameters", ['{"a":1}', f'{{"x":{number}}}']))
    assert for_writing(ok)["parameters"][1] == f'{{"x":{number}}}'
