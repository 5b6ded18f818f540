"""Avro and Protobuf topic values decoded into the canonical frame, against the per-message
deserializers teams use: confluent-kafka's ``AvroDeserializer`` (goal >= 10x), fastavro's
``schemaless_reader`` (goal >= 2x) and confluent-kafka's ``ProtobufDeserializer`` (stated).

Ours is the whole read path after Kafka's fetch: framing split, grouping by schema id, one
columnar decode per group (the Avro container-block path; upb for Protobuf), the mapping onto
the canonical frame. The baselines only decode, one message at a time, into Python objects:
they do not even reach a frame. The answers are checked equal: our decoded records against
fastavro's, field by field. Schemas come from local files on our side and from
confluent-kafka's in-memory ``MockSchemaRegistryClient`` on theirs (each schema fetched once
either way), so the benchmark needs no server.
"""

from __future__ import annotations

import io
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import polars as pl

import concursus_lab as cl
from bench._harness import measure, row
from concursus_lab.sources.kafka.mapped import MappedRecords, Partition
from concursus_lab.sources.kafka.records import Records
from concursus_lab.sources.registry.schemas import Schemas
from concursus_lab.sources.registry.values import SCHEMA_ID, SCHEMA_VERSION, RegistryValues

MAX_SCALE = 1_000_000
TYPES = ("created", "paid", "packed", "shipped")
SCHEMA = {
    "type": "record",
    "name": "OrderEvent",
    "namespace": "shop",
    "fields": [
        {"name": "orderId", "type": "string"},
        {"name": "type", "type": "string"},
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "amount", "type": "double"},
        {"name": "sku", "type": "string"},
        {"name": "seq", "type": "long"},
    ],
}
MAPPING = cl.Mapping(
    aggregate_type="order",
    aggregate_id="orderId",
    name="type",
    event_time="at",
    sequence="seq",
    initial=["created"],
    terminal=["shipped"],
)
PROTO_MAPPING = cl.Mapping(
    aggregate_type="order",
    aggregate_id="order_id",
    name="type",
    event_time="at",
    sequence="seq",
)


