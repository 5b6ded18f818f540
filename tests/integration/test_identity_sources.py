"""Conflicting deliveries on the real servers: every source that resolves duplicates warns.

Two different events of one order in the same minute (``created`` and ``paid``) share
Concursus's identity; whichever source holds them, resolving them to one delivery is never
silent (``ConflictingDeliveries``), and keeping every delivery merges nothing. Delivery
order is the identity module's everywhere: processing time, then Kafka's partition and
offset, then row.
"""

from __future__ import annotations

import uuid

import polars as pl
import pytest

import concursus_lab as cl
from concursus_lab.exceptions import ConflictingDeliveries
from concursus_lab.frame.identity import resolve
from tests.unit.test_identity import _no_warning, created_and_paid, names, orders


def _of_type(kind: str) -> pl.DataFrame:
    """The created/paid pair under an aggregate type of this test's own."""
    return created_and_paid().with_columns(aggregate_type=pl.lit(kind))


@pytest.mark.kafka
def test_kafka_warns_and_ties_go_by_offset(kafka_address, topic):
    source = cl.open(f"kafka://{kafka_address}/{topic}", create=True, partitions=1)
    source.append(created_and_paid())
    with pytest.warns(ConflictingDeliveries, match="order 'o1'"):
        assert source.events()["name"].to_list() == ["paid"]
    every = _no_warning(lambda: source.events(duplicates="keep"))
    assert every.height == 2
    with pytest.warns(ConflictingDeliveries):
        result = cl.state_at(every, names, types=orders)
    assert result.counts["conflicting"] == 1
    # two deliveries of one identity processed at one instant: the later offset wins,
    # whatever the order of the frame's rows (issue 28.6)
    pair = created_and_paid()
    again = pair.with_columns(  # both processed when the first created was
        processing_timestamp=pl.lit(pair["processing_timestamp"][0]),
        processing_id=pl.lit(pair["processing_id"][0]),
    )
    source.append(again)
    read = source.events(duplicates="keep").filter(
        pl.col("processing_timestamp") == again["processing_timestamp"][0]
    )
    last_offset = read.sort("kafka_offset")["name"][-1]
    with pytest.warns(ConflictingDeliveries):
        assert resolve(read.reverse())["name"].to_list() == [last_offset]


@pytest.mark.cassandra
def test_cassandra_warns_when_an_append_resolves(cassandra_address):
    keyspace = f"cl_test_{uuid.uuid4().hex[:12]}"
    source = cl.open(f"cassandra://{cassandra_address}/{keyspace}", create=True)
    try:
        with pytest.warns(ConflictingDeliveries, match="paid"):
            source.append(created_and_paid())
        assert source.events()["name"].to_list() == ["paid"]  # one row per primary key
    finally:
        source._session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}")
        source.close()


@pytest.mark.redis
def test_redis_warns(redis_address):
    kind = f"order-{uuid.uuid4().hex[:8]}"
    with cl.open(f"redis://{redis_address}/9") as source:
        try:
            source.append(_of_type(kind))
            with pytest.warns(ConflictingDeliveries, match=kind):
                assert source.events(aggregate_type=kind)["name"].to_list() == ["paid"]
            every = _no_warning(lambda: source.events(aggregate_type=kind, duplicates="keep"))
            assert every.height == 2
        finally:
            client = source._client
            for key in client.scan_iter(match=f"{kind}*"):
                client.delete(key)


@pytest.mark.rabbitmq
def test_a_rabbitmq_stream_warns(rabbitmq_address):
    exchange = f"cl-test-{uuid.uuid4().hex[:10]}"
    stream = cl.open(
        f"amqp://{rabbitmq_address}/{exchange}?stream={exchange}-h", create=True, idle=0.3
    )
    try:
        stream.append(created_and_paid())
        with pytest.warns(ConflictingDeliveries):
            assert stream.events()["name"].to_list() == ["paid"]
    finally:
        import pika

        host, port = rabbitmq_address.rsplit(":", 1)
        connection = pika.BlockingConnection(pika.ConnectionParameters(host, int(port)))
        channel = connection.channel()
        channel.queue_delete(f"{exchange}-h")
        channel.exchange_delete(exchange)
        connection.close()
