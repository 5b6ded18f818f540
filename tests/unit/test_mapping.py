"""cl.Mapping: a user's own frames onto the canonical frame, with nothing guessed or dropped."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import polars as pl
import pytest

import concursus_lab as cl
from concursus_lab.exceptions import SchemaError
from concursus_lab.mapping import Mapping, Plan

UTC = dt.UTC


def orders() -> pl.DataFrame:
    """A team's export: minute-grained times, no sequence, nothing Concursus about it."""
    return pl.DataFrame(
        {
            "order_id": ["o1", "o1", "o2", "o1"],
            "event_type": ["created", "paid", "created", "shipped"],
            "occurred_at": [
                "2026-03-01T10:00:00Z",
                "2026-03-01T10:00:00Z",
                "2026-03-01T11:00:00+01:00",
                "2026-03-02T09:30:00Z",
            ],
            "ingested_at": [
                "2026-03-01T10:01:00Z",
                "2026-03-01T10:02:00Z",
                "2026-03-01T10:00:30Z",
                "2026-03-02T09:31:00Z",
            ],
            "amount": [12.5, 12.5, 3.0, None],
            "sku": ["A-1", "A-1", "B-2", "A-1"],
        }
    )


ORDERS = dict(
    aggregate_type="order",
    aggregate_id="order_id",
    name="event_type",
    event_time="occurred_at",
    processing_time="ingested_at",
    initial=["created"],
    terminal=["shipped"],
)


def test_a_frame_of_orders_maps_in_one_call():
    events = cl.from_polars(orders(), cl.Mapping(**ORDERS))
    assert events.columns[:10] == list(cl.SCHEMA)
    assert events.select(list(cl.SCHEMA)).schema == cl.SCHEMA
    assert events["aggregate_type"].unique().to_list() == ["order"]
    assert events["name"].to_list() == ["created", "paid", "created", "shipped"]
    assert events["characteristics"].to_list() == [1, 0, 1, 2]
    assert events["parameters"].to_list() == [
        '{"amount":12.5,"sku":"A-1"}',
        '{"amount":12.5,"sku":"A-1"}',
        '{"amount":3.0,"sku":"B-2"}',
        '{"sku":"A-1"}',  # a null column is no parameter of that event
    ]
    # an offset is honoured: 11:00+01:00 is 10:00 UTC
    assert events["event_timestamp"][2] == dt.datetime(2026, 3, 1, 10, tzinfo=UTC)
    assert events["processing_timestamp"][1] == dt.datetime(2026, 3, 1, 10, 2, tzinfo=UTC)
    assert events["version"].unique().to_list() == ["0"]
    assert events["stream_id"].unique().to_list() == [""]
    assert events["processing_id"].null_count() == 4


def test_without_a_sequence_or_id_two_events_of_one_minute_stay_two():
    events = cl.from_polars(orders(), cl.Mapping(**ORDERS))
    created, paid = events.row(0, named=True), events.row(1, named=True)
    # Concursus's key is the same for both ...
    assert [created[c] for c in cl.IDENTITY] == [paid[c] for c in cl.IDENTITY]
    # ... so the mapping identifies them by their content too
    assert created["event_id"].startswith("~") and created["event_id"] != paid["event_id"]
    again = cl.from_polars(orders(), cl.Mapping(**ORDERS))
    assert again["event_id"].to_list() == events["event_id"].to_list()  # stable


def test_a_named_sequence_is_the_identity_and_an_integer():
    data = orders().with_columns(seq=pl.Series([1, 2, 1, 3]))
    events = cl.from_polars(data, cl.Mapping(**ORDERS, sequence="seq"))
    assert events["sequence"].to_list() == [1, 2, 1, 3]
    assert events["sequence"].dtype == pl.Int64
    assert "event_id" not in events.columns
    assert "seq" not in events["parameters"][0]  # what identifies is no parameter


def test_a_named_event_id_is_the_identity():
    data = orders().with_columns(id=pl.Series(["e1", "e2", "e3", "e4"]))
    events = cl.from_polars(data, cl.Mapping(**ORDERS, event_id="id"))
    assert events["event_id"].to_list() == ["e1", "e2", "e3", "e4"]


