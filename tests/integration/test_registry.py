"""Avro, Protobuf and JSON Schema topics against the real Kafka and the real Apicurio registry.

The records are produced by confluent-kafka's own serializers (what teams run in production),
in two schema versions of one subject, and must read back equal, field by field.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import urllib.request
import uuid
import warnings

import polars as pl
import pytest

import concursus_lab as cl
from concursus_lab.sources.registry.topic import RegistryTopic

confluent_kafka = pytest.importorskip("confluent_kafka")  # the `registry` extra
from confluent_kafka.schema_registry import SchemaRegistryClient  # noqa: E402
from confluent_kafka.serialization import MessageField, SerializationContext  # noqa: E402

from tests.registry_writers import (  # noqa: E402 (subjects by topic)
    AvroSerializer,
    JSONSerializer,
    ProtobufSerializer,
)

pytestmark = [pytest.mark.kafka, pytest.mark.registry]

UTC = dt.UTC
V1 = {
    "type": "record",
    "name": "OrderEvent",
    "namespace": "shop",
    "fields": [
        {"name": "orderId", "type": "string"},
        {"name": "type", "type": "string"},
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "amount", "type": "double"},
        {"name": "status", "type": {"type": "enum", "name": "Status", "symbols": ["NEW", "OK"]}},
    ],
}
V2 = {
    **V1,
    "fields": [
        *V1["fields"],
        {"name": "currency", "type": "string", "default": "EUR"},
        {"name": "note", "type": ["null", "string"], "default": None},
    ],
}
ORDERS = cl.Mapping(
    aggregate_type="order",
    aggregate_id="orderId",
    name="type",
    event_time="at",
    sequence="kafka.offset",
)


def _topic(kafka_address: str, stem: str) -> str:
    name = f"{stem}-{uuid.uuid4().hex[:8]}"
    cl.open(f"kafka://{kafka_address}/{name}", create=True, partitions=1)
    return name


def _produce(kafka_address: str, topic: str, values: list, key=None) -> None:
    producer = confluent_kafka.Producer({"bootstrap.servers": kafka_address})
    for item in values:
        value, headers = item if isinstance(item, tuple) else (item, None)
        producer.produce(topic, value=value, key=key, headers=headers)
    assert producer.flush(30) == 0


def _at(n: int) -> dt.datetime:
    return dt.datetime(2026, 5, 4, 10, 0, tzinfo=UTC) + dt.timedelta(seconds=n, milliseconds=123)


def test_avro_of_two_schema_versions_reads_back_field_by_field(kafka_address, registry_url):
    topic = _topic(kafka_address, "avro-orders")
    client = SchemaRegistryClient({"url": registry_url})
    ctx = SerializationContext(topic, MessageField.VALUE)
    first = AvroSerializer(client, json.dumps(V1))
    second = AvroSerializer(client, json.dumps(V2))
    sent = [
        {"orderId": "o1", "type": "created", "at": _at(0), "amount": 12.5, "status": "NEW"},
        {"orderId": "o1", "type": "paid", "at": _at(1), "amount": 12.5, "status": "OK"},
    ]
    newer = [
        {
            "orderId": "o2",
            "type": "created",
            "at": _at(2),
            "amount": 3.0,
            "status": "NEW",
            "currency": "GBP",
            "note": "gift",
        },
        {
            "orderId": "o2",
            "type": "paid",
            "at": _at(3),
            "amount": 3.0,
            "status": "OK",
            "currency": "GBP",
            "note": None,
        },
    ]
    _produce(kafka_address, topic, [first(r, ctx) for r in sent] + [second(r, ctx) for r in newer])

    source = cl.open(f"kafka://{kafka_address}/{topic}", registry=registry_url, mapping=ORDERS)
    assert isinstance(source, RegistryTopic)
    events = source.events()
    assert source.quarantine.height == 0
    assert events["aggregate_id"].to_list() == ["o1", "o1", "o2", "o2"]
    assert events["name"].to_list() == ["created", "paid", "created", "paid"]
    assert events["event_timestamp"].to_list() == [_at(n) for n in range(4)]
    # the writer schema's version under the subject, as the registry numbers it
    assert events["version"].to_list() == ["1", "1", "2", "2"]
    params = [json.loads(p) for p in events["parameters"].to_list()]
    # v1 records are read as v2: the added fields hold the reader's defaults
    assert params[0] == {"amount": 12.5, "currency": "EUR", "status": "NEW"}
    assert params[1] == {"amount": 12.5, "currency": "EUR", "status": "OK"}
    assert params[2] == {"amount": 3.0, "currency": "GBP", "note": "gift", "status": "NEW"}
    assert params[3] == {"amount": 3.0, "currency": "GBP", "status": "OK"}

    # the schema id in a header, the value all body (Confluent's header format, id form)
    def in_header(payload, ctx, schema_id):
        ctx.headers.append(("__value_schema_id", schema_id.id_to_bytes()))
        return payload

    headed = AvroSerializer(client, json.dumps(V2), conf={"schema.id.serializer": in_header})
    hctx = SerializationContext(topic, MessageField.VALUE, [])
    row = {**newer[0], "orderId": "o3", "at": _at(4)}
    value = headed(row, hctx)
    _produce(kafka_address, topic, [(value, hctx.headers)])
    again = source.events(aggregate_ids="o3")
    assert again["event_timestamp"].to_list() == [_at(4)]
    assert json.loads(again["parameters"][0])["note"] == "gift"


def test_since_and_follow_decode_the_same_way(kafka_address, registry_url):
    topic = _topic(kafka_address, "avro-follow")
    client = SchemaRegistryClient({"url": registry_url})
    ctx = SerializationContext(topic, MessageField.VALUE)
    write = AvroSerializer(client, json.dumps(V1))
    row = {"orderId": "o1", "type": "created", "at": _at(0), "amount": 1.0, "status": "NEW"}
    _produce(kafka_address, topic, [write(row, ctx)])
    source = cl.open(f"kafka://{kafka_address}/{topic}", registry=registry_url, mapping=ORDERS)
    stream = source.follow(poll_timeout=0.2, idle_timeout=20)
    _produce(kafka_address, topic, [write({**row, "type": "paid", "at": _at(5)}, ctx)])
    frame = next(stream)
    stream.close()
    assert frame["name"].to_list() == ["paid"]
    assert frame["event_timestamp"].to_list() == [_at(5)]
    later = source.events(since=dt.datetime.now(UTC) + dt.timedelta(hours=1))
    assert later.height == 0 and later.columns == source.events().columns


def _order_proto(version: int):
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    proto = descriptor_pb2.FileDescriptorProto(
        name=f"shop/order_v{version}_{uuid.uuid4().hex[:6]}.proto", package="shop", syntax="proto3"
    )
    proto.dependency.append("google/protobuf/timestamp.proto")
    other = proto.message_type.add(name="Other")
    other.field.add(name="x", number=1, type=9, label=1)
    order = proto.message_type.add(name="OrderEvent")
    order.field.add(name="order_id", number=1, type=9, label=1)
    order.field.add(name="type", number=2, type=9, label=1)
    order.field.add(name="at", number=3, type=11, label=1, type_name=".google.protobuf.Timestamp")
    order.field.add(name="amount", number=4, type=1, label=1)
    order.field.add(name="tags", number=5, type=9, label=3)
    if version == 2:
        order.field.add(name="currency", number=6, type=9, label=1)
    pool = descriptor_pool.DescriptorPool()
    from google.protobuf import timestamp_pb2

    wkt = descriptor_pb2.FileDescriptorProto()
    timestamp_pb2.DESCRIPTOR.CopyToProto(wkt)
    pool.Add(wkt)
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("shop.OrderEvent"))


def test_protobuf_of_two_schema_versions_reads_back_field_by_field(kafka_address, registry_url):
    topic = _topic(kafka_address, "proto-orders")
    client = SchemaRegistryClient({"url": registry_url})
    ctx = SerializationContext(topic, MessageField.VALUE)
    old, new = _order_proto(1), _order_proto(2)
    first = ProtobufSerializer(old, client, {"use.deprecated.format": False})
    second = ProtobufSerializer(new, client, {"use.deprecated.format": False})
    a = old(order_id="o1", type="created", amount=12.5, tags=["x", "y"])
    a.at.FromDatetime(_at(0))
    b = new(order_id="o1", type="paid", amount=12.5, currency="GBP")
    b.at.FromDatetime(_at(1))
    _produce(kafka_address, topic, [first(a, ctx), second(b, ctx)])
    # the message is the file's second: its values carry the message index [1] (02 02)
    source = cl.open(
        f"kafka://{kafka_address}/{topic}",
        registry=registry_url,
        mapping=cl.Mapping(
            aggregate_type="order",
            aggregate_id="order_id",
            name="type",
            event_time="at",
            parameters=["amount", "tags", "currency"],
            sequence="kafka.offset",
        ),
    )
    events = source.events()
    assert source.quarantine.height == 0
    assert events["name"].to_list() == ["created", "paid"]
    assert events["event_timestamp"].to_list() == [_at(0), _at(1)]
    assert [json.loads(p) for p in events["parameters"].to_list()] == [
        # read as the newest version: proto3 reads the field v1 lacks as its default
        {"amount": 12.5, "currency": "", "tags": ["x", "y"]},
        {"amount": 12.5, "currency": "GBP", "tags": []},
    ]
    assert events["version"].to_list() == ["1", "2"]


def test_json_schema_values_are_plain_json(kafka_address, registry_url):
    topic = _topic(kafka_address, "json-orders")
    client = SchemaRegistryClient({"url": registry_url})
    schema = {
        "type": "object",
        "properties": {
            "orderId": {"type": "string"},
            "type": {"type": "string"},
            "at": {"type": "string"},
            "amount": {"type": "number"},
        },
    }
    write = JSONSerializer(json.dumps(schema), client)
    ctx = SerializationContext(topic, MessageField.VALUE)
    sent = {"orderId": "o1", "type": "created", "at": "2026-05-04T10:00:00.123Z", "amount": 2.5}
    _produce(kafka_address, topic, [write(sent, ctx)])
    source = cl.open(f"kafka://{kafka_address}/{topic}", registry=registry_url, mapping=ORDERS)
    events = source.events()
    assert events["event_timestamp"].to_list() == [_at(0)]
    assert json.loads(events["parameters"][0]) == {"amount": 2.5}


def test_what_cannot_be_decoded_is_quarantined_with_its_schema_id(kafka_address, registry_url):
    topic = _topic(kafka_address, "avro-bad")
    client = SchemaRegistryClient({"url": registry_url})
    ctx = SerializationContext(topic, MessageField.VALUE)
    good = AvroSerializer(client, json.dumps(V1))
    row = {"orderId": "o1", "type": "created", "at": _at(0), "amount": 1.0, "status": "NEW"}
    value = good(row, ctx)
    # a schema registered under another subject, then deleted for good
    doomed = {**V1, "name": "Doomed", "fields": V1["fields"][:2]}
    subject = f"{topic}-doomed"
    doomed_id = client.register_schema(
        subject, confluent_kafka.schema_registry.Schema(json.dumps(doomed), "AVRO")
    )
    for permanent in (False, True):
        client.delete_subject(subject, permanent=permanent)
    unknown = b"\x00" + (2**31 - 7).to_bytes(4, "big") + value[5:]
    deleted = b"\x00" + doomed_id.to_bytes(4, "big") + b"\x04o1\x0ecreated"
    _produce(
        kafka_address,
        topic,
        [
            value,
            value[:-3],
            b'{"orderId": "o1"}',
            unknown,
            deleted,
            value + b"\x00\x01",
            value,
        ],
    )
    source = cl.open(f"kafka://{kafka_address}/{topic}", registry=registry_url, mapping=ORDERS)
    with pytest.warns(UserWarning, match="5 record"):
        events = source.events(duplicates="keep")
    assert events["kafka_offset"].to_list() == [0, 6]
    reasons = dict(zip(source.quarantine["kafka_offset"], source.quarantine["reason"], strict=True))
    assert sorted(reasons) == [1, 2, 3, 4, 5]
    assert reasons[1].startswith(f"schema id {value[1:5].hex() and int.from_bytes(value[1:5])}: ")
    assert "does not match its schema" in reasons[1] and "does not match" in reasons[5]
    assert "not framed by a schema registry" in reasons[2]
    assert f"schema id {2**31 - 7} is not in the registry" in reasons[3]
    assert f"schema id {doomed_id} is not in the registry" in reasons[4]
    assert source.quarantine["raw"][0] == value[:-3]


def test_append_copies_a_sample_into_an_avro_topic(kafka_address, registry_url):
    topic = _topic(kafka_address, "avro-parcels")
    source = cl.open(f"kafka://{kafka_address}/{topic}", registry=registry_url)
    sample = cl.sample.parcels()
    assert source.append(sample) == sample.height
    back = source.events(duplicates="keep")
    columns = list(cl.SCHEMA)
    stamped = sample.select(columns).sort("aggregate_id", "event_timestamp", "stream_id")
    got = back.select(columns).sort("aggregate_id", "event_timestamp", "stream_id")
    assert got.drop("processing_id").equals(stamped.drop("processing_id"))
    assert got["processing_id"].null_count() == 0
    # the values are what Confluent's own deserializer reads
    from tests.registry_writers import AvroDeserializer

    consumer = confluent_kafka.Consumer(
        {"bootstrap.servers": kafka_address, "group.id": topic, "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    message = None
    for _ in range(60):
        message = consumer.poll(1.0)
        if message is not None and message.error() is None:
            break
    consumer.close()
    read = AvroDeserializer(SchemaRegistryClient({"url": registry_url}))(
        message.value(), SerializationContext(topic, MessageField.VALUE)
    )
    assert read["aggregateId"] in set(sample["aggregate_id"])
    answer = urllib.request.urlopen(f"{registry_url}/subjects/{topic}-value/versions/latest")
    assert json.loads(answer.read())["version"] == 1


def test_local_schema_files_read_without_a_registry(kafka_address, tmp_path):
    import fastavro

    topic = _topic(kafka_address, "avro-offline")
    (tmp_path / "41.avsc").write_text(json.dumps(V1))
    body = io.BytesIO()
    row = {"orderId": "o9", "type": "created", "at": _at(0), "amount": 1.0, "status": "OK"}
    fastavro.schemaless_writer(body, fastavro.parse_schema(V1), row)
    _produce(
        kafka_address,
        topic,
        [
            b"\x00" + (41).to_bytes(4, "big") + body.getvalue(),
            b"\x00" + (42).to_bytes(4, "big") + body.getvalue(),
        ],
    )
    source = cl.open(f"kafka://{kafka_address}/{topic}", schemas=tmp_path, mapping=ORDERS)
    with pytest.warns(UserWarning):
        events = source.events()
    assert events["aggregate_id"].to_list() == ["o9"] and events["version"].to_list() == ["41"]
    assert "schema id 42 is not among the local schema files (41)" in source.quarantine["reason"][0]
    assert pl.Series(source.quarantine["kafka_offset"]).to_list() == [1]


def test_the_registry_can_come_from_the_environment(kafka_address, registry_url, monkeypatch):
    topic = _topic(kafka_address, "avro-env")
    source = cl.open(f"kafka://{kafka_address}/{topic}", registry=registry_url)
    source.append(cl.sample.parcels().head(5))
    monkeypatch.setenv("CONCURSUS_LAB_REGISTRY_URL", registry_url)
    again = cl.open(f"kafka+registry://{kafka_address}/{topic}")
    assert isinstance(again, RegistryTopic) and again.registry.url == registry_url
    assert again.events().height == 5
    assert "Concursus's Avro layout" in repr(again)
    monkeypatch.setenv("CONCURSUS_LAB_REGISTRY_URL", "http://127.0.0.1:9/apis/ccompat/v7")
    gone = cl.open(f"kafka://{kafka_address}/{topic}", registry=True)
    with pytest.warns(UserWarning), pytest.raises(cl.IncompleteRead) as stop:
        gone.events()
    assert stop.value.partial.height == 0
    assert "cannot reach the schema registry at http://127.0.0.1:9" in str(stop.value)


def test_the_shops_export_as_an_avro_topic_is_the_history_the_csv_gives(
    kafka_address, registry_url, tmp_path
):
    """The export of notebook 08, produced by confluent-kafka's AvroSerializer as the shop's
    producer would, read through the same mapping: the same events as from its CSV."""
    from concursus_lab.sample import ORDERS as SHOP

    export = cl.sample.orders_export(150, seed=31)
    text = {"type": ["null", "string"], "default": None}
    schema = {
        "type": "record",
        "name": "OrderRow",
        "namespace": "shop",
        "fields": [
            {"name": "order_id", "type": "string"},
            {"name": "event_no", "type": "long"},
            {"name": "event_type", "type": "string"},
            {"name": "occurred_at", "type": "string"},
            {"name": "ingested_at", "type": "string"},
            {"name": "amount", "type": ["null", "double"]},
            {"name": "sku", **text},
            {"name": "channel", **text},
        ],
    }
    name = f"shop-orders-{uuid.uuid4().hex[:8]}"
    cl.open(f"kafka://{kafka_address}/{name}", create=True, partitions=3)
    write = AvroSerializer(SchemaRegistryClient({"url": registry_url}), json.dumps(schema))
    ctx = SerializationContext(name, MessageField.VALUE)
    producer = confluent_kafka.Producer({"bootstrap.servers": kafka_address})
    for row in export.iter_rows(named=True):
        producer.produce(name, key=row["order_id"], value=write(row, ctx))
    assert producer.flush(30) == 0
    export.write_csv(tmp_path / "orders.csv")
    columns = [c for c in cl.SCHEMA if c != "version"]
    order = ["aggregate_id", "event_timestamp", "processing_timestamp", "name"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", cl.exceptions.ConflictingDeliveries)
        expected = cl.open(tmp_path / "orders.csv", mapping=SHOP).events(duplicates="keep")
        topic = cl.open(f"kafka://{kafka_address}/{name}", registry=registry_url, mapping=SHOP)
        got = topic.events(duplicates="keep")
    assert topic.quarantine.height == 0 and got.height == export.height
    assert got.select(columns).sort(order).equals(expected.select(columns).sort(order))
    assert set(got["version"]) == {"1"}  # the writer schema's version under the subject
