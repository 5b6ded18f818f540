"""Spark's Arrow batches of Kafka records decode to what the local source's polls decode to.

On Spark each batch of records comes to a Python worker as Arrow columns (``key``,
``value``, ``partition``, ``offset``, ``timestamp``, ``headers``); it is decoded whole
(:func:`concursus_lab.spark.kafka.decode`) by the local source's own decoder, the one a
poll of several partitions goes through. Both roads must give the same events and the same
quarantine, reasons included: for Concursus JSON and for a topic read through a mapping.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa
import pytest

import concursus_lab as cl
from concursus_lab.sources.kafka import reading
from concursus_lab.sources.kafka.mapped import MappedRecords, Partition
from concursus_lab.sources.kafka.records import Records

pytest.importorskip("pyspark")

from concursus_lab.spark import kafka

GOOD = (
    b'{"aggregateType":"parcel","aggregateId":"p%d","name":"loaded","version":"0",'
    b'"eventTimestamp":17724096%05d,"streamId":"","processingId":"",'
    b'"characteristics":0,"parameters":{"truckId":"T%d","kg":1.50}}'
)
NESTED = (
    b'{"metadata":{"aggregateType":"parcel","aggregateId":"n%d","name":"delivered",'
    b'"eventTimestamp":1772409600000},"parameters":{"z":1,"a":[true,null]}}'
)
BAD = [
    b"not json",
    None,  # a tombstone
    b"[" + GOOD % (1, 1, 1) + b',{"aggregateType":"parcel"}]',  # an array with a bad event
    b"[" + GOOD % (2, 2, 2) + b"," + GOOD % (3, 3, 3) + b"]",  # two good ones
    b'{"aggregateType":"parcel","aggregateId":"","name":"x","eventTimestamp":1,"parameters":{}}',
    b'{"aggregateType":"parcel","aggregateId":"c","name":"x","eventTimestamp":1,'
    b'"characteristics":7,"parameters":{}}',
    b'{"aggregateType":"parcel","aggregateId":"c","name":"x","eventTimestamp":1}',
    b'"a string"',
    b"[]",
]


def values(partition: int) -> list[bytes | None]:
    mixed = [GOOD % (i, i, i % 4) for i in range(30)] + [NESTED % i for i in range(5)]
    return mixed[partition::3] + BAD[partition::3] + mixed[partition + 1 :: 5]


def polls(
    keys: bool = False, headers: bool = False
) -> tuple[list[tuple[Partition, Records]], pa.RecordBatch]:
    """Three partitions' records as the local source polls them, and the same records as one
    Arrow batch of Spark's Kafka source, the partitions interleaved."""
    chunks, rows = [], []
    for p in range(3):
        vals = values(p)
        offsets = np.arange(100 * p, 100 * p + len(vals), dtype=np.int64)
        millis = 1_772_409_600_000 + 1000 * offsets + p
        ks = [None if i % 7 == 0 else f"k{p}-{i % 5}".encode() for i in range(len(vals))]
        hs = [((("id", f"{p}/{i}".encode()),) if i % 2 else ()) for i in range(len(vals))]
        chunks.append(
            (
                Partition(p),
                Records(
                    vals,
                    offsets,
                    millis,
                    int(offsets[-1]) + 1,
                    keys=ks if keys else None,
                    headers=hs if headers else None,
                ),
            )
        )
        for i, v in enumerate(vals):
            rows.append((ks[i], v, p, int(offsets[i]), int(millis[i]), hs[i]))
    rows = rows[::2] + rows[1::2]  # partitions interleaved, offsets out of order
    heads = pa.list_(pa.struct([("key", pa.string()), ("value", pa.binary())]))
    batch = pa.RecordBatch.from_arrays(
        [
            pa.array([r[0] for r in rows], pa.binary()),
            pa.array([r[1] for r in rows], pa.binary()),
            pa.array(["t"] * len(rows), pa.string()),
            pa.array([r[2] for r in rows], pa.int32()),
            pa.array([r[3] for r in rows], pa.int64()),
            pa.array([r[4] * 1000 for r in rows], pa.timestamp("us", "UTC")),
            pa.array([0] * len(rows), pa.int32()),
            pa.array([[{"key": k, "value": v} for k, v in r[5]] for r in rows], heads),
        ],
        names=[
            "key",
            "value",
            "topic",
            "partition",
            "offset",
            "timestamp",
            "timestampType",
            "headers",
        ],
    )
    return chunks, batch


def split(decoded: pl.DataFrame, events: list[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    order = ["kafka_partition", "kafka_offset"]
    good = decoded.filter(pl.col("reason").is_null()).select(events)
    bad = decoded.filter(pl.col("reason").is_not_null()).select(*reading.QUARANTINE_SCHEMA)
    return good.sort(order, maintain_order=True), bad.sort(order)


def local(events: pl.DataFrame, quarantine: pl.DataFrame):
    order = ["kafka_partition", "kafka_offset"]
    return events.sort(order, maintain_order=True), quarantine.sort(order)


def test_concursus_json_batches_decode_as_the_local_polls_do():
    chunks, batch = polls()
    want_events, want_bad = local(*reading.decode(chunks))
    events, bad = split(kafka.decode(batch), list(reading.FRAME_SCHEMA))
    assert want_bad.height == 8 and want_events.height > 30
    assert events.equals(want_events)
    assert bad.equals(want_bad)  # reasons, raw values and record times included
    assert set(bad["reason"].str.slice(0, 12)) >= {"not JSON: in", "no value (a ", "array elemen"}


def test_a_mapped_topic_s_batches_decode_as_its_local_polls_do():
    mapping = cl.Mapping(
        aggregate_type="parcel",
        aggregate_id="kafka.key",
        name="name",
        event_time="eventTimestamp",
        event_id="kafka.headers.id",
        time_unit="ms",
    )
    decoder = MappedRecords(mapping)
    chunks, batch = polls(keys=True, headers=True)
    want_events, want_bad = local(*decoder(chunks))
    shape = pl.Schema({**decoder.empty().schema, "raw": pl.Binary, "reason": pl.String})
    decoded = kafka.decode(batch, decoder.decode_joined, shape, keyed=True)
    events, bad = split(decoded, list(decoder.empty().schema))
    assert want_bad.height > 5 and want_events.height > 20
    assert want_events["event_id"].drop_nulls().len() > 10  # the headers were read
    assert events.equals(want_events)
    assert bad.equals(want_bad)