def _rows(n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(31)
    seq = np.arange(n) % 4
    return {
        "order": np.arange(n) // 4,
        "seq": seq,
        "at": 1_772_000_000_000 + np.arange(n) * 1_000,
        "amount": rng.integers(100, 100_000, n) / 100,
        "sku": rng.integers(0, 500, n),
    }


def avro_values(n: int, schema_id: int) -> list[bytes]:
    import fastavro

    parsed = fastavro.parse_schema(SCHEMA)
    prefix = b"\x00" + schema_id.to_bytes(4, "big")
    data = _rows(n)
    values = []
    for k in range(n):
        out = io.BytesIO()
        out.write(prefix)
        fastavro.schemaless_writer(
            out,
            parsed,
            {
                "orderId": f"{data['order'][k]:08d}",
                "type": TYPES[data["seq"][k]],
                "at": int(data["at"][k]),
                "amount": float(data["amount"][k]),
                "sku": str(data["sku"][k]),
                "seq": int(data["seq"][k]),
            },
        )
        values.append(out.getvalue())
    return values


def _records(values: list[bytes]) -> list:
    n = len(values)
    offsets = np.arange(n, dtype=np.int64)
    stamps = np.full(n, 1_772_000_000_000, dtype=np.int64)
    return [(Partition(0), Records(values, offsets, stamps, n))]


def _fastavro_each(values: list[bytes]) -> list[dict]:
    import fastavro

    parsed = fastavro.parse_schema(SCHEMA)
    out = []
    for value in values:
        body = io.BytesIO(value)
        body.seek(5)
        out.append(fastavro.schemaless_reader(body, parsed, None))
    return out


def _confluent_each(values: list[bytes], deserializer, topic: str) -> list:
    from confluent_kafka.serialization import MessageField, SerializationContext

    ctx = SerializationContext(topic, MessageField.VALUE)
    return [deserializer(v, ctx) for v in values]


def _avro_rows(scale: int, repeat: int, folder: Path) -> list[dict]:
    from confluent_kafka.schema_registry import Schema
    from confluent_kafka.schema_registry._sync.mock_schema_registry_client import (
        MockSchemaRegistryClient,
    )
    from confluent_kafka.schema_registry.avro import AvroDeserializer

    client = MockSchemaRegistryClient({"url": "mock://bench"})
    schema_id = client.register_schema("orders-value", Schema(json.dumps(SCHEMA), "AVRO"))
    (folder / f"{schema_id}.avsc").write_text(json.dumps(SCHEMA))
    values = avro_values(scale, schema_id)
    chunks = _records(values)
    decoder = RegistryValues(Schemas(files=folder, subject="orders-value"))
    ours = measure(lambda: MappedRecords(MAPPING, decoder)(chunks), repeat=repeat)
    events, bad = ours.result
    assert events.height == scale and bad.height == 0, (events.height, bad)
    fast = measure(lambda: _fastavro_each(values), repeat=1)
    records, _, _ = decoder(values)
    records = records.drop(SCHEMA_ID, SCHEMA_VERSION)
    expected = pl.DataFrame(fast.result, schema=records.schema)
    assert records.equals(expected), "answers differ"
    deserializer = AvroDeserializer(client)
    slow = measure(lambda: _confluent_each(values, deserializer, "orders"), repeat=1)
    assert slow.result[-1]["orderId"] == records["orderId"][-1]
    note = "ours: framing, grouping, one container-block read, the mapping; theirs: dicts only"
    return [
        row(
            "Avro topic values -> canonical frame (registry)",
            scale,
            ours,
            "confluent-kafka AvroDeserializer, per message",
            slow,
            goal=">= 10x",
            note=note,
        ),
        row(
            "Avro topic values -> canonical frame (registry)",
            scale,
            ours,
            "fastavro schemaless_reader, per message",
            fast,
            goal=">= 2x",
            note="answers checked equal, field by field",
        ),
    ]


def _proto_rows(scale: int, repeat: int, folder: Path) -> list[dict]:
    from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, timestamp_pb2

    proto = descriptor_pb2.FileDescriptorProto(
        name="bench/order.proto", package="bench", syntax="proto3"
    )
    proto.dependency.append("google/protobuf/timestamp.proto")
    order = proto.message_type.add(name="OrderEvent")
    for number, (name, kind) in enumerate(
        (("order_id", 9), ("type", 9), ("at", 11), ("amount", 1), ("sku", 9), ("seq", 3)), 1
    ):
        field = order.field.add(name=name, number=number, type=kind, label=1)
        if kind == 11:
            field.type_name = ".google.protobuf.Timestamp"
    wkt = descriptor_pb2.FileDescriptorProto()
    timestamp_pb2.DESCRIPTOR.CopyToProto(wkt)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(wkt)
    pool.Add(proto)
    cls = message_factory.GetMessageClass(pool.FindMessageTypeByName("bench.OrderEvent"))
    descriptors = descriptor_pb2.FileDescriptorSet(file=[wkt, proto])
    (folder / "7.desc").write_bytes(descriptors.SerializeToString())
    data = _rows(scale)
    prefix = b"\x00" + (7).to_bytes(4, "big") + b"\x00"  # the file's first message
    values = []
    message = cls()
    for k in range(scale):
        message.order_id = f"{data['order'][k]:08d}"
        message.type = TYPES[data["seq"][k]]
        message.at.FromMilliseconds(int(data["at"][k]))
        message.amount = float(data["amount"][k])
        message.sku = str(data["sku"][k])
        message.seq = int(data["seq"][k])
        values.append(prefix + message.SerializeToString())
    chunks = _records(values)
    decoder = RegistryValues(Schemas(files={7: folder / "7.desc"}))
    ours = measure(lambda: MappedRecords(PROTO_MAPPING, decoder)(chunks), repeat=repeat)
    events, bad = ours.result
    assert events.height == scale and bad.height == 0, (events.height, bad)
    deserializer = ProtobufDeserializer(cls, {"use.deprecated.format": False})
    theirs = measure(lambda: _confluent_each(values, deserializer, "orders-pb"), repeat=1)
    assert theirs.result[-1].order_id == events["aggregate_id"][-1]
    return [
        row(
            "Protobuf topic values -> canonical frame (registry)",
            scale,
            ours,
            "confluent-kafka ProtobufDeserializer, per message",
            theirs,
            goal="stated",
            note="ours: upb, one parse per schema group, a column per field",
        )
    ]


def run(scale: int, quick: bool) -> list[dict]:
    repeat = 1 if quick or scale >= 1_000_000 else 3
    folder = Path(tempfile.mkdtemp(prefix="cl-bench-registry-"))
    try:
        (folder / "pb").mkdir()
        return _avro_rows(scale, repeat, folder) + _proto_rows(scale, repeat, folder / "pb")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str]) -> None:
    scale = int(argv[0]) if argv else MAX_SCALE
    for result in run(scale, quick=False):
        print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
