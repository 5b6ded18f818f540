"""The Kafka source against a real Kafka: the contract, Java Concursus's records, faults.

Each test works in its own new topic (``cl-test-<random>``), deleted afterwards. Records
"written by Java Concursus" are produced with a plain kafka-python producer, keyed by
aggregate id, exactly as Concursus writes them; what the source writes is read back with a
plain consumer.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
import uuid
import warnings

import polars as pl
import pytest

import concursus_lab as cl
from concursus_lab.exceptions import SchemaError, SourceError, SourceUnavailable
from concursus_lab.sources.copying import copy
from tests.contract import SourceContract, at, canonical_sort, event, frame
from tests.late_records import late_since, produce_stamped_with_event_time

pytestmark = pytest.mark.kafka

UTC = dt.UTC
JAVA_ID = "c4f74bc0-e9f0-11f1-ffff-ffffffffff65"  # a processingId as Java Concursus writes it
T0 = 1_459_420_277_981


@pytest.fixture
def url(kafka_address, topic):
    return f"kafka://{kafka_address}/{topic}"


@pytest.fixture
def store(url):
    return cl.open(url, create=True, partitions=3)


@pytest.fixture
def producer(kafka_address):
    """A plain producer, as Java Concursus's would be: keyed by aggregate id, values as-is."""
    from kafka import KafkaProducer

    plain = KafkaProducer(bootstrap_servers=kafka_address)
    yield plain
    plain.close()


def produce(producer, topic, values, *, key=b"id1", timestamp_ms=None):
    """Send each value; return the (partition, offset) each landed at."""
    futures = [
        producer.send(
            topic,
            value=v if isinstance(v, bytes | type(None)) else json.dumps(v).encode(),
            key=key,
            timestamp_ms=timestamp_ms,
        )
        for v in values
    ]
    producer.flush()
    return [(m.partition, m.offset) for m in (f.get(timeout=30) for f in futures)]


def java_event(**overrides) -> dict:
    event = {
        "aggregateType": "person",
        "aggregateId": "id1",
        "name": "created",
        "version": "0",
        "eventTimestamp": T0,
        "streamId": "",
        "processingId": JAVA_ID,
        "characteristics": 1,
        "parameters": {"name": "Arthur Putey", "age": 42},
    }
    event.update(overrides)
    return event


def nested(event: dict) -> dict:
    event = dict(event)
    parameters = event.pop("parameters")
    return {"metadata": event, "parameters": parameters}


class TestKafkaContract(SourceContract):
    @pytest.fixture
    def source(self, store):
        return store


# -- round trips ---------------------------------------------------------------------------


def test_the_sample_round_trips_through_a_multi_partition_topic_unchanged(kafka_address, topic):
    source = cl.open(f"kafka://{kafka_address}/{topic}", create=True, partitions=6)
    sample = cl.sample.parcels(3000, seed=11)
    assert source.append(sample) == sample.height
    every = source.events(duplicates="keep")
    assert every.columns == [
        *cl.SCHEMA.names(),
        "kafka_partition",
        "kafka_offset",
        "kafka_timestamp",
    ]
    assert every.select(cl.SCHEMA.names()).schema == cl.SCHEMA
    assert canonical_sort(every).equals(canonical_sort(sample))
    winners = sample.sort("processing_timestamp").unique(cl.IDENTITY, keep="last")
    assert canonical_sort(source.events()).equals(canonical_sort(winners))
    assert every["kafka_partition"].n_unique() == 6
    assert every.select(pl.struct("kafka_partition", "kafka_offset").is_unique().all()).item()
    cl.frame.validate(every)


def test_each_aggregates_events_stay_in_one_partition(store):
    store.append(cl.sample.parcels(800, seed=12))
    read = store.events(duplicates="keep")
    partitions = read.group_by("aggregate_id").agg(pl.col("kafka_partition").n_unique())
    assert partitions["kafka_partition"].max() == 1
    assert read["kafka_partition"].n_unique() == 3