def test_epoch_numbers_need_their_unit_said():
    data = pl.DataFrame({"user": ["u1"], "kind": ["signedUp"], "ts": [1714730000]})
    fields = dict(aggregate_type="user", aggregate_id="user", name="kind", event_time="ts")
    with pytest.raises(SchemaError, match="time_unit='s'"):
        cl.from_polars(data, cl.Mapping(**fields))
    seconds = cl.from_polars(data, cl.Mapping(**fields, time_unit="s"))
    assert seconds["event_timestamp"].item() == dt.datetime(2024, 5, 3, 9, 53, 20, tzinfo=UTC)
    millis = cl.from_polars(
        data.with_columns(pl.col("ts") * 1000 + 5), cl.Mapping(**fields, time_unit="ms")
    )
    assert millis["event_timestamp"].item() == dt.datetime(2024, 5, 3, 9, 53, 20, 5000, tzinfo=UTC)


def test_epoch_numbers_in_text_need_their_unit_said_too():
    data = pl.DataFrame({"user": ["u1"], "kind": ["signedUp"], "ts": ["1714730000.5"]})
    fields = dict(aggregate_type="user", aggregate_id="user", name="kind", event_time="ts")
    with pytest.raises(SchemaError, match=r"are numbers \('1714730000.5'\).*time_unit"):
        cl.from_polars(data, cl.Mapping(**fields))
    read = cl.from_polars(data, cl.Mapping(**fields, time_unit="s"))
    assert read["event_timestamp"].item() == dt.datetime(2024, 5, 3, 9, 53, 20, 500000, tzinfo=UTC)


def test_naive_times_need_their_zone_said():
    data = orders().with_columns(
        pl.col("occurred_at").str.replace("Z|\\+01:00", "").str.replace("T", " ")
    )
    with pytest.raises(SchemaError, match=r"have no time zone \('2026-03-01 10:00:00'.*time_zone="):
        cl.from_polars(data, cl.Mapping(**ORDERS))
    london = cl.from_polars(data, cl.Mapping(**ORDERS, time_zone="Europe/London"))
    assert london["event_timestamp"][0] == dt.datetime(2026, 3, 1, 10, tzinfo=UTC)  # GMT in March
    summer = data.with_columns(pl.lit("2026-07-01 10:00:00").alias("occurred_at"))
    in_summer = cl.from_polars(summer, cl.Mapping(**ORDERS, time_zone="Europe/London"))
    assert in_summer["event_timestamp"][0] == dt.datetime(2026, 7, 1, 9, tzinfo=UTC)  # BST


def test_naive_datetime_columns_are_refused_at_once():
    data = orders().with_columns(
        pl.col("occurred_at").str.to_datetime(time_zone="UTC").dt.replace_time_zone(None)
    )
    with pytest.raises(SchemaError, match="naive times"):
        cl.from_polars(data, cl.Mapping(**ORDERS))
    ok = cl.from_polars(data, cl.Mapping(**ORDERS, time_zone="UTC"))
    assert ok["event_timestamp"][0] == dt.datetime(2026, 3, 1, 10, tzinfo=UTC)


def test_rows_that_do_not_map_are_named_never_dropped():
    data = orders().with_columns(
        pl.Series("order_id", ["o1", None, "o2", "o1"]),
        pl.Series(
            "occurred_at",
            ["2026-03-01T10:00:00Z", "2026-03-01T10:00:00Z", "soon", "2026-03-02T09:30:00Z"],
        ),
    )
    with pytest.raises(SchemaError, match="2 rows of the frame do not map: row 1: no aggregate id"):
        cl.from_polars(data, cl.Mapping(**ORDERS))
    mapped = Plan(cl.Mapping(**ORDERS), data.schema).run(data.lazy())
    assert mapped.events.height == 2
    assert mapped.quarantine.select("row", "reason").rows() == [
        (1, "no aggregate id: order_id is null"),
        (2, "event time 'soon' is not a time"),
    ]
    raw = mapped.quarantine["raw"][1].decode()
    assert '"occurred_at":"soon"' in raw and '"order_id":"o2"' in raw


