"""A schema registry killed with SIGKILL in the middle of a read of an Avro topic.

The registry is the suite's own (:mod:`tests.faults.conftest`); the topic is on the shared
Kafka. The read is made to meet the outage at a fixed point, whatever the speed of the
machine: the registry is killed right after the read fetched its first writer schema, so the
second writer schema of the topic cannot be had. What must hold: nothing is dropped without a
word: the records of the first schema are handed over in the ``IncompleteRead``'s
``.partial``, those of the second are in ``.quarantine`` with their schema id and why, and
the message says what to do.
"""

from __future__ import annotations

import json
import uuid

import pytest

import concursus_lab as cl
from concursus_lab.sources.registry import schemas as registry_schemas

confluent_kafka = pytest.importorskip("confluent_kafka")
from confluent_kafka.schema_registry import SchemaRegistryClient  # noqa: E402
from confluent_kafka.serialization import MessageField, SerializationContext  # noqa: E402

from tests.registry_writers import AvroSerializer  # noqa: E402 (subjects by topic)

pytestmark = [pytest.mark.slow, pytest.mark.kafka]

V1 = {
    "type": "record",
    "name": "Ping",
    "fields": [{"name": "id", "type": "string"}, {"name": "at", "type": "long"}],
}
V2 = {**V1, "fields": [*V1["fields"], {"name": "note", "type": "string", "default": ""}]}


def test_registry_killed_between_two_schemas_of_a_read(
    scratch_registry, kafka_address, monkeypatch, held
):
    if not scratch_registry.answering():
        scratch_registry.start()
    url = f"http://{scratch_registry.address}/apis/ccompat/v7"
    topic = f"pings-{uuid.uuid4().hex[:8]}"
    cl.open(f"kafka://{kafka_address}/{topic}", create=True, partitions=1)
    client = SchemaRegistryClient({"url": url})
    ctx = SerializationContext(topic, MessageField.VALUE)
    old, new = AvroSerializer(client, json.dumps(V1)), AvroSerializer(client, json.dumps(V2))
    producer = confluent_kafka.Producer({"bootstrap.servers": kafka_address})
    for n in range(300):
        write = old if n < 200 else new
        producer.produce(topic, value=write({"id": f"p{n % 7}", "at": 1_777_888_800 + n}, ctx))
    assert producer.flush(30) == 0
    source = cl.open(
        f"kafka://{kafka_address}/{topic}",
        registry=url,
        reader=V2,  # so the read asks the registry for nothing but the writer schemas
        mapping=cl.Mapping(
            aggregate_type="ping",
            aggregate_id="id",
            name="id",
            event_time="at",
            time_unit="s",
            sequence="kafka.offset",
        ),
    )
    fetched = []
    fetch = registry_schemas.Schemas._fetch

    def fetch_then_kill(self, ref):
        found = fetch(self, ref)
        fetched.append(ref)
        if len(fetched) == 1:
            scratch_registry.kill()  # gone after the first writer schema
        return found

    monkeypatch.setattr(registry_schemas.Schemas, "_fetch", fetch_then_kill)
    with pytest.warns(UserWarning, match="100 record"), pytest.raises(cl.IncompleteRead) as stop:
        source.events(duplicates="keep")
    partial = stop.value.partial
    assert partial.height == 200 and partial["kafka_offset"].to_list() == list(range(200))
    quarantine = source.quarantine
    assert quarantine["kafka_offset"].to_list() == list(range(200, 300))
    reason = quarantine["reason"][0]
    assert "could not be fetched" in reason and "cannot reach the schema registry" in reason
    said = str(stop.value)
    assert "could not decode 100 record(s)" in said and "`.partial`" in said, said
    assert "services start registry" in said, said
    held("IncompleteRead: 200 events in .partial, the 100 of the schema not fetched quarantined")
