"""A question asked of a read's own ``.frame`` is answered in one pass: the raw rows go to
Python once, already in buckets of whole aggregates (Cassandra: the partitions as read, with
no shuffle; Kafka: the records shuffled on their key), and the answers are the local ones.

A Kafka topic whose records are not keyed by aggregate id cannot be bucketed on the key: its
buckets find that out, and the question is asked again the general way (decode, shuffle the
decoded rows), with the local answers still. Every test has a timeout (SPARK.md, pitfall 8).
"""

from __future__ import annotations

import uuid

import polars as pl
import pytest

import concursus_lab as cl
import concursus_lab.spark as cls
from concursus_lab.sample import parcel_state, parcel_types
from concursus_lab.sources import concursus_json_write
from tests.integration.test_spark import (  # noqa: F401 (pytestmark: the same marks)
    PER_PARCEL,
    _cql,
    _delete_topic,
    _same,
    pytestmark,
)

AT = "2026-03-06 12:00"


@pytest.fixture(scope="module")
def spark(cassandra_address):
    session = cls.session("local[2]", cassandra=cassandra_address, memory="1g")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def history() -> pl.DataFrame:
    return cl.sample.parcels(200, seed=23)


def _local(url: str) -> pl.DataFrame:
    source = cl.open(url)
    try:
        return source.events(duplicates="keep")
    finally:
        getattr(source, "close", lambda: None)()


def _questions(engine, events) -> dict[str, pl.DataFrame]:
    states = engine.state_at(events, parcel_state, types=parcel_types, at=AT)
    per_parcel = engine.project(events, PER_PARCEL, known_at=AT)
    answers = {"state_at": states, "latest": engine.latest(events, at=AT)}
    if engine is cl:
        return {**answers, "state_at": states.frame.sort("aggregate_id"), "fold": per_parcel}
    return {"fold": per_parcel.to_polars()} | {k: v.to_polars() for k, v in answers.items()}


def _stages(answer) -> str:
    """The plan Spark ran for a state_at answer (the kept buckets' plan included)."""
    return answer.frame._jdf.queryExecution().executedPlan().toString()


@pytest.mark.cassandra
def test_cassandra_partitions_are_answered_as_read_with_no_shuffle(
    spark, history, cassandra_address
):
    keyspace = f"spark_one_{uuid.uuid4().hex[:10]}"
    url = f"cassandra://{cassandra_address}/{keyspace}"
    store = cl.open(url, create=True)
    try:
        store.append(history)
        local = _local(url)
        expected = _questions(cl, local)
        events = cls.read(url, spark)
        for name, got in _questions(cls, events.frame).items():
            _same(got, expected[name], f"{name} in one pass")
        plan = _stages(cls.state_at(events.frame, parcel_state, types=parcel_types, at=AT))
        assert "Exchange" not in plan and plan.count("MapInArrow") == 2, plan  # + unpacking
        general = _stages(
            cls.state_at(events.frame.filter("true"), parcel_state, types=parcel_types, at=AT)
        )
        assert "Exchange" in general and general.count("MapInArrow") == 3, general
    finally:
        store.close()
        _cql(cassandra_address, f"DROP KEYSPACE IF EXISTS {keyspace}")


@pytest.fixture
def topic(kafka_address):
    name = f"spark_one_{uuid.uuid4().hex[:10]}"
    yield f"kafka://{kafka_address}/{name}", name
    _delete_topic(kafka_address, name)


@pytest.mark.kafka
def test_kafka_records_keyed_by_aggregate_are_shuffled_raw_and_decoded_once(spark, history, topic):
    url, _ = topic
    cl.open(url, create=True, partitions=3).append(history)
    expected = _questions(cl, _local(url))
    events = cls.read(url, spark)
    for name, got in _questions(cls, events.frame).items():
        _same(got, expected[name], f"{name} in one pass")
    plan = _stages(cls.state_at(events.frame, parcel_state, types=parcel_types, at=AT))
    assert plan.count("Exchange") == 1 and plan.count("MapInArrow") == 2, plan


@pytest.mark.kafka
def test_kafka_records_keyed_otherwise_are_asked_again_the_general_way(
    spark, history, topic, kafka_address
):
    from kafka import KafkaProducer

    url, name = topic
    cl.open(url, create=True, partitions=3)
    producer = KafkaProducer(bootstrap_servers=kafka_address)
    values = concursus_json_write.encode(history, "flat").to_list()
    for i, value in enumerate(values):  # three keys for all parcels: none is an aggregate id
        producer.send(name, key=b"k%d" % (i % 3), value=value)
    producer.flush()
    producer.close()
    expected = _questions(cl, _local(url))
    events = cls.read(url, spark)
    for question, got in _questions(cls, events.frame).items():
        _same(got, expected[question], f"{question} after the one pass gave up")
    plan = _stages(cls.state_at(events.frame, parcel_state, types=parcel_types, at=AT))
    assert plan.count("MapInArrow") == 3, plan  # decode, bucket, unpack: the general way
