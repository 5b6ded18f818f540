"""An Avro topic on Spark: each batch of records decoded on the executors by the local source's
own registry decoder, so Spark reads what ``cl.open(url, registry=...).events()`` reads."""

from __future__ import annotations

import json

import pytest

import concursus_lab as cl
import concursus_lab.spark as cls
from tests.integration.test_registry import ORDERS, V1, V2, _at, _produce, _topic

confluent_kafka = pytest.importorskip("confluent_kafka")
from confluent_kafka.schema_registry import SchemaRegistryClient  # noqa: E402
from confluent_kafka.serialization import MessageField, SerializationContext  # noqa: E402

from tests.registry_writers import AvroSerializer  # noqa: E402 (subjects by topic)

pytestmark = [pytest.mark.kafka, pytest.mark.registry, pytest.mark.spark, pytest.mark.slow]


@pytest.fixture(scope="module")
def spark(cassandra_address):
    session = cls.session("local[2]", cassandra=cassandra_address, memory="1g")
    yield session
    session.stop()


def test_spark_reads_an_avro_topic_as_the_local_source_does(spark, kafka_address, registry_url):
    topic = _topic(kafka_address, "avro-spark")
    client = SchemaRegistryClient({"url": registry_url})
    ctx = SerializationContext(topic, MessageField.VALUE)
    old, new = AvroSerializer(client, json.dumps(V1)), AvroSerializer(client, json.dumps(V2))
    rows = [
        {
            "orderId": f"o{n % 5}",
            "type": "created",
            "at": _at(n),
            "amount": float(n),
            "status": "NEW",
            "currency": "GBP",
            "note": None,
        }
        for n in range(40)
    ]
    values = [(old if n < 20 else new)(row, ctx) for n, row in enumerate(rows)]
    _produce(kafka_address, topic, [*values, values[3][:-2], b"not framed"])
    url = f"kafka://{kafka_address}/{topic}"
    local = cl.open(url, registry=registry_url, mapping=ORDERS)
    with pytest.warns(UserWarning, match="2 record"):
        expected = local.events(duplicates="keep")
    read = cls.read(url, spark, registry=registry_url, mapping=ORDERS)
    got = read.to_polars()
    assert got.columns == expected.columns
    assert got.equals(expected)
    assert sorted(read.quarantine.toPandas()["kafka_offset"]) == [40, 41]
    some = cls.read(url, spark, aggregate_ids=["o1"], registry=registry_url, mapping=ORDERS)
    assert some.to_polars()["aggregate_id"].unique().to_list() == ["o1"]


def test_spark_reads_a_json_topic_of_your_own_shape_as_the_local_source_does(spark, kafka_address):
    topic = _topic(kafka_address, "json-own-spark")
    sent = [
        json.dumps({"orderId": f"o{n % 3}", "type": "paid", "at": f"2026-05-04T10:00:0{n}Z"})
        for n in range(6)
    ]
    _produce(kafka_address, topic, [v.encode() for v in sent] + [b"[1]"], key=b"k")
    url = f"kafka://{kafka_address}/{topic}"
    with pytest.warns(UserWarning, match="1 record"):
        expected = cl.open(url, mapping=ORDERS).events(duplicates="keep")
    assert expected.height == 6
    read = cls.read(url, spark, mapping=ORDERS)
    assert read.to_polars().equals(expected)
    assert read.quarantine.toPandas()["kafka_offset"].tolist() == [6]
    with pytest.raises(cl.exceptions.SourceError, match="takes none"):
        cls.read("cassandra://127.0.0.1:9042/ks", spark, mapping=ORDERS)
