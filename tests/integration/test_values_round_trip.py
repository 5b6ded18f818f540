"""Nothing is written to Kafka or Redis that their readers cannot read back (issue 28, item 8).

A number beyond what a double holds (``1e400``) used to pass ``validate`` and ``append``, and
then every read quarantined it. Now the append refuses it before anything is sent; numbers at
the edge of what a double holds are written and read back with their exact text. What
reached the server is counted on the server (a plain consumer, raw Redis commands).
"""

from __future__ import annotations

import uuid

import polars as pl
import pytest

import concursus_lab as cl
from concursus_lab.exceptions import SchemaError
from tests.contract import event, frame

EDGE = '{"big":123456789012345678901234567890,"max":1.7976931348623157e308,"tiny":1e-400,"x":0.10}'


def _history(aggregate_type: str, parameters: str) -> pl.DataFrame:
    return frame(
        event("p1", 10, 20, aggregate_type=aggregate_type),
        event("p2", 10, 20, aggregate_type=aggregate_type, parameters=parameters),
    )


def _records(kafka_address: str, topic: str) -> int:
    """How many records the topic holds, as the broker says."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=kafka_address)
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        ends = consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
        return sum(ends.values())
    finally:
        consumer.close()


@pytest.mark.kafka
def test_kafka_append_refuses_a_number_no_reader_reads_back(kafka_address, topic):
    source = cl.open(f"kafka://{kafka_address}/{topic}", create=True)
    with pytest.raises(SchemaError, match=r"row 1: .*the number 1e400 is beyond what a double"):
        source.append(_history("parcel", '{"x":[1e400]}'))
    assert _records(kafka_address, topic) == 0

    assert source.append(_history("parcel", EDGE)) == 2
    assert _records(kafka_address, topic) == 2
    read = source.events()
    assert source.quarantine.height == 0
    assert read.filter(aggregate_id="p2")["parameters"].item() == EDGE


@pytest.mark.redis
def test_redis_append_refuses_a_number_no_reader_reads_back(redis_address):
    import redis

    aggregate_type = f"values-{uuid.uuid4().hex[:10]}"  # keys of this test's own
    host, port = redis_address.rsplit(":", 1)
    raw = redis.Redis(host=host, port=int(port), db=2)
    source = cl.open(f"redis://{redis_address}/2")
    try:
        with pytest.raises(SchemaError, match=r"the number 1e400 is beyond what a double"):
            source.append(_history(aggregate_type, '{"x":1e400}'))
        assert raw.keys(f"{aggregate_type}*") == []

        assert source.append(_history(aggregate_type, EDGE)) == 2
        read = source.events(aggregate_type=aggregate_type)
        assert source.quarantine.height == 0
        assert read.filter(aggregate_id="p2")["parameters"].item() == EDGE
    finally:
        keys = raw.keys(f"{aggregate_type}*")
        if keys:
            raw.delete(*keys)
        raw.close()
        source.close()
