"""Reconciling two copies of one history finds exactly the differences planted in them."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

import concursus_lab as cl
from concursus_lab.exceptions import SchemaError
from tests.contract import at, event, frame


def planted() -> tuple[pl.DataFrame, pl.DataFrame]:
    """A Cassandra-like table, and a Kafka-like topic with known differences."""
    table = cl.sample.parcels(300, seed=21)
    table = table.sort("processing_timestamp").unique(cl.IDENTITY, keep="last", maintain_order=True)
    ids = table["aggregate_id"]
    row = table.with_row_index("row")

    def pick(i: int) -> pl.Expr:
        return pl.col("row") == i

    topic = row.with_columns(
        # 10: a different depot; 20: another name and terminal; 30: same JSON, other spelling
        parameters=pl.when(pick(10))
        .then(pl.lit('{"depotId":"Mars"}'))
        .when(pick(30))
        .then(pl.col("parameters").str.replace(":", ": "))
        .otherwise("parameters"),
        name=pl.when(pick(20)).then(pl.lit("vanished")).otherwise("name"),
        characteristics=pl.when(pick(20)).then(pl.lit(2, pl.Int32)).otherwise("characteristics"),
        # every event logged a second later in the topic: not a difference of payload
        processing_timestamp=pl.col("processing_timestamp") + dt.timedelta(seconds=1),
    )
    # 3 events the topic lost, 2 the table never got
    topic = topic.filter(~pl.col("row").is_in([40, 41, 42])).drop("row")
    extra = frame(event("parcel-x1", 5, 6), event("parcel-x2", 7, 8))
    topic = pl.concat([topic, extra])
    assert ids.n_unique() > 0
    return topic, table


def test_finds_exactly_the_planted_differences():
    topic, table = planted()
    topic_before, table_before = topic.clone(), table.clone()
    found = cl.reconcile(topic, table, names=("kafka", "cassandra"))
    assert topic.equals(topic_before) and table.equals(table_before)

    assert found.only_in_a["aggregate_id"].to_list() == ["parcel-x1", "parcel-x2"]
    lost = table.with_row_index("row").filter(pl.col("row").is_in([40, 41, 42]))
    assert found.only_in_b.select(cl.IDENTITY).equals(lost.select(cl.IDENTITY))
    assert found.only_in_b.columns == table.columns

    changed = found.changed
    assert changed.height == 2
    expected = table.with_row_index("row").filter(pl.col("row").is_in([10, 20]))
    assert changed.select(cl.IDENTITY).equals(expected.sort(cl.IDENTITY).select(cl.IDENTITY))
    by_id = {r["aggregate_id"]: r for r in changed.iter_rows(named=True)}
    ten = by_id[expected["aggregate_id"][0]]
    assert ten["differs"] == ["parameters"]
    assert ten["parameters_kafka"] == '{"depotId":"Mars"}'
    assert ten["parameters_cassandra"] == expected["parameters"][0]
    twenty = by_id[expected["aggregate_id"][1]]
    assert twenty["differs"] == ["name", "characteristics"]
    assert (twenty["name_kafka"], twenty["characteristics_kafka"]) == ("vanished", 2)

    assert found.agree == table.height - 3 - 2
    assert found.differing_fields() == {"characteristics": 1, "name": 1, "parameters": 1}
    assert not found.equal
    assert changed.columns == [
        *cl.IDENTITY,
        "differs",
        "name_kafka",
        "name_cassandra",
        "version_kafka",
        "version_cassandra",
        "parameters_kafka",
        "parameters_cassandra",
        "characteristics_kafka",
        "characteristics_cassandra",
    ]


def test_summary_is_one_line():
    topic, table = planted()
    text = str(cl.reconcile(topic, table, names=("kafka", "cassandra")))
    assert text == (
        f"kafka vs cassandra: {table.height - 5:,} events agree, 2 changed "
        "(characteristics 1, name 1, parameters 1), 2 only in kafka, 3 only in cassandra"
    )
    assert "\n" not in text


def test_processing_times_count_only_when_asked():
    topic, table = planted()
    found = cl.reconcile(topic, table, fields=["processing_timestamp"])
    assert (found.agree, found.changed.height) == (0, table.height - 3)  # logged 1 s later
    assert found.changed.columns[-2:] == ["processing_timestamp_a", "processing_timestamp_b"]


def test_the_same_history_agrees_and_repeats_are_collapsed():
    deliveries = cl.sample.parcels(200, seed=3)  # about 1% delivered twice
    table = deliveries.sort("processing_timestamp").unique(cl.IDENTITY, keep="last")
    found = cl.reconcile(deliveries, table.reverse())
    assert found.equal
    repeats = deliveries.height - table.height
    assert repeats > 0
    assert found.repeats == (repeats, 0)
    assert str(found).endswith(f"(repeated deliveries collapsed: {repeats} in a, 0 in b)")


def test_the_last_processed_delivery_is_compared():
    table = frame(event("p1", 10, 30, parameters='{"depotId":"B"}'))
    topic = frame(
        event("p1", 10, 20, parameters='{"depotId":"A"}'),
        event("p1", 10, 30, parameters='{"depotId":"B"}'),
    )
    assert cl.reconcile(topic, table).equal
    older = frame(event("p1", 10, 20, parameters='{"depotId":"A"}'))
    found = cl.reconcile(topic, older)
    assert found.changed["parameters_a"].to_list() == ['{"depotId":"B"}']


def test_kafka_offsets_break_ties_between_deliveries():
    deliveries = frame(
        event("p1", 10, 20, parameters='{"depotId":"late"}'),
        event("p1", 10, 20, parameters='{"depotId":"early"}'),
    )
    topic = deliveries.with_columns(kafka_offset=pl.Series([7, 3], dtype=pl.Int64))
    table = frame(event("p1", 10, 20, parameters='{"depotId":"late"}'))
    assert cl.reconcile(topic, table).equal  # offset 7 is the last write
    assert not cl.reconcile(deliveries, table).equal  # by position, "early" is the last row


def test_identity_includes_stream_and_event_time():
    a = frame(event("p1", 10, 11), event("p1", 11, 12, stream_id="driver-app"))
    b = frame(event("p1", 10, 11), event("p1", 11, 12))
    found = cl.reconcile(a, b)
    assert found.only_in_a["stream_id"].to_list() == ["driver-app"]
    assert found.only_in_b["stream_id"].to_list() == [""]
    assert found.only_in_b["event_timestamp"].to_list() == [at(11)]


def test_unparseable_parameters_differ_when_their_text_does():
    a = frame(event("p1", 10, 11)).with_columns(parameters=pl.lit("{not json"))
    b = frame(event("p1", 10, 11)).with_columns(parameters=pl.lit("{not json "))
    assert cl.reconcile(a, b).changed["differs"].to_list() == [["parameters"]]
    assert cl.reconcile(a, a).equal


def test_empty_frames():
    found = cl.reconcile(cl.frame.empty(), cl.frame.empty())
    assert found.equal
    assert str(found) == "a vs b: 0 events agree, 0 changed, 0 only in a, 0 only in b"
    assert found._repr_markdown_() == f"```\n{found}\n```"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"names": ("kafka", "kafka")}, "`names` must be two different words"),
        ({"names": ("kafka",)}, "`names` must be two different words"),
        ({"names": ("my topic", "table")}, "`names` must be two different words"),
        ({"fields": ["aggregate_id"]}, "`fields` names identity column"),
        ({"fields": ["parameter"]}, r"did you mean 'parameters'\?"),
    ],
)
def test_bad_arguments_name_the_parameter(kwargs, message):
    history = frame(event("p1", 10, 11))
    with pytest.raises(SchemaError, match=message):
        cl.reconcile(history, history, **kwargs)


def test_not_a_frame():
    with pytest.raises(SchemaError, match="must be a polars DataFrame"):
        cl.reconcile(frame(event("p1", 10, 11)), [1, 2])


@pytest.mark.parametrize(
    "fake_hash",
    [
        pl.repeat(0, pl.len(), dtype=pl.UInt64),  # every identity collides, on each side
        pl.int_range(pl.len(), dtype=pl.UInt64),  # distinct per side, wrong across sides
    ],
    ids=["within a side", "across the sides"],
)
def test_hash_collisions_fall_back_to_the_identity(monkeypatch, fake_hash):
    topic, table = planted()
    honest = cl.reconcile(topic, table)
    monkeypatch.setattr("concursus_lab.delivery.reconcile.identity_hash", lambda _: fake_hash)
    found = cl.reconcile(topic, table)
    assert found.only_in_a.equals(honest.only_in_a)
    assert found.only_in_b.equals(honest.only_in_b)
    assert found.changed.equals(honest.changed)
    assert (found.agree, found.repeats) == (honest.agree, honest.repeats)
