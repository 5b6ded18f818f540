"""state_at, latest and index give the same answers on every source for the same events.

The same sample goes into the local store, a real Cassandra keyspace, a real Kafka topic, a
real Redis database and a real RabbitMQ stream; what comes back is folded, and every answer
must agree with the local store's.
"""

from __future__ import annotations

import uuid

import polars as pl
import pytest

import concursus_lab as cl
from concursus_lab.sample import parcel_state, parcel_types

AT = "2026-03-06 12:00"
KNOWN_AT = "2026-03-06 09:00"


@pytest.fixture(scope="module")
def history() -> pl.DataFrame:
    return cl.sample.parcels(400, seed=21)


@pytest.fixture(scope="module")
def local(history, tmp_path_factory):
    store = cl.open(tmp_path_factory.mktemp("same") / "store", create=True)
    store.append(history)
    return store


@pytest.fixture(scope="module")
def cassandra(history, cassandra_address):
    keyspace = f"cl_same_{uuid.uuid4().hex[:10]}"
    store = cl.open(f"cassandra://{cassandra_address}/{keyspace}", create=True)
    store.append(history)
    yield store
    from cassandra.cluster import Cluster

    host, port = cassandra_address.rsplit(":", 1)
    cluster = Cluster([host], port=int(port))
    try:
        cluster.connect().execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)
    finally:
        cluster.shutdown()
        store.close()


@pytest.fixture(scope="module")
def kafka(history, kafka_address):
    topic = f"cl-same-{uuid.uuid4().hex[:10]}"
    store = cl.open(f"kafka://{kafka_address}/{topic}", create=True, partitions=4)
    store.append(history)
    yield store
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=kafka_address)
    try:
        admin.delete_topics([topic])
    finally:
        admin.close()


@pytest.fixture(scope="module")
def redis(history, redis_address):
    import redis as redis_py

    host, port = redis_address.rsplit(":", 1)
    raw = redis_py.Redis(host=host, port=int(port), db=2)
    raw.flushdb()
    store = cl.open(f"redis://{redis_address}/2")
    store.append(history)
    yield store
    raw.flushdb()
    raw.close()
    store.close()


@pytest.fixture(scope="module")
def rabbitmq(history, rabbitmq_address):
    import pika

    exchange = f"cl-same-{uuid.uuid4().hex[:10]}"
    store = cl.open(f"amqp://{rabbitmq_address}/{exchange}?stream={exchange}", create=True)
    store.append(history)
    yield store
    host, port = rabbitmq_address.rsplit(":", 1)
    connection = pika.BlockingConnection(pika.ConnectionParameters(host, int(port)))
    connection.channel().queue_delete(exchange)
    connection.channel().exchange_delete(exchange)
    connection.close()


def _answers(events: pl.DataFrame) -> dict[str, pl.DataFrame]:
    events = events.select(cl.SCHEMA.names())
    states = cl.state_at(events, parcel_state, types=parcel_types, at=AT)
    return {
        "state_at": states.frame.sort("aggregate_id"),
        "latest": cl.latest(events, at=AT).sort("aggregate_id"),
        "index": cl.index(events, "truckId", at=AT)
        .with_columns(pl.col("aggregate_ids").list.sort())
        .sort("value"),
    }


@pytest.mark.cassandra
@pytest.mark.kafka
@pytest.mark.redis
@pytest.mark.rabbitmq
@pytest.mark.parametrize("name", ["cassandra", "kafka", "redis", "rabbitmq"])
def test_every_source_gives_the_local_stores_answers(name, request, local):
    other = request.getfixturevalue(name)
    expected = _answers(local.events())
    got = _answers(other.events())
    for question, frame in expected.items():
        assert frame.height > 0
        assert got[question].equals(frame), f"{name} disagrees on {question}"


@pytest.mark.kafka
@pytest.mark.redis
@pytest.mark.rabbitmq
@pytest.mark.parametrize("name", ["kafka", "redis", "rabbitmq"])
def test_as_known_at_a_past_time_sources_keeping_every_delivery_agree(name, request, local):
    """Sources that keep every delivery answer "as known at P" the same way.

    (Cassandra keeps only the last delivery of each identity, as Concursus's table does,
    so an earlier delivery it overwrote cannot be seen as known at an earlier time.)
    """

    def known(source: cl.sources.Source) -> pl.DataFrame:
        events = source.events(duplicates="keep").select(cl.SCHEMA.names())
        result = cl.state_at(events, parcel_state, types=parcel_types, at=AT, known_at=KNOWN_AT)
        return result.frame.sort("aggregate_id")

    other = request.getfixturevalue(name)
    expected = known(local)
    assert expected.height > 0
    assert known(other).equals(expected)
    latest_local = cl.latest(local.events(known_at=KNOWN_AT), at=AT).sort("aggregate_id")
    latest_other = cl.latest(other.events(known_at=KNOWN_AT), at=AT).sort("aggregate_id")
    assert latest_other.equals(latest_local)
