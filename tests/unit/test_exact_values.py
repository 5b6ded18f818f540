"""Issue 15, items 1, 2, 8 and 11 (values): nothing a writer or reader does changes a value.

Parameters keep every number's exact text (integers beyond 64 bits, decimals a double cannot
hold), nesting beyond what can be written back is refused on write with a SchemaError naming
the row, times outside years 1-9999 are refused, and typed events write instants and dates
as Java Concursus's Jackson does.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import typing
from decimal import Decimal

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import concursus_lab as cl
from concursus_lab.exceptions import SchemaError
from concursus_lab.frame.canonical_json import MAX_DEPTH, NotCanonical, canonical, dumps, loads
from concursus_lab.frame.schema import for_writing, validate

ACCOUNT = "123456789012345678901234567890"
AS_GIVEN = '{"account": ' + ACCOUNT + "}"
AS_WRITTEN = '{"account":' + ACCOUNT + "}"


def frame_with(parameters: list[str]) -> pl.DataFrame:
    base = cl.sample.fixture("messy").head(len(parameters))
    return base.with_columns(parameters=pl.Series(parameters))


def nested(depth: int) -> str:
    """A parameters object whose value nests ``depth`` levels in all (the object counts)."""
    return '{"a":' + "[" * (depth - 1) + "]" * (depth - 1) + "}"


@pytest.mark.parametrize(
    "text, written",
    [
        (AS_GIVEN, AS_WRITTEN),
        ('{"n": 18446744073709551616}', '{"n":18446744073709551616}'),
        ('{"n": -9223372036854775809}', '{"n":-9223372036854775809}'),
        ('{"x": 0.10000000000000000555111512}', '{"x":0.10000000000000000555111512}'),
        ('{"t": 1459420277.981000000}', '{"t":1459420277.981000000}'),
        ('{"b": 1.10, "a": [1E2, -0, -0.0]}', '{"a":[1E2,-0,-0.0],"b":1.10}'),
        ('{"s": "1.10 and 12345678901234567890"}', '{"s":"1.10 and 12345678901234567890"}'),
    ],
)
def test_numbers_keep_their_exact_text_when_written(text, written):
    assert canonical(text) == written
    assert for_writing(frame_with([text]))["parameters"].to_list() == [written]


def test_an_appended_account_number_reads_back_with_every_digit(tmp_path):
    store = cl.open(tmp_path / "store", create=True)
    store.append(frame_with([AS_GIVEN]))
    text = store.events()["parameters"].item()
    assert text == AS_WRITTEN
    assert loads(text)["account"] == int(ACCOUNT)


def test_a_typed_event_decodes_an_integer_beyond_64_bits_exactly():
    types = cl.EventTypes("account")

    @types.initial
    class Opened:
        account: int

    frame = frame_with([AS_GIVEN]).with_columns(
        aggregate_type=pl.lit("account"), name=pl.lit("opened"), version=pl.lit("0")
    )
    decoded = types.decode(frame)
    assert decoded.undecodable.height == 0
    assert decoded.events[0].account == int(ACCOUNT)
    assert types.encode(decoded.events)["parameters"].item() == AS_WRITTEN


def test_nesting_the_writer_cannot_write_back_is_refused_naming_the_row():
    assert canonical(nested(MAX_DEPTH)).startswith('{"a":[[')
    for depth in (MAX_DEPTH + 1, 300, 2000):
        with pytest.raises(NotCanonical, match=f"nested deeper than {MAX_DEPTH} levels"):
            canonical(nested(depth))
    bad = frame_with(['{"ok": 1}', nested(300)])
    with pytest.raises(SchemaError, match=r"row 1: .*nested deeper than 254 levels"):
        validate(bad)
    with pytest.raises(SchemaError, match=r"row 1: .*nested deeper than 254 levels"):
        for_writing(bad)


def test_an_append_of_too_deep_parameters_writes_nothing(tmp_path):
    store = cl.open(tmp_path / "store", create=True)
    with pytest.raises(SchemaError):
        store.append(frame_with(['{"ok": 1}', nested(400)]))
    assert store.events().height == 0


def test_times_outside_years_1_to_9999_are_refused():
    frame = frame_with(['{"a": 1}', '{"a": 2}'])
    late = frame.with_columns(
        event_timestamp=pl.when(pl.int_range(pl.len()) == 1)
        .then(pl.lit(dt.datetime(9999, 12, 31, 23, 59, 59, 999999)).dt.replace_time_zone("UTC"))
        .otherwise(pl.col("event_timestamp"))
    )
    assert validate(late).height == 2  # the last instant Python can hold is fine
    beyond = late.with_columns(pl.col("event_timestamp").dt.offset_by("1us"))
    outside = r"`event_timestamp` has 1 time\(s\) outside years 1 to 9999, first at row 1: \+10000"
    with pytest.raises(SchemaError, match=outside):
        validate(beyond)


def test_instants_and_dates_are_written_as_java_concursus_writes_them():
    # Jackson's JavaTimeModule with WRITE_DATES_AS_TIMESTAMPS (Concursus's setting) writes an
    # Instant as seconds.nanoseconds and a LocalDate as [year, month, day]
    types = cl.EventTypes("person")

    @types.initial
    class Born:
        at: dt.datetime
        on: dt.date
        before: typing.Optional[dt.datetime] = None  # noqa: UP045 - the typing spelling too

    born = Born(
        dt.datetime(2016, 3, 31, 10, 31, 17, 981000, tzinfo=dt.UTC),
        dt.date(1968, 5, 28),
        dt.datetime(1969, 12, 31, 23, 59, 59, 500001, tzinfo=dt.UTC),
        aggregate_id="p1",
        event_timestamp="2026-03-01",
    )
    frame = types.encode([born])
    assert frame["parameters"].item() == (
        '{"at":1459420277.981000000,"before":-0.499999000,"on":[1968,5,28]}'
    )
    again = types.decode(frame).events[0]
    assert (again.at, again.on, again.before) == (born.at, born.on, born.before)


def test_dumps_writes_big_integers_and_refuses_too_deep_values():
    assert dumps({"b": 2**80, "a": [True, None, 2**64 - 1]}) == (
        '{"a":[true,null,18446744073709551615],"b":1208925819614629174706176}'
    )
    value: list = []
    for _ in range(MAX_DEPTH):
        value = [value]
    with pytest.raises(NotCanonical, match="nested deeper"):
        dumps({"a": value})


# -- the readers and the Cassandra writer (codecs, no server needed) ------------------------

KAFKA_EVENT = (
    '{"aggregateType":"account","aggregateId":"%s","name":"opened","version":"0",'
    '"eventTimestamp":1459420277981,"streamId":"","processingId":"","characteristics":1,'
    '"parameters":%s}'
)
EXACT = '{"n":' + ACCOUNT + ',"s":"x","t":1459420277.981000000,"w":0.10}'


def test_the_kafka_reader_keeps_every_number_and_quarantines_what_nests_too_deeply():
    from concursus_lab.sources.concursus_json import decode

    plain = (KAFKA_EVENT % ("a1", EXACT)).encode()
    deep = (KAFKA_EVENT % ("a2", nested(300))).encode()
    pair = b"[" + plain + b"," + plain.replace(b'"a1"', b'"a3"') + b"]"
    events, bad = decode([plain, deep, pair], [1, 2, 3])
    assert events.select("record", "aggregate_id", "parameters").rows() == [
        (0, "a1", EXACT),
        (2, "a1", EXACT),
        (2, "a3", EXACT),
    ]
    too_deep = "`parameters` is nested deeper than 254 levels of objects and arrays"
    assert bad.rows() == [(1, too_deep)]


def test_the_cassandra_reader_and_writer_keep_every_number():
    from concursus_lab.sources.cassandra.parameters import encode_parameters, parameters_json
    from tests.unit.test_cassandra_codec import cell_map

    stored = encode_parameters([EXACT])
    assert stored == [
        {"n": ACCOUNT, "s": '"x"', "t": "1459420277.981000000", "w": "0.10"}
    ]  # each value's own JSON text, as Java Concursus stores it
    deep = {"d": "[" * 300 + "]" * 300}
    texts, bad = parameters_json([cell_map(stored[0]), cell_map(deep)])
    assert texts.to_list() == [EXACT, "{}"]
    assert bad == {1: "parameters are nested deeper than 254 levels of objects and arrays"}


# -- issue 28, item 8: nothing is written that a reader cannot read back ----------------------


NO_JSON = "has no JSON form"
BEYOND = "beyond what a double holds"


@pytest.mark.parametrize(
    "value, shown, why",
    [
        (float("inf"), "inf", NO_JSON),  # orjson writes inf and nan as null: a value lost
        (float("-inf"), "-inf", NO_JSON),
        (float("nan"), "nan", NO_JSON),
        ({"deep": [1, float("inf")]}, "inf", NO_JSON),
        (10**400, "1000000000", BEYOND),
        (Decimal("1E+400"), r"1E\+400", BEYOND),
        (Decimal("NaN"), "NaN", NO_JSON),
    ],
)
def test_dumps_refuses_numbers_no_reader_reads_back(value, shown, why):
    with pytest.raises(NotCanonical, match=f"not writable: the number {shown}.*{why}"):
        dumps({"x": value})


def test_dumps_writes_decimals_exactly_and_names_what_json_cannot_hold():
    assert dumps({"x": [Decimal("1.10"), Decimal("-0"), Decimal("1E+2")]}) == '{"x":[1.10,-0,1E+2]}'
    with pytest.raises(NotCanonical, match=r"not writable: .*set"):
        dumps({"x": {1, 2}})


def test_a_typed_event_with_a_number_no_reader_reads_back_is_refused():
    types = cl.EventTypes("meter")

    @types.initial
    class Read:
        value: float
        extra: typing.Any = None

    for bad in (Read(float("inf")), Read(1.0, extra={"n": float("nan")}), Read(1.0, 10**400)):
        bad = dataclasses.replace(bad, aggregate_id="m1", event_timestamp="2026-03-01")
        with pytest.raises(SchemaError, match=f"not writable: the number .*({NO_JSON}|{BEYOND})"):
            types.encode([bad])


ONE_ROW = frame_with(["{}"])


def cell_map(pairs: dict[str, str]) -> bytes:
    """A ``map<text, text>`` cell as Cassandra serialises it (protocol v5)."""
    from cassandra.cqltypes import MapType, UTF8Type

    return MapType.apply_parameters([UTF8Type, UTF8Type]).serialize(pairs, 5)


NUMBERS = st.one_of(
    st.integers(-(10**320), 10**320).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.builds(
        lambda m, e: f"{m}e{e}",
        st.integers(-(10**20), 10**20),
        st.integers(-420, 420),
    ),
)


@settings(max_examples=300, deadline=None)
@given(numbers=st.lists(NUMBERS, min_size=1, max_size=4))
def test_what_validate_lets_through_every_reader_reads_back_unchanged(numbers):
    from concursus_lab.sources.cassandra.parameters import encode_parameters, parameters_json
    from concursus_lab.sources.concursus_json import decode
    from concursus_lab.sources.concursus_json_write import encode

    text = '{"n":[' + ",".join(numbers) + "]}"
    try:
        written = for_writing(ONE_ROW.with_columns(parameters=pl.lit(text)))
    except SchemaError:
        return  # refused before anything is written: fine
    expected = written["parameters"].to_list()
    for layout in ("flat", "nested"):
        events, bad = decode(encode(written, layout).to_list(), [0])
        assert bad.height == 0, bad.rows()
        assert events["parameters"].to_list() == expected
    texts, bad = parameters_json([cell_map(encode_parameters(expected)[0])])
    assert bad == {}
    assert texts.to_list() == expected


# -- issue 28, item 13: instants and dates as Java writes them, wherever they are -------------

INSTANT = dt.datetime(2016, 3, 31, 10, 31, 17, 981000, tzinfo=dt.UTC)
JAVA_INSTANT = "1459420277.981000000"


def test_instants_and_dates_inside_lists_and_objects_are_written_as_java_writes_them():
    types = cl.EventTypes("trip")

    @types.initial
    class Planned:
        stops: list[dt.datetime]
        days: list[dt.date]
        legs: dict
        note: typing.Any

    planned = Planned(
        [INSTANT, INSTANT.astimezone(dt.timezone(dt.timedelta(hours=2)))],
        [dt.date(1968, 5, 28)],
        {"first": INSTANT, "on": dt.date(1968, 5, 28)},
        [{"at": INSTANT}],
        aggregate_id="t1",
        event_timestamp="2026-03-01",
    )
    text = types.encode([planned])["parameters"].item()
    assert text == (
        f'{{"days":[[1968,5,28]],"legs":{{"first":{JAVA_INSTANT},"on":[1968,5,28]}},'
        f'"note":[{{"at":{JAVA_INSTANT}}}],"stops":[{JAVA_INSTANT},{JAVA_INSTANT}]}}'
    )
    assert "+00:00" not in text and "1968-05-28" not in text
    again = types.decode(types.encode([planned])).events[0]
    assert again.stops == [INSTANT, INSTANT] and again.days == [dt.date(1968, 5, 28)]


def test_dumps_writes_any_instant_as_seconds_with_nanoseconds():
    paris = dt.timezone(dt.timedelta(hours=2))
    assert dumps({"t": INSTANT.astimezone(paris)}) == f'{{"t":{JAVA_INSTANT}}}'
    assert dumps({"t": INSTANT.replace(tzinfo=None)}) == f'{{"t":{JAVA_INSTANT}}}'  # naive: UTC
    assert dumps({"t": dt.datetime(1969, 12, 31, 23, 59, 59, 1, tzinfo=dt.UTC)}) == (
        '{"t":-0.999999000}'
    )
    assert dumps({"d": dt.date(1, 1, 1)}) == '{"d":[1,1,1]}'


@pytest.mark.parametrize(
    "written",
    [
        f'{{"at":{JAVA_INSTANT},"ats":[{JAVA_INSTANT}],"on":[1968,5,28]}}',
        '{"at":"2016-03-31T10:31:17.981000+00:00","ats":["2016-03-31T10:31:17.981Z"],'
        '"on":"1968-05-28"}',
    ],
)
def test_reading_takes_instants_and_dates_in_either_form(written):
    types = cl.EventTypes("person")

    @types.initial
    class Seen:
        at: dt.datetime
        ats: list[dt.datetime]
        on: dt.date

    frame = frame_with([written]).with_columns(
        aggregate_type=pl.lit("person"), name=pl.lit("seen"), version=pl.lit("0")
    )
    decoded = types.decode(frame)
    assert decoded.undecodable.height == 0
    seen = decoded.events[0]
    assert (seen.at, seen.ats, seen.on) == (INSTANT, [INSTANT], dt.date(1968, 5, 28))


def test_a_column_of_repeated_texts_is_made_canonical_as_row_by_row():
    """canonical_column makes each distinct text canonical once (a history repeats its small
    parameter objects); every row's text and reason equal the row-by-row way, nulls kept."""
    from concursus_lab.frame import canonical_json

    texts = [
        '{"b": 1, "a": 2}',
        "[1]",
        None,
        '{"x": 1.50, "big": 123456789012345678901}',
        "not json",
        '{"a": -0.0}',
        '{"b":1,"a":2}',
    ]
    column = pl.Series("parameters", [texts[i % 7] for i in range(7 * 9)] + ['{"z": 0}'])
    out, why = canonical_json.canonical_column(column)
    rows_out, rows_why = canonical_json._canonical_rows(column)
    assert len(column.unique()) <= canonical_json._REPEATED * len(column)  # the distinct way
    assert out.equals(rows_out) and why.equals(rows_why)
    assert (out.name, why.name) == ("parameters", "reason")
    assert out[3] == '{"big":123456789012345678901,"x":1.50}' and out[2] is None
    refused = column.is_in(["[1]", "not json"]).fill_null(False)
    assert why.is_not_null().to_list() == refused.to_list()  # and a null text has no reason
