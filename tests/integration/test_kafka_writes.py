"""Appending to a real Kafka topic whose size limit some events break (issue 15, item 3).

The topic is made with a small ``max.message.bytes``; what reached the broker is counted by
reading the topic back with a plain consumer, never taken from our own report.
"""

from __future__ import annotations

import json

import polars as pl
import pytest

import concursus_lab as cl
from concursus_lab.exceptions import IncompleteWrite, SchemaError
from concursus_lab.sources.kafka import writing
from tests.contract import event, frame

pytestmark = pytest.mark.kafka
LIMIT = 4_000


@pytest.fixture
def small(kafka_address, topic):
    return cl.open(
        f"kafka://{kafka_address}/{topic}",
        create=True,
        partitions=2,
        topic_config={"max.message.bytes": str(LIMIT)},
    )


def _records_on(kafka_address: str, topic: str) -> list[dict]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=kafka_address, enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        consumer.assign(tps)
        consumer.seek_to_beginning()
        end = consumer.end_offsets(tps)
        values = []
        while any(consumer.position(tp) < end[tp] for tp in tps):
            for records in consumer.poll(timeout_ms=1000).values():
                values += [json.loads(r.value) for r in records]
        return values
    finally:
        consumer.close()


def _events(n: int, big: dict[int, int]) -> pl.DataFrame:
    """``n`` events of parcels p0..; event i carries a ``note`` of ``big[i]`` characters."""
    rows = [event(f"p{i}", i + 1, i + 2) for i in range(n)]
    out = frame(*rows)
    notes = [json.dumps({"note": "x" * big.get(i, 1)}) for i in range(n)]
    return out.with_columns(pl.Series("parameters", notes))


def test_an_event_too_large_for_the_topic_is_refused_before_anything_is_sent(
    small, kafka_address, topic
):
    events = _events(30, {17: 2 * LIMIT})
    with pytest.raises(SchemaError, match=r"row 17 \(aggregate_id 'p17'.*at most 4,000") as err:
        small.append(events)
    assert "nothing was written" in str(err.value)
    assert _records_on(kafka_address, topic) == []
    assert small.append(events.filter(pl.col("aggregate_id") != "p17")) == 29
    assert len(_records_on(kafka_address, topic)) == 29


def test_a_write_refused_part_way_reports_exactly_what_is_stored(
    small, kafka_address, topic, monkeypatch
):
    """The topic's limit is lowered between our check and the send (another admin's change),
    so the broker itself refuses some batches: the counts must be the broker's truth."""
    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource, ConfigResourceType

    checked = writing._check_sizes

    def check_then_lower(*args):
        checked(*args)
        admin = KafkaAdminClient(bootstrap_servers=kafka_address)
        try:
            change = {"max.message.bytes": "1500"}
            admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs=change)])
        finally:
            admin.close()

    monkeypatch.setattr(writing, "_check_sizes", check_then_lower)
    events = _events(40, {5: 2_500, 33: 3_000})
    with pytest.raises(IncompleteWrite, match=r"of 40 events were written") as err:
        small.append(events)
    stored = _records_on(kafka_address, topic)
    assert err.value.written == len(stored) < 40
    unwritten = err.value.unwritten
    assert set(unwritten["aggregate_id"]) >= {"p5", "p33"}
    assert len(stored) + unwritten.height == 40
    assert {r["aggregateId"] for r in stored}.isdisjoint(unwritten["aggregate_id"])


def test_a_refused_record_is_named_and_the_chunks_after_it_are_not_sent(
    small, kafka_address, topic, monkeypatch
):
    """Records go out a chunk at a time, each chunk's answers checked and kept by row before
    the next is sent (a future per record kept to the end held 12 GB at 6M records). The
    idempotent producer gives up after a refusal, so the chunks after it are not sent: the
    error names the refused row, and the earlier chunks are stored whole."""
    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource, ConfigResourceType

    checked = writing._check_sizes

    def check_then_lower(*args):
        checked(*args)
        admin = KafkaAdminClient(bootstrap_servers=kafka_address)
        try:
            change = {"max.message.bytes": "1500"}
            admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs=change)])
        finally:
            admin.close()

    monkeypatch.setattr(writing, "_check_sizes", check_then_lower)
    monkeypatch.setattr(writing, "CHUNK", 8)
    events = _events(40, {13: 2_500})
    with pytest.raises(IncompleteWrite, match=r"of 40 events were written") as err:
        small.append(events)
    message = str(err.value)
    assert "Refused: row 13 (aggregate_id 'p13', name 'receivedAtDepot': MessageSizeTooL" in message
    assert "24 not sent" in message
    stored = {r["aggregateId"] for r in _records_on(kafka_address, topic)}
    assert err.value.written == len(stored)
    assert {f"p{i}" for i in range(8)} <= stored  # the first chunk, confirmed before the next
    assert stored <= {f"p{i}" for i in range(16)} - {"p13"}
    unwritten = err.value.unwritten
    assert set(unwritten["aggregate_id"]) >= {"p13"} | {f"p{i}" for i in range(16, 40)}
    assert len(stored) + unwritten.height == 40
    assert stored.isdisjoint(unwritten["aggregate_id"])