def test_one_plan_run_over_chunks_of_other_time_formats_maps_each_as_a_fresh_plan():
    """A read maps chunk after chunk with one plan, which keeps the expressions it made and
    tries the last chunk's time format first: each chunk still maps as on its own."""
    mapping = cl.Mapping(**ORDERS, time_zone="Europe/London")
    iso = orders()
    spaced = iso.with_columns(pl.col("occurred_at").str.replace("T", " "))
    naive = iso.with_columns(pl.col("occurred_at").str.replace("Z|\\+01:00", ""))
    mixed = iso.with_columns(pl.Series("occurred_at", ["soon", *iso["occurred_at"][1:]]))
    chunks = [iso, spaced, iso, naive, mixed, naive, iso]
    plan = Plan(mapping, iso.schema)
    for chunk in chunks:
        once, fresh = plan.run(chunk.lazy()), Plan(mapping, iso.schema).run(chunk.lazy())
        assert once.events.equals(fresh.events)
        assert once.quarantine.equals(fresh.quarantine)
    assert plan.run(mixed.lazy()).quarantine["reason"].to_list() == [
        "event time 'soon' is not a time"
    ]
    strict = Plan(cl.Mapping(**ORDERS), iso.schema)
    strict.run(iso.lazy())
    with pytest.raises(SchemaError, match="have no time zone"):  # still refused after iso
        strict.run(naive.lazy())
    assert strict.run(spaced.lazy()).events.height == 4


def test_a_memory_source_keeps_what_does_not_map_in_its_quarantine():
    from concursus_lab.sources.memory import MemorySource

    data = orders().with_columns(pl.Series("order_id", ["o1", "o1", None, "o1"]))
    with pytest.warns(UserWarning, match="1 row"):
        source = MemorySource(data, mapping=cl.Mapping(**ORDERS))
    assert source.quarantine["reason"].to_list() == ["no aggregate id: order_id is null"]
    assert source.events(duplicates="keep").height == 3


def test_parameters_are_chosen_columns_or_one_object_column():
    data = orders().with_columns(
        payload=pl.struct(pl.col("sku").alias("z"), pl.struct(b=1, a=2).alias("nested")),
        body=pl.Series(['{"b": 1.50, "a": 123456789012345678901234567890}'] * 4),
    )
    listed = cl.from_polars(data, cl.Mapping(**ORDERS, parameters=["sku"]))
    assert listed["parameters"][0] == '{"sku":"A-1"}'
    whole = cl.from_polars(data, cl.Mapping(**ORDERS, parameters="payload"))
    assert whole["parameters"][0] == '{"nested":{"a":2,"b":1},"z":"A-1"}'  # sorted at every depth
    text = cl.from_polars(data, cl.Mapping(**ORDERS, parameters="body"))
    assert text["parameters"][0] == '{"a":123456789012345678901234567890,"b":1.50}'  # exact


def test_nan_and_binary_parameters_are_never_written_silently():
    data = orders().with_columns(pl.Series("amount", [1.0, float("nan"), 2.0, 3.0]))
    with pytest.raises(SchemaError, match="parameter 'amount' is NaN"):
        cl.from_polars(data, cl.Mapping(**ORDERS))
    with pytest.raises(SchemaError, match="cannot be a parameter"):
        cl.from_polars(data.with_columns(blob=pl.lit(b"x")), cl.Mapping(**ORDERS))


def test_field_paths_reach_into_structs_and_json_text():
    data = pl.DataFrame(
        {
            "meta": [{"order": {"id": 7}, "type": "created"}],
            "body": ['{"at": "2026-03-01T10:00:00Z", "amount": 1}'],
        }
    )
    events = cl.from_polars(
        data,
        cl.Mapping(
            aggregate_type="order",
            aggregate_id="meta.order.id",
            name="meta.type",
            event_time="body.at",
            parameters=[],
        ),
    )
    assert events.select("aggregate_id", "name", "event_timestamp").row(0) == (
        "7",
        "created",
        dt.datetime(2026, 3, 1, 10, tzinfo=UTC),
    )
    with pytest.raises(SchemaError, match=r"'meta.order' has no field 'idd'; its fields: id"):
        cl.from_polars(
            data,
            cl.Mapping(
                aggregate_type="o",
                aggregate_id="meta.order.idd",
                name="meta.type",
                event_time="body.at",
            ),
        )


def test_an_unknown_column_names_the_one_that_fits():
    with pytest.raises(SchemaError, match=r"no column 'occured'.*Did you mean 'occurred_at'"):
        cl.from_polars(orders(), cl.Mapping(**{**ORDERS, "event_time": "occured"}))


