"""The Kafka source against a real local Kafka: load a topic, append to it.

Baselines, measured in the same run on the same topic:

* load: a raw kafka-python loop, as one writes it by hand: a consumer with manual
  assignment (same fetch sizes as ours), ``poll()`` until every partition reaches the end
  offsets taken at the start, and ``json.loads`` of each record's value;
* load, one record at a time: our decoding, but with kafka-python building each record
  (what the source falls back to when kafka-python offers no hook for whole fetches);
* append: ``KafkaProducer.send`` of values encoded beforehand, then ``flush()``;
* a mapped topic: the same events as JSON objects of a team's own shape (other field names,
  epoch milliseconds, parameters a nested object, an event id), read through a
  ``cl.Mapping``, against ``.events()`` of the Concursus JSON topic, in turns.

Run it alone with ``python -m bench.bench_kafka [events]``; it starts the local Kafka
(``concursus_lab.services.ensure("kafka")``) and deletes its topics afterwards.
"""

from __future__ import annotations

import json
import sys
import uuid
from typing import Any

import concursus_lab as cl
from bench._harness import Measurement, measure, row

MAX_SCALE = 1_000_000
EVENTS_PER_PARCEL = 3.25
PARTITIONS = 6
BASELINE = "raw kafka-python poll loop + json.loads"


def run(scale: int, quick: bool) -> list[dict]:
    from kafka import KafkaAdminClient

    from concursus_lab import services

    services.ensure("kafka", quiet=True)
    address = services.address("kafka")
    parcels = max(1, int(scale / EVENTS_PER_PARCEL))
    repeat = 1 if quick else 3
    frame = cl.sample.parcels(parcels, seed=1)
    n = frame.height
    topic = f"cl-bench-{uuid.uuid4().hex[:8]}"
    raw_topic = f"{topic}-raw"
    admin = KafkaAdminClient(bootstrap_servers=address)
    rows: list[dict] = []
    try:
        source = cl.open(f"kafka://{address}/{topic}", create=True, partitions=PARTITIONS)
        cl.open(f"kafka://{address}/{raw_topic}", create=True, partitions=PARTITIONS)
        values = _encoded(frame)
        # each measured once (a second append would double the topic read below)
        sent = measure(lambda: _raw_send(address, raw_topic, frame, values), repeat=1)
        appended = measure(lambda: source.append(frame, progress=False), repeat=1)
        rows.append(
            row(
                "kafka append (validate + encode + send + flush)",
                n,
                appended,
                "KafkaProducer.send of pre-encoded values + flush",
                sent,
                note=f"{PARTITIONS} partitions, idempotent producer; each measured once",
            )
        )
        loaded, baseline = _interleaved(
            lambda: source.events(duplicates="keep", progress=False).height,
            lambda: _raw_load(address, topic),
            repeat,
        )
        assert loaded.result == baseline.result == n, (loaded.result, baseline.result, n)
        rows.append(
            row(
                "kafka load (.events(duplicates='keep'))",
                n,
                loaded,
                BASELINE,
                baseline,
                goal=">= 1.5x",
                note="decoded to the canonical frame, parameters canonical",
            )
        )
        one_by_one = measure(lambda: _one_by_one(source), repeat=1)
        rows.append(
            row(
                "kafka load, kafka-python record objects (fallback)",
                n,
                one_by_one,
                BASELINE,
                baseline,
                note="what .events() does when kafka-python has no whole-fetch hook",
            )
        )
        own_topic = f"{topic}-own"
        cl.open(f"kafka://{address}/{own_topic}", create=True, partitions=PARTITIONS)
        _raw_send(address, own_topic, frame, _own_shape(frame))
        mapped = cl.open(f"kafka://{address}/{own_topic}", mapping=OWN_SHAPE)
        own, concursus = _interleaved(
            lambda: mapped.events(duplicates="keep", progress=False).height,
            lambda: source.events(duplicates="keep", progress=False).height,
            repeat,
        )
        assert own.result == concursus.result == n, (own.result, concursus.result, n)
        rows.append(
            row(
                "kafka load, a mapped JSON topic of your own shape",
                n,
                own,
                "kafka load of the same events as Concursus JSON",
                concursus,
                goal=">= 0.9x",
                note="cl.Mapping: dotted paths, epoch ms, an event id; JSON read by polars",
            )
        )
        since = frame["processing_timestamp"].sort()[int(n * 0.9)]
        recent = measure(lambda: source.events(since=since, progress=False), repeat=repeat)
        rows.append(
            row(
                "kafka load, since (last 10% by processing time)",
                recent.result.height,
                recent,
                note="record timestamps are append times here, so the seek starts at 0",
            )
        )
    finally:
        admin.delete_topics(
            [t for t in (topic, raw_topic, f"{topic}-own") if t in admin.list_topics()]
        )
        admin.close()
    return rows