def test_both_layouts_are_written_as_concursus_writes_them(store, kafka_address, topic):
    from kafka import KafkaConsumer

    one = frame(event("p1", 10, 20, parameters='{"depotId":"Lewisham","n":[1,2]}'))
    store.append(one, layout="flat")
    store.append(one, layout="nested")
    with pytest.raises(SourceError, match="layout"):
        store.append(one, layout="xml")
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=kafka_address,
        auto_offset_reset="earliest",
        consumer_timeout_ms=5000,
    )
    records = [r for _, r in zip(range(2), consumer, strict=False)]
    consumer.close()
    assert [r.key for r in records] == [b"p1", b"p1"]
    flat_value, nested_value = (json.loads(r.value) for r in records)
    assert flat_value["aggregateId"] == "p1"
    assert flat_value["parameters"] == {"depotId": "Lewisham", "n": [1, 2]}
    assert flat_value["eventTimestamp"] == int(one["event_timestamp"].item().timestamp() * 1000)
    assert nested_value["metadata"] == {k: v for k, v in flat_value.items() if k != "parameters"}
    assert nested_value["parameters"] == flat_value["parameters"]
    assert store.events(duplicates="keep").height == 2


def test_a_missing_processing_id_is_stamped_and_processing_time_kept(store):
    no_id = frame(event("p1", 10, 20)).with_columns(pl.lit(None, pl.String).alias("processing_id"))
    other_id = frame(event("p2", 10, 30)).with_columns(pl.lit("batch-7").alias("processing_id"))
    store.append(pl.concat([no_id, other_id]))
    read = store.events().sort("aggregate_id")
    stamped = read["processing_id"][0]
    assert uuid.UUID(stamped).version == 1
    assert read["processing_timestamp"].to_list() == [
        no_id["processing_timestamp"].item(),
        other_id["processing_timestamp"].item(),
    ]
    assert read["processing_id"][1] == "batch-7"  # not a time UUID: the record time holds it


def test_sub_millisecond_event_times_are_refused(store):
    finer = frame(event("p1", 10, 11)).with_columns(
        pl.col("event_timestamp") + dt.timedelta(microseconds=5)
    )
    with pytest.raises(SchemaError, match="millisecond"):
        store.append(finer)
    assert store.events().height == 0


# -- reading what Java Concursus wrote -----------------------------------------------------


