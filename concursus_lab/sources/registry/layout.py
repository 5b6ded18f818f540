"""Concursus events as Avro records: the schema ``append`` registers, and the mapping that reads it.

A registry topic opened without a mapping holds Concursus's own events in this layout, so a
local store or a sample can be copied into an Avro topic and read back unchanged
(``cl.copy(cl.open("data/parcels"), cl.open("kafka://.../parcels-avro", registry=...))``).
Times are microseconds (the canonical frame's precision), parameters the frame's own JSON
object text (keys sorted, numbers exact), the processing id and time both kept.

>>> [f["name"] for f in SCHEMA["fields"]][:4]
['aggregateType', 'aggregateId', 'eventTimestamp', 'streamId']
>>> MAPPING.identity
'concursus'
"""

from __future__ import annotations

import io
from typing import Any

import polars as pl

from concursus_lab.common.optional import require
from concursus_lab.mapping import Mapping

_MICROS = {"type": "long", "logicalType": "timestamp-micros"}

#: The Avro schema of one Concursus event (registered under the topic's value subject).
SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "ConcursusEvent",
    "namespace": "io.github.concursus_lab",
    "doc": "One Concursus event, as concursus-lab writes it to an Avro topic.",
    "fields": [
        {"name": "aggregateType", "type": "string"},
        {"name": "aggregateId", "type": "string"},
        {"name": "eventTimestamp", "type": _MICROS},
        {"name": "streamId", "type": "string", "default": ""},
        {"name": "processingId", "type": ["null", "string"], "default": None},
        {"name": "processingTimestamp", "type": _MICROS},
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string", "default": "0"},
        {"name": "parameters", "type": "string", "doc": "a JSON object, keys sorted"},
        {"name": "characteristics", "type": "int", "default": 0},
    ],
}

#: How a record of :data:`SCHEMA` maps onto the canonical frame (every column its own).
MAPPING = Mapping(
    aggregate_type=pl.col("aggregateType"),
    aggregate_id="aggregateId",
    name="name",
    event_time="eventTimestamp",
    processing_time="processingTimestamp",
    processing_id="processingId",
    stream_id="streamId",
    version="version",
    parameters="parameters",
    characteristics="characteristics",
    identity="concursus",
)

_COLUMNS = {
    "aggregateType": "aggregate_type",
    "aggregateId": "aggregate_id",
    "eventTimestamp": "event_timestamp",
    "streamId": "stream_id",
    "processingId": "processing_id",
    "processingTimestamp": "processing_timestamp",
    "name": "name",
    "version": "version",
    "parameters": "parameters",
    "characteristics": "characteristics",
}


def encoder(schema_id: int):
    """A function of a canonical frame that gives each event's framed Avro value
    (``0x00`` + ``schema_id`` + the body), as a Binary Series."""
    fastavro = require("fastavro", needed_by="Writing Avro topics", extra="registry")
    parsed = fastavro.parse_schema(SCHEMA)
    prefix = b"\x00" + schema_id.to_bytes(4, "big")
    write = fastavro.schemaless_writer

    def encode(frame: pl.DataFrame) -> pl.Series:
        rows = frame.select(
            [
                (pl.col(c).dt.epoch("us") if "timestamp" in c else pl.col(c)).alias(avro)
                for avro, c in _COLUMNS.items()
            ]
        ).iter_rows(named=True)
        out = []
        for row in rows:
            body = io.BytesIO()
            body.write(prefix)
            write(body, parsed, row)
            out.append(body.getvalue())
        return pl.Series("value", out, dtype=pl.Binary)

    return encode
