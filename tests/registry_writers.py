"""The tests' writers (and one reader) of registry-framed records: confluent-kafka's own
serializers, each told to register its schema under ``<topic>-value`` (the TopicNameStrategy
every registry knows), and its Avro deserializer told the same.

confluent-kafka 2.16.2 made the ASSOCIATED strategy its default: a serializer first asks the
registry's associations API, which Apicurio 3.3 does not have (404), and the request after it
never got an answer, so a fresh install hung in the first registry test. Saying the strategy
keeps the tests' subjects what the tests (and our registry reader) expect on every version.
"""

from __future__ import annotations

from typing import Any

from confluent_kafka.schema_registry import topic_subject_name_strategy
from confluent_kafka.schema_registry.avro import AvroDeserializer as _AvroReader
from confluent_kafka.schema_registry.avro import AvroSerializer as _Avro
from confluent_kafka.schema_registry.json_schema import JSONSerializer as _Json
from confluent_kafka.schema_registry.protobuf import ProtobufSerializer as _Protobuf

#: The serializer setting that names a value's subject ``<topic>-value``.
TOPIC_SUBJECTS = {"subject.name.strategy": topic_subject_name_strategy}


def _with_topic_subjects(conf: dict | None) -> dict:
    return {**TOPIC_SUBJECTS, **(conf or {})}


def AvroSerializer(client: Any, schema: str, conf: dict | None = None) -> _Avro:
    """confluent-kafka's AvroSerializer, subjects named by topic."""
    return _Avro(client, schema, conf=_with_topic_subjects(conf))


def ProtobufSerializer(message: type, client: Any, conf: dict | None = None) -> _Protobuf:
    """confluent-kafka's ProtobufSerializer, subjects named by topic."""
    return _Protobuf(message, client, _with_topic_subjects(conf))


def JSONSerializer(schema: str, client: Any, conf: dict | None = None) -> _Json:
    """confluent-kafka's JSONSerializer, subjects named by topic."""
    return _Json(schema, client, conf=_with_topic_subjects(conf))


def AvroDeserializer(client: Any) -> _AvroReader:
    """confluent-kafka's AvroDeserializer, subjects named by topic."""
    return _AvroReader(client, conf=dict(TOPIC_SUBJECTS))
