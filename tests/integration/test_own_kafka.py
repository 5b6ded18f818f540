"""A Kafka topic of your own JSON events, read through a mapping, against a real Kafka.

Each test produces records of its own shape with a plain kafka-python producer, as an
application would, into a new topic (``cl-test-<random>``) deleted afterwards, and reads them
with ``cl.open("kafka://...", mapping=...)``.
"""

from __future__ import annotations

import datetime as dt

import orjson
import polars as pl
import pytest

import concursus_lab as cl
from concursus_lab.exceptions import SourceError
from tests.contract import SourceContract, canonical_sort
from tests.integration.own_shapes import copy_and_check

pytestmark = pytest.mark.kafka

UTC = dt.UTC


@pytest.fixture
def producer(kafka_address):
    from kafka import KafkaProducer

    plain = KafkaProducer(bootstrap_servers=kafka_address)
    yield plain
    plain.close()


@pytest.fixture
def url(kafka_address, topic):
    cl.open(f"kafka://{kafka_address}/{topic}", create=True, partitions=3)
    return f"kafka://{kafka_address}/{topic}"


def send(producer, topic: str, values: list, **record) -> None:
    """Each value (a dict: JSON-encoded here; bytes: as they are) as one record."""
    for value in values:
        raw = orjson.dumps(value) if isinstance(value, dict) else value
        producer.send(topic, value=raw, **record)
    producer.flush()


# -- the contract, through records of another shape --------------------------------------------

#: The contract's events as a team's producer writes them: other names, epoch milliseconds,
#: the parameters a nested object, the processing time a field of the value.
OWN_SHAPE = cl.Mapping(
    aggregate_type=pl.col("kind"),
    aggregate_id="id",
    name="type",
    event_time="happened",
    processing_time="meta.logged",
    processing_id="meta.pid",
    stream_id="stream",
    version="v",
    characteristics="flags",
    parameters="body",
    time_unit="ms",
    identity="concursus",
)


def own_records(events: pl.DataFrame) -> list[dict]:
    return [
        {
            "kind": row["aggregate_type"],
            "id": row["aggregate_id"],
            "type": row["name"],
            "happened": int(row["event_timestamp"].timestamp() * 1000),
            "stream": row["stream_id"],
            "v": row["version"],
            "flags": row["characteristics"],
            "body": orjson.loads(row["parameters"]),
            "meta": {
                "logged": row["processing_timestamp"].isoformat(),
                "pid": row["processing_id"],
            },
        }
        for row in events.iter_rows(named=True)
    ]


class TestOwnTopicContract(SourceContract):
    writable = False

    @pytest.fixture
    def source_of(self, url, producer, topic):
        def holding(*frames: pl.DataFrame):
            for one in frames:
                for record in own_records(one):
                    producer.send(topic, key=record["id"].encode(), value=orjson.dumps(record))
            producer.flush()
            return cl.open(url, mapping=OWN_SHAPE)

        return holding


# -- the record's own fields ---------------------------------------------------------------

CLICKS = cl.Mapping(
    aggregate_type="user",
    aggregate_id="kafka.key",
    name="what",
    event_time="at",
    stream_id="kafka.headers.device",
    event_id="kafka.headers.id",
    time_unit="s",
)


def test_key_timestamp_and_headers_are_fields_and_the_record_time_is_the_processing_time(
    url, producer, topic
):
    sent = dt.datetime(2026, 3, 1, 12, 0, 0, 250000, tzinfo=UTC)
    millis = int(sent.timestamp() * 1000)
    for i, (user, device) in enumerate([("u1", b"phone"), ("u1", None), ("u2", b"web")]):
        headers = [("id", f"e{i}".encode())] + ([("device", device)] if device else [])
        producer.send(
            topic,
            key=user.encode(),
            value=orjson.dumps({"what": "clicked", "at": 1_772_366_400 + i, "page": f"/p{i}"}),
            headers=headers,
            timestamp_ms=millis + i,
        )
    producer.flush()
    source = cl.open(url, mapping=CLICKS)
    read = source.events(duplicates="keep").sort("event_id")
    assert read.columns[:12] == [*cl.SCHEMA, "event_id", "kafka_partition"]
    assert read.select("aggregate_id", "stream_id", "event_id", "parameters").rows() == [
        ("u1", "phone", "e0", '{"page":"/p0"}'),
        ("u1", "", "e1", '{"page":"/p1"}'),  # no header: the default stream
        ("u2", "web", "e2", '{"page":"/p2"}'),
    ]
    assert read["processing_timestamp"].to_list() == [
        sent + dt.timedelta(milliseconds=i) for i in range(3)
    ]
    assert read["processing_timestamp"].equals(
        read["kafka_timestamp"].alias("processing_timestamp")
    )
    assert read["event_timestamp"][0] == dt.datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert "kafka.key" in repr(source)


class OnePartition:
    """A producer whose every record goes to partition 0."""

    def __init__(self, producer):
        self._producer = producer

    def send(self, topic, **record):
        return self._producer.send(topic, partition=0, **record)

    def flush(self):
        self._producer.flush()