def test_records_written_by_java_concursus_decode_in_both_layouts_and_as_arrays(
    store, producer, topic
):
    flat = java_event()
    later = java_event(
        name="renamed",
        eventTimestamp=T0 + 1000,
        processingId="",
        characteristics=0,
        parameters={"name": "Arthur Dent"},
    )
    produce(producer, topic, [flat, nested(later)], timestamp_ms=T0 + 5000)
    produce(
        producer,
        topic,
        [
            [
                java_event(aggregateId="id2"),
                nested(
                    java_event(aggregateId="id3", parameters={"z": 1, "a": {"y": None, "b": 0.5}})
                ),
            ]
        ],
        key=b"id2",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to quarantine: no warning
        read = store.events().sort("aggregate_id", "event_timestamp")
    assert store.quarantine.height == 0
    assert read["aggregate_id"].to_list() == ["id1", "id1", "id2", "id3"]
    first, second, from_array, nested_in_array = read.iter_rows(named=True)
    assert first["processing_id"] == JAVA_ID
    assert first["processing_timestamp"] == cl.frame.processing_time(JAVA_ID)
    assert first["event_timestamp"] == dt.datetime.fromtimestamp(T0 / 1000, UTC)
    assert first["parameters"] == '{"age":42,"name":"Arthur Putey"}'
    assert first["characteristics"] == 1
    assert second["processing_id"] is None  # "" is "not yet logged"
    assert second["processing_timestamp"] == dt.datetime.fromtimestamp((T0 + 5000) / 1000, UTC)
    assert second["kafka_timestamp"] == second["processing_timestamp"]
    assert second["name"] == "renamed"
    assert from_array["kafka_offset"] == nested_in_array["kafka_offset"]
    assert nested_in_array["parameters"] == '{"a":{"b":0.5,"y":null},"z":1}'


def test_a_topic_seeded_with_broken_records_yields_every_good_event_and_every_bad_record(
    store, producer, topic
):
    good = cl.sample.parcels(500, seed=13)
    store.append(good)
    broken = [
        b"not json",
        b"",
        None,  # a tombstone
        b"42",
        b'"a string"',
        b"[]",
        b'{"hello": "world"}',
        json.dumps(java_event(aggregateId=None)).encode(),
        json.dumps(java_event(eventTimestamp="2016-03-31")).encode(),
        json.dumps(java_event(parameters="{}")).encode(),
        json.dumps({"metadata": [1], "parameters": {}}).encode(),
        json.dumps([java_event(), {"metadata": {}}]).encode(),
        '{"aggregateType": "caf\xe9"'.encode("latin-1"),
    ]
    where = produce(producer, topic, broken, key=b"parcel-0000007")
    with pytest.warns(UserWarning, match=f"{len(broken)} record"):
        read = store.events(duplicates="keep")
    assert canonical_sort(read).equals(canonical_sort(good))
    bad = store.quarantine
    assert bad.columns == ["kafka_partition", "kafka_offset", "kafka_timestamp", "raw", "reason"]
    assert sorted(zip(bad["kafka_partition"], bad["kafka_offset"], strict=True)) == sorted(where)
    assert bad.sort("kafka_offset")["raw"].to_list() == broken
    assert bad["reason"].null_count() == 0
    assert any("not JSON" in r for r in bad["reason"])
    # the next read replaces the quarantine, it does not add to it
    with pytest.warns(UserWarning):
        store.events(aggregate_ids=["nobody"])
    assert store.quarantine.height == len(broken)


# -- seeking by processing time ------------------------------------------------------------


def test_since_returns_exactly_the_events_processed_at_or_after_it(url, producer, topic):
    # records stamped months ago: without this, time retention could delete them mid-test
    store = cl.open(url, create=True, partitions=3, topic_config={"retention.ms": "-1"})
    sample = cl.sample.parcels(1500, seed=14)
    # As a live Concursus producer writes: record time = when it was processed.
    ordered = sample.sort("processing_timestamp")
    # an undecodable record long before `since`: a seeking read never meets it
    produce(
        producer,
        topic,
        [b"old garbage"],
        key=b"parcel-0000001",
        timestamp_ms=int(ordered["processing_timestamp"][0].timestamp() * 1000) - 3_600_000,
    )
    for key, value, row in zip(
        ordered["aggregate_id"].cast(pl.Binary).to_list(),
        _encoded(ordered),
        ordered.iter_rows(named=True),
        strict=True,
    ):
        producer.send(
            topic,
            key=key,
            value=value,
            timestamp_ms=int(row["processing_timestamp"].timestamp() * 1000),
        )
    producer.flush()
    since = ordered["processing_timestamp"][ordered.height // 2]
    expected = sample.filter(pl.col("processing_timestamp") >= since)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read = store.events(since=since, duplicates="keep")
    assert store.quarantine.height == 0
    assert canonical_sort(read).equals(canonical_sort(expected))
    assert read["processing_timestamp"].min() >= since
    # the same answer as filtering a full read, which does meet the garbage
    with pytest.warns(UserWarning, match="1 record"):
        full = store.events(duplicates="keep")
    assert canonical_sort(full.filter(pl.col("processing_timestamp") >= since)).equals(
        canonical_sort(read)
    )
    assert store.events(since=dt.datetime(2999, 1, 1, tzinfo=UTC)).height == 0


def test_since_keeps_late_events_whose_record_time_is_their_event_time(url, kafka_address):
    """A producer that stamps each record with its event time: a late event's record time
    runs behind its processing time, by more than the seek's slack (issue 28.4)."""
    # records months old: without this, retention could delete them during the test
    store = cl.open(url, create=True, partitions=3, topic_config={"retention.ms": "-1"})
    sample = cl.sample.parcels(1500, seed=14)
    produce_stamped_with_event_time(kafka_address, store.topic, sample)
    since = late_since(sample)
    expected = canonical_sort(sample.filter(pl.col("processing_timestamp") >= since))
    assert canonical_sort(store.events(since=since, duplicates="keep")).equals(expected)
    followed = pl.concat(list(store.follow(since=since, idle_timeout=1)))
    assert canonical_sort(followed).equals(expected)


def test_since_scans_back_as_far_as_record_times_run_behind(url, kafka_address):
    """One event a second, each record stamped an hour before its processing time: the seek
    by record time lands at the partition's end, and the check before it must walk back over
    600 records (more than one SCAN_BACK) to where processing time reaches `since`."""
    store = cl.open(url, create=True, partitions=1, topic_config={"retention.ms": "-1"})
    late = frame(*(event(f"p{i}", i - 3_600, i) for i in range(1_500)))
    produce_stamped_with_event_time(kafka_address, store.topic, late)
    since = at(900)
    read = store.events(since=since, duplicates="keep")
    assert canonical_sort(read).equals(
        canonical_sort(late.filter(pl.col("processing_timestamp") >= since))
    )
    assert read.height == 600 and read["kafka_offset"].min() == 900


def _encoded(frame: pl.DataFrame) -> list[bytes]:
    from concursus_lab.sources.concursus_json_write import encode

    return encode(frame, "flat").to_list()


# -- following -----------------------------------------------------------------------------


def test_follow_yields_the_records_appended_after_it_started(store):
    store.append(cl.sample.parcels(50, seed=15))  # already there: not followed
    new = cl.sample.parcels(200, seed=16)
    follower = store.follow(idle_timeout=30, batch=100)
    writer = threading.Thread(target=store.append, args=(new,))
    writer.start()
    seen: list[pl.DataFrame] = []
    for part in follower:
        assert part.height <= 100
        seen.append(part)
        if sum(p.height for p in seen) >= new.height:
            break
    follower.close()
    writer.join()
    assert canonical_sort(pl.concat(seen)).equals(canonical_sort(new))


def test_follow_stops_when_idle_and_closes_its_consumer(store):
    assert list(store.follow(idle_timeout=1.0, poll_timeout=0.2)) == []


# -- errors and description ----------------------------------------------------------------


def test_a_missing_topic_says_how_to_make_it(kafka_address):
    with pytest.raises(SourceUnavailable, match="create=True"):
        cl.open(f"kafka://{kafka_address}/cl-test-no-such-topic-{uuid.uuid4().hex[:6]}")


def test_an_unreachable_broker_says_how_to_start_one():
    with pytest.raises(SourceUnavailable, match="concursus-lab services start kafka"):
        cl.open("kafka://127.0.0.1:1/parcel-events", connect_timeout=1)


def test_urls_name_several_servers_and_never_credentials(kafka_address, store, topic):
    again = cl.open(f"kafka://{kafka_address},{kafka_address}/{topic}")
    assert again.servers == (kafka_address, kafka_address)
    with pytest.raises(SourceError, match="SASL_USERNAME"):
        cl.open(f"kafka://user:secret@{kafka_address}/{topic}")
    with pytest.raises(SourceError, match="one topic"):
        cl.open(f"kafka://{kafka_address}/")


def test_repr_is_useful(store, url, topic):
    assert repr(store) == f"KafkaSource({url!r}: topic {topic!r}, 3 partitions)"


# -- copying -------------------------------------------------------------------------------


def test_copy_local_store_to_kafka_and_back(tmp_path, url):
    local = cl.open(tmp_path / "from", create=True)
    sample = cl.sample.parcels(400, seed=17)
    local.append(sample)
    copied = copy(local, url, create=True, chunk_events=300, progress=False)
    assert copied == sample.height
    back = copy(url, tmp_path / "back", create=True, progress=False)
    assert back == sample.height  # Kafka keeps every delivery, and so does the local store
    snapshot = cl.open(tmp_path / "back")
    assert canonical_sort(snapshot.events(duplicates="keep")).equals(canonical_sort(sample))
    assert canonical_sort(snapshot.events()).equals(canonical_sort(local.events()))


# -- faults --------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_broker_restart_during_a_read_is_survived_or_reported(store, url, monkeypatch):
    """Stop the real Kafka in the middle of a read, start it again, and look."""
    from concursus_lab import services
    from concursus_lab.sources.kafka import connection, reading

    sample = cl.sample.parcels(8000, seed=18)
    store.append(sample)
    expected = canonical_sort(store.events(duplicates="keep"))
    monkeypatch.setattr(reading, "_DECODE_BATCH", 2_000)
    monkeypatch.setattr(connection, "_PARTITION_FETCH_BYTES", 64 * 1024)  # many fetches
    decode = reading.decode
    calls = {"n": 0, "pause": 0.0}
    restarted = threading.Event()

    def restart() -> None:
        try:
            services.stop("kafka")
            time.sleep(calls["pause"])
            services.start("kafka")
        finally:
            restarted.set()

    def decode_then_stop(chunks):
        calls["n"] += 1
        if calls["n"] == 1:
            restarted.clear()
            services.stop("kafka")  # the rest of the read meets a dead broker
            threading.Thread(target=restart, daemon=True).start()
        return decode(chunks)

    monkeypatch.setattr(reading, "decode", decode_then_stop)
    try:
        # a short patience: the read must stop, and say what it had
        impatient = cl.open(url, timeout=3)
        calls["pause"] = 10.0
        with pytest.raises(cl.IncompleteRead, match="stopped before its end") as failure:
            impatient.events(duplicates="keep")
        partial = failure.value.partial
        assert 0 < partial.height < expected.height
        assert "not (" in str(failure.value) and "unread" in str(failure.value)
        assert (
            partial.select(cl.SCHEMA.names())
            .join(
                expected.select(cl.SCHEMA.names()),
                on=list(cl.SCHEMA.names()),
                how="anti",
                nulls_equal=True,
            )
            .height
            == 0
        )
        assert restarted.wait(timeout=240)
        # the default patience rides out a restart, resuming where it stopped
        calls["n"], calls["pause"] = 0, 0.0
        patient = cl.open(url)
        read = patient.events(duplicates="keep")
        assert canonical_sort(read).equals(expected)
        assert restarted.wait(timeout=240)
    finally:
        services.ensure("kafka")


def test_records_read_one_by_one_decode_the_same(store, monkeypatch):
    """When kafka-python offers no hook for whole fetches, the answer is the same."""
    from concursus_lab.sources.kafka import private

    store.append(cl.sample.parcels(300, seed=19))
    whole = store.events(duplicates="keep")
    monkeypatch.setattr(private, "read_whole_fetches", lambda consumer: False)
    one_by_one = store.events(duplicates="keep")
    assert one_by_one.equals(whole)


def test_an_unverified_kafka_python_reads_by_its_public_path_and_says_so(store, monkeypatch):
    """Outside the verified versions: one warning naming the version, the same frame."""
    import kafka

    from concursus_lab.sources.kafka import private

    store.append(cl.sample.parcels(300, seed=20))
    whole = store.events(duplicates="keep")
    monkeypatch.setattr(kafka, "__version__", "99.0.0")
    monkeypatch.setattr(private, "_warned", set())
    private._unverified.cache_clear()
    try:
        with pytest.warns(RuntimeWarning, match=r"kafka-python 99\.0\.0 is not one") as caught:
            public = store.events(duplicates="keep")
            again = store.events(duplicates="keep")
        assert len([w for w in caught if "public path" in str(w.message)]) == 1
    finally:
        private._unverified.cache_clear()
    assert public.equals(whole) and again.equals(whole)


def test_a_refusal_is_told_apart_from_an_unreachable_broker(kafka_address, topic):
    with pytest.raises(SourceError, match="refused: InvalidReplicationFactor"):
        cl.open(f"kafka://{kafka_address}/{topic}", create=True, replication=3)


def test_client_settings_reach_the_clients_that_know_them(kafka_address, topic):
    source = cl.open(
        f"kafka://{kafka_address}/{topic}",
        create=True,
        client={"fetch_max_wait_ms": 50, "linger_ms": 5, "client_id": "notebook-7"},
    )
    source.append(frame(event("p1", 10, 11)))
    assert source.events().height == 1


def test_no_secret_reaches_a_log_and_no_url_option_is_silently_ignored(url, monkeypatch, caplog):
    # issue 15, item 10: kafka-python's admin client logs its configuration at DEBUG
    monkeypatch.setenv("CONCURSUS_LAB_KAFKA_SASL_PASSWORD", "s3cret-sasl")
    monkeypatch.setenv("CONCURSUS_LAB_KAFKA_SSL_PASSWORD", "s3cret-ssl")
    with caplog.at_level(logging.DEBUG, logger="kafka"):
        source = cl.open(url, create=True, partitions=1)
        source.close()
    assert "Starting KafkaAdminClient with configuration" in caplog.text  # it did log
    assert "s3cret" not in caplog.text
    assert "'sasl_plain_password': '***'" in caplog.text
    with pytest.raises(SourceError, match="takes no query options") as refused:
        cl.open(url + "?password=hunter2")
    assert "hunter2" not in str(refused.value)
