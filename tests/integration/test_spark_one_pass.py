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
    """The plan Spark ran for a state_at answer (the kept buckets' plan included; the
    general way's first stage is ``_decode_batches``)."""
    return answer.frame._jdf.queryExecution().executedPlan().toString()


def _produce(address: str, topic: str, history: pl.DataFrame, key, partition) -> None:
    """The history's events as Concursus JSON records, record i keyed by ``key(i, event)``
    and sent to ``partition(i)`` (None: where the default partitioner puts its key)."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=address)
    values = concursus_json_write.encode(history, "flat").to_list()
    ids = history["aggregate_id"].to_list()
    for i, value in enumerate(values):
        producer.send(topic, key=key(i, ids[i]), value=value, partition=partition(i))
    producer.flush()
    producer.close()


def _asked(url: str, spark) -> str:
    """Every answer from ``url`` on Spark is the local one; the plan state_at ran."""
    expected = _questions(cl, _local(url))
    events = cls.read(url, spark)
    for name, got in _questions(cls, events.frame).items():
        _same(got, expected[name], name)
    return _stages(cls.state_at(events.frame, parcel_state, types=parcel_types, at=AT))


@pytest.mark.cassandra
def test_cassandra_partitions_are_answered_as_read_with_no_shuffle(
    spark, history, cassandra_address
):
    keyspace = f"spark_one_{uuid.uuid4().hex[:10]}"
    url = f"cassandra://{cassandra_address}/{keyspace}"
    store = cl.open(url, create=True)
    try:
        store.append(history)
        plan = _asked(url, spark)
        assert "Exchange" not in plan and "_decode_batches" not in plan, plan
        events = cls.read(url, spark).frame.filter("true")  # not the read's own frame
        general = _stages(cls.state_at(events, parcel_state, types=parcel_types, at=AT))
        assert "Exchange" in general and "_decode_batches" in general, general
    finally:
        store.close()
        _cql(cassandra_address, f"DROP KEYSPACE IF EXISTS {keyspace}")


@pytest.fixture
def topic(kafka_address):
    name = f"spark_one_{uuid.uuid4().hex[:10]}"
    yield f"kafka://{kafka_address}/{name}", name
    _delete_topic(kafka_address, name)


@pytest.mark.kafka
def test_kafka_partitions_of_records_keyed_by_aggregate_are_answered_as_read(spark, history, topic):
    url, _ = topic
    cl.open(url, create=True, partitions=3).append(history)
    plan = _asked(url, spark)
    assert "Exchange" not in plan and "_decode_batches" not in plan, plan


@pytest.mark.kafka
def test_kafka_records_keyed_by_aggregate_elsewhere_are_shuffled_raw_on_their_key(
    spark, history, topic, kafka_address
):
    url, name = topic
    cl.open(url, create=True, partitions=3)
    _produce(kafka_address, name, history, lambda i, a: a.encode(), lambda i: i % 3)
    plan = _asked(url, spark)
    assert "Exchange hashpartitioning(key" in plan and "_decode_batches" not in plan, plan


@pytest.mark.kafka
def test_kafka_records_keyed_otherwise_are_asked_again_the_general_way(
    spark, history, topic, kafka_address
):
    url, name = topic
    cl.open(url, create=True, partitions=3)
    # three keys for all parcels: none is an aggregate id
    _produce(kafka_address, name, history, lambda i, a: b"k%d" % (i % 3), lambda i: None)
    plan = _asked(url, spark)
    assert "_decode_batches" in plan, plan  # decoded, then shuffled: the general way