def test_what_does_not_decode_or_map_is_quarantined_with_the_reason(url, producer, topic):
    good = {"what": "clicked", "at": 1_772_366_400}
    # the topic has 3 partitions and a record without a key may go to any: one partition for
    # all five, so their offsets give the order they were sent in
    producer = OnePartition(producer)
    producer.send(topic, key=b"u1", value=orjson.dumps(good), headers=[("id", b"a")])
    producer.send(topic, key=b"u1", value=b"{not json", headers=[("id", b"b")])
    producer.send(topic, key=b"u1", value=None, headers=[("id", b"c")])
    producer.send(topic, key=None, value=orjson.dumps(good), headers=[("id", b"d")])
    producer.send(
        topic,
        key=b"u1",
        value=orjson.dumps({"what": "clicked", "at": "soon"}),
        headers=[("id", b"e")],
    )
    producer.flush()
    source = cl.open(url, mapping=CLICKS)
    with pytest.warns(UserWarning, match=r"4 record\(s\) of .* could not be decoded"):
        read = source.events(duplicates="keep")
    assert read["event_id"].to_list() == ["a"]
    reasons = source.quarantine.sort("kafka_offset")["reason"].to_list()
    assert reasons[0].startswith("not JSON: ")
    assert reasons[1:] == [
        "no value (a tombstone)",
        "no aggregate id: kafka.key is null",
        "event time 'soon' is not a time",
    ]
    assert source.quarantine.sort("kafka_offset")["raw"][0] == b"{not json"


def test_since_and_follow_read_a_mapped_topic_as_they_read_concursus_json(url, producer, topic):
    base = dt.datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    for i in range(6):
        producer.send(
            topic,
            key=b"u1",
            value=orjson.dumps({"what": "c", "at": 1_772_366_400 + i}),
            headers=[("id", f"e{i}".encode())],
            timestamp_ms=int((base + dt.timedelta(hours=i)).timestamp() * 1000),
        )
    producer.flush()
    source = cl.open(url, mapping=CLICKS)
    recent = source.events(since=base + dt.timedelta(hours=4), duplicates="keep")
    assert sorted(recent["event_id"].to_list()) == ["e4", "e5"]
    live = source.follow(idle_timeout=10, poll_timeout=0.5)
    producer.send(
        topic,
        key=b"u9",
        value=orjson.dumps({"what": "c", "at": 1_772_366_500}),
        headers=[("id", b"new")],
    )
    producer.send(topic, key=b"u9", value=b"nope", headers=[("id", b"bad")])
    producer.flush()
    with pytest.warns(UserWarning, match="could not be decoded"):
        first = next(live)
    live.close()
    assert first["event_id"].to_list() == ["new"]
    assert first.columns == recent.columns
    assert source.quarantine["raw"].to_list() == [b"nope"]


def test_since_scans_back_by_the_processing_time_the_mapping_names(kafka_address, topic, producer):
    """Records stamped an hour before the processing time the value carries: the seek by
    record time lands at the end, and the check before it must read the records through the
    mapping to walk back to where processing time reaches `since` (issue 28.4's rule)."""
    cl.open(
        f"kafka://{kafka_address}/{topic}",
        create=True,
        partitions=1,
        topic_config={"retention.ms": "-1"},
    )
    base = dt.datetime(2026, 3, 2, tzinfo=UTC)
    for i in range(1_500):
        processed = base + dt.timedelta(seconds=i)
        value = {
            "what": "c",
            "at": int(processed.timestamp()) - 3_600,
            "ingested": processed.isoformat(),
        }
        producer.send(
            topic,
            key=b"u1",
            value=orjson.dumps(value),
            headers=[("id", b"%d" % i)],
            timestamp_ms=int(processed.timestamp() * 1000) - 3_600_000,
        )
    producer.flush()
    ingested = cl.Mapping(
        aggregate_type="user",
        aggregate_id="kafka.key",
        name="what",
        event_time="at",
        processing_time="ingested",
        event_id="kafka.headers.id",
        time_unit="s",
    )
    source = cl.open(f"kafka://{kafka_address}/{topic}", mapping=ingested)
    since = base + dt.timedelta(seconds=900)
    read = source.events(since=since, duplicates="keep")
    assert read.height == 600 and read["kafka_offset"].min() == 900
    followed = pl.concat(list(source.follow(since=since, idle_timeout=1)))
    assert followed.height == 600


def test_a_mapped_topic_is_read_never_written(url):
    source = cl.open(url, mapping=CLICKS)
    with pytest.raises(SourceError, match=r"never written.*cl\.copy"):
        source.append(cl.sample.parcels(2, seed=1))


def test_an_interrupted_read_says_what_it_read(url, producer, topic, monkeypatch):
    from concursus_lab.sources.kafka import connection, mapped, reading

    send(
        producer,
        topic,
        [{"what": "c", "at": 1_772_366_400 + i} for i in range(3000)],
        key=b"u1",
        headers=[("id", b"x")],
    )
    monkeypatch.setattr(reading, "_DECODE_BATCH", 500)
    monkeypatch.setattr(connection, "_PARTITION_FETCH_BYTES", 16 * 1024)
    calls = {"n": 0}
    decode = mapped.MappedRecords.__call__

    def decode_then_stop(self, chunks):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return decode(self, chunks)

    monkeypatch.setattr(mapped.MappedRecords, "__call__", decode_then_stop)
    source = cl.open(url, mapping=CLICKS)
    with pytest.raises(cl.IncompleteRead, match="interrupted") as stopped:
        source.events(duplicates="keep")
    assert 0 < stopped.value.partial.height < 3000


def test_copy_and_check_take_a_topic_url_with_its_mapping(url, producer, topic, tmp_path):
    send(
        producer,
        topic,
        [{"what": "c", "at": 1_772_366_400 + i} for i in range(40)],
        key=b"u1",
        headers=[("id", b"x"), ("device", b"web")],
    )
    mapped = f"{url}?{CLICKS.to_query()}"
    printed, counted = copy_and_check(mapped, tmp_path)
    assert "copied 40 events" in printed and counted == 40
    stored = cl.open(tmp_path / "store").events(duplicates="keep")
    read = cl.open(mapped).events(duplicates="keep")
    assert canonical_sort(stored).equals(canonical_sort(read))
