"""Upcasting by a schema-registry topic's writer schema version.

A registry topic's ``version`` is the writer schema's version under the topic's subject
(``docs/versions.md``). Avro resolution already reads a v1 record as the newest schema
(an added field holds its default); what it cannot say is that v1's ``paid`` is today's
``settled``, nor that a v1 ``amount`` was in cents. Upcasters keyed on the registry's
version do, and the fold over the topic is the fold over the same orders written in v2.
"""

from __future__ import annotations

import json

import polars as pl
import pytest

import concursus_lab as cl
from tests.integration.test_registry import ORDERS, V1, V2, _at, _produce, _topic

confluent_kafka = pytest.importorskip("confluent_kafka")  # the `registry` extra
from confluent_kafka.schema_registry import SchemaRegistryClient  # noqa: E402
from confluent_kafka.serialization import MessageField, SerializationContext  # noqa: E402

from tests.registry_writers import AvroSerializer  # noqa: E402 (subjects by topic)

pytestmark = [pytest.mark.kafka, pytest.mark.registry]

order = cl.EventTypes("order")


@order.initial(name="created", version="2")
class Created:
    amount: float
    currency: str
    status: str


@order.event(name="settled", version="2")
class Settled:
    amount: float
    currency: str
    status: str


def _euros(p: pl.DataFrame) -> pl.DataFrame:
    return p.with_columns(pl.col("amount") / 100)  # v1 wrote cents


order.upcast(("created", "1"), to=Created, columns=_euros)
order.upcast(("paid", "1"), to=Settled, columns=_euros)  # renamed in v2


def total(state: dict | None, event) -> dict:
    state = state or {"amount": 0.0, "settled": False}
    match event:
        case Created(amount=amount, currency=currency):
            return {"amount": amount, "currency": currency, "settled": False}
        case Settled():
            return {**state, "settled": True}


def test_a_registry_topic_s_writer_versions_are_upcast(kafka_address, registry_url):
    topic = _topic(kafka_address, "avro-upcast")
    client = SchemaRegistryClient({"url": registry_url})
    ctx = SerializationContext(topic, MessageField.VALUE)
    first, second = AvroSerializer(client, json.dumps(V1)), AvroSerializer(client, json.dumps(V2))
    old = [
        {"orderId": "o1", "type": "created", "at": _at(0), "amount": 1250.0, "status": "NEW"},
        {"orderId": "o1", "type": "paid", "at": _at(1), "amount": 1250.0, "status": "OK"},
    ]
    new = [
        {"orderId": "o2", "type": "created", "at": _at(2), "amount": 3.0, "status": "NEW",
         "currency": "GBP", "note": None},
        {"orderId": "o2", "type": "settled", "at": _at(3), "amount": 3.0, "status": "OK",
         "currency": "GBP", "note": None},
    ]  # fmt: skip
    _produce(kafka_address, topic, [first(r, ctx) for r in old] + [second(r, ctx) for r in new])

    source = cl.open(f"kafka://{kafka_address}/{topic}", registry=registry_url, mapping=ORDERS)
    events = source.events()
    assert events["version"].to_list() == ["1", "1", "2", "2"]
    folded = cl.state_at(events, total, types=order)
    assert folded.counts["upcast"] == 2 and folded.counts["undecodable"] == 0
    assert folded.states == {
        "o1": {"amount": 12.5, "currency": "EUR", "settled": True},
        "o2": {"amount": 3.0, "currency": "GBP", "settled": True},
    }
    names = cl.history(events, "o1", types=order).select("name", "version").rows()
    assert names == [("created", "2"), ("settled", "2")]