def test_declared_types_say_what_is_initial_and_terminal():
    shop = cl.EventTypes("order")

    @shop.initial
    class Created:
        amount: float
        sku: str

    @shop.terminal
    class Shipped: ...

    fields = {k: v for k, v in ORDERS.items() if k not in ("initial", "terminal")}
    events = cl.from_polars(orders(), cl.Mapping(**fields, types=shop))
    assert events["characteristics"].to_list() == [1, 0, 1, 2]
    with pytest.raises(SchemaError, match="declares 'order' events but `aggregate_type` is 'shop'"):
        cl.Mapping(**{**fields, "aggregate_type": "shop"}, types=shop)


def test_a_declaration_is_checked_when_it_is_made():
    with pytest.raises(SchemaError, match="`time_unit` must be one of"):
        cl.Mapping(**ORDERS, time_unit="seconds")
    with pytest.raises(SchemaError, match="'Mars/Olympus' is not a time zone"):
        cl.Mapping(**ORDERS, time_zone="Mars/Olympus")
    with pytest.raises(SchemaError, match="`aggregate_id` must be given"):
        cl.Mapping(aggregate_type="order", aggregate_id=None, name="t", event_time="at")


def test_a_mapping_travels_in_a_url_query_string():
    mapping = cl.Mapping(**ORDERS, sequence="seq", time_zone="UTC", parameters=["amount"])
    back = Mapping.from_query(mapping.to_query())
    assert repr(back) == repr(mapping)
    column_type = Mapping.from_query("aggregate_type=@kind&aggregate_id=id&name=n&event_time=t")
    assert column_type.aggregate_type.meta.output_name() == "kind"
    with pytest.raises(SchemaError, match="unknown mapping option"):
        Mapping.from_query("aggregate_type=o&aggregate_id=id&name=n&event_time=t&colour=red")


def test_pandas_frames_map_the_same():
    data = orders()
    from_pandas = cl.from_pandas(data.to_pandas(), cl.Mapping(**ORDERS))
    assert from_pandas.equals(cl.from_polars(data, cl.Mapping(**ORDERS)))
    naive = data.to_pandas()
    naive["occurred_at"] = pd.to_datetime(naive["occurred_at"], utc=True).dt.tz_localize(None)
    with pytest.raises(SchemaError, match=r"naive times.*time_zone="):
        cl.from_pandas(naive, cl.Mapping(**ORDERS))


def test_a_canonical_pandas_frame_gets_pandas_advice():
    frame = cl.sample.parcels(5, seed=1)
    naive = frame.to_pandas()
    naive["event_timestamp"] = naive["event_timestamp"].dt.tz_localize(None)
    with pytest.raises(SchemaError, match=r"\.dt\.tz_localize\('UTC'\)"):
        cl.from_pandas(naive)
    wide = frame.to_pandas()
    wide["characteristics"] = wide["characteristics"].astype("int64") + 2**40
    with pytest.raises(SchemaError, match=r"characteristics.*must be 0"):
        cl.from_pandas(wide)
    with pytest.raises(SchemaError, match=r"cl.from_pandas\(df, cl.Mapping"):
        cl.from_pandas(orders().to_pandas())


def test_a_missing_canonical_column_suggests_one_whose_values_fit():
    frame = cl.sample.parcels(5, seed=1)
    odd = frame.rename({"event_timestamp": "occurred_at"}).with_columns(event_type=pl.lit("x"))
    with pytest.raises(SchemaError, match="did you mean to rename 'occurred_at'"):
        cl.frame.validate(odd)


def test_a_json_parameters_column_that_is_no_object_is_named():
    data = orders().with_columns(body=pl.Series(['{"a": 1}', "[1, 2]", '{"a": 2}', None]))
    mapped = Plan(cl.Mapping(**ORDERS, parameters="body"), data.schema).run(data.lazy())
    assert mapped.events["parameters"].to_list() == ['{"a":1}', '{"a":2}']
    assert mapped.quarantine.select("row", "reason").rows() == [
        (1, "parameters '[1, 2]' are a JSON array, not an object"),
        (3, "no parameters: the column is null"),
    ]