def _interleaved(ours: Any, theirs: Any, repeat: int) -> tuple[Measurement, Measurement]:
    """Best of ``repeat`` runs of each, taken in turns, so a busy machine hurts both alike."""
    best: list[Measurement | None] = [None, None]
    for _ in range(repeat):
        for k, fn in enumerate((ours, theirs)):
            m = measure(fn, repeat=1)
            if best[k] is None or m.seconds < best[k].seconds:
                peak = m.peak_rss_mb if best[k] is None else max(m.peak_rss_mb, best[k].peak_rss_mb)
                best[k] = Measurement(m.seconds, peak, m.result)
    return best[0], best[1]  # type: ignore[return-value]


def _encoded(frame: Any) -> list[bytes]:
    from concursus_lab.sources.concursus_json_write import encode

    return encode(frame, "flat").to_list()


#: How the mapped topic's records map onto events.
OWN_SHAPE = cl.Mapping(
    aggregate_type="parcel",
    aggregate_id="parcel.id",
    name="type",
    event_time="at",
    event_id="id",
    stream_id="parcel.stream",
    parameters="data",
    time_unit="ms",
)


def _own_shape(frame: Any) -> list[bytes]:
    """The events as a team's own producer writes them (JSON objects, one per record)."""
    import polars as pl

    own = frame.select(
        pl.struct(pl.col("aggregate_id").alias("id"), pl.col("stream_id").alias("stream")).alias(
            "parcel"
        ),
        pl.col("name").alias("type"),
        pl.col("event_timestamp").dt.epoch("ms").alias("at"),
        pl.col("processing_id").alias("id"),
        pl.col("parameters"),
    )
    texts = own.select(
        pl.struct(pl.exclude("parameters")).struct.json_encode().str.strip_suffix("}")
        + pl.lit(',"data":')
        + pl.col("parameters")
        + pl.lit("}")
    ).to_series()
    return [t.encode() for t in texts.to_list()]


def _raw_send(address: str, topic: str, frame: Any, values: list[bytes]) -> int:
    from kafka import KafkaProducer

    producer = KafkaProducer(
        bootstrap_servers=address,
        enable_idempotence=True,
        acks="all",
        linger_ms=20,
        batch_size=512 * 1024,
    )
    keys = frame["aggregate_id"].cast(cl.SCHEMA["aggregate_id"]).to_list()
    for key, value in zip(keys, values, strict=True):
        producer.send(topic, key=key.encode(), value=value)
    producer.flush()
    producer.close()
    return len(values)


def _raw_load(address: str, topic: str) -> int:
    """Every record's value through json.loads, the way one writes it by hand."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=address,
        group_id=None,
        enable_auto_commit=False,
        fetch_max_bytes=64 * 1024 * 1024,
        max_partition_fetch_bytes=16 * 1024 * 1024,
        fetch_max_wait_ms=100,
        max_poll_records=100_000,
    )
    tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
    ends = consumer.end_offsets(tps)
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    events = []
    remaining = {tp for tp in tps if ends[tp] > 0}
    while remaining:
        for tp, records in consumer.poll(timeout_ms=200).items():
            for record in records:
                if record.offset < ends[tp]:
                    events.append(json.loads(record.value))
        remaining = {tp for tp in remaining if consumer.position(tp) < ends[tp]}
    consumer.close()
    return len(events)


def _one_by_one(source: Any) -> Any:
    from concursus_lab.sources.kafka import private as _kafka

    hook = _kafka.read_whole_fetches
    _kafka.read_whole_fetches = lambda consumer: False
    try:
        return source.events(duplicates="keep", progress=False)
    finally:
        _kafka.read_whole_fetches = hook


def main(argv: list[str]) -> None:
    scale = int(argv[0]) if argv else MAX_SCALE
    for result in run(scale, quick=False):
        print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
