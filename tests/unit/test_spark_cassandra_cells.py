"""The Spark connector's Arrow columns decode to what the driver's bytes decode to.

On Spark the connector hands each batch of ``Event`` rows over as Arrow columns (strings,
a timestamp, the time UUID as text, ``map<string, string>``, an int); they are read as they
are (:func:`concursus_lab.spark.cassandra.cells_of`), not written back into the bytes
Cassandra sent, and the codec's own rules (:func:`~concursus_lab.sources.cassandra.codec.
checked`) then decide what is an event. Both roads must give the same events and the same
quarantine, reasons included.
"""

from __future__ import annotations

import datetime as dt
import uuid

import pyarrow as pa
import pytest

pytest.importorskip("cassandra")

from concursus_lab.frame.timeuuid import time_uuid
from concursus_lab.sources.cassandra.codec import (
    CQL_COLUMNS,
    CQL_TYPES,
    checked,
    decode_rows,
)
from concursus_lab.sources.cassandra.raw_cells import as_sent
from concursus_lab.spark.cassandra import cells_of

T0 = dt.datetime(2026, 3, 2, 9, 0, 0, 123000)


def row(i: int, **changes) -> dict:
    at = T0 + dt.timedelta(minutes=i)
    base = {
        "aggregateType": "parcel",
        "aggregateId": f"p{i % 7}",
        "eventTimestamp": at,
        "streamId": "" if i % 3 else "s",
        "processingId": str(uuid.UUID(time_uuid(at.replace(tzinfo=dt.UTC)))),
        "name": "loaded",
        "version": "0",
        "parameters": {"truckId": f'"T{i}"', "weight": str(i)},
        "characteristics": i % 3,
    }
    return base | changes


ROWS = [row(i) for i in range(40)] + [
    row(40, parameters={}),  # an empty map
    row(41, parameters=None, version=None, characteristics=None),  # nulls read as defaults
    row(42, parameters={"kg": "1.50", "big": "12345678901234567890", "z": "-0"}),  # exact
    row(43, parameters={"note": '"a, b}"', "nested": '{"a":[1,{"b":null}]}'}),
    row(44, parameters={"bad": "not json"}),  # quarantined, with its reason
    row(45, parameters={"bad": "1,}"}),
    row(46, name=""),  # an empty name
    row(47, characteristics=7),
    row(48, parameters={'k"ey': '"needs escaping"'}),
]


def connector_batch(rows: list[dict]) -> pa.RecordBatch:
    """The rows as the connector hands them to a Python worker (lower-cased names)."""
    types = {
        "timestamp": pa.timestamp("us", "UTC"),
        "timeuuid": pa.string(),
        "map<text, text>": pa.map_(pa.string(), pa.string()),
        "int": pa.int32(),
        "text": pa.string(),
    }
    arrays = []
    for name, cql in zip(CQL_COLUMNS, CQL_TYPES, strict=True):
        values = [r[name] for r in rows]
        if cql == "timestamp":
            values = [v.replace(tzinfo=dt.UTC) for v in values]
        if cql.startswith("map"):
            values = [None if v is None else list(v.items()) for v in values]
        arrays.append(pa.array(values, type=types[cql]))
    return pa.RecordBatch.from_arrays(arrays, names=[c.lower() for c in CQL_COLUMNS])


def driver_rows(rows: list[dict]) -> list[tuple]:
    """The same rows as the driver's Python values (timestamps naive UTC, UUIDs)."""
    out = []
    for r in rows:
        values = dict(r, processingId=uuid.UUID(r["processingId"]))
        out.append(tuple(values[c] for c in CQL_COLUMNS))
    return out


@pytest.mark.parametrize("rows", [ROWS, ROWS[:40]], ids=["with bad rows", "clean"])
def test_arrow_columns_decode_as_the_bytes_cassandra_sent(rows):
    events, quarantine = checked(cells_of(connector_batch(rows)))
    expected_events, expected_quarantine = decode_rows(as_sent(driver_rows(rows), CQL_TYPES))
    assert events.equals(expected_events), f"{events}\n!=\n{expected_events}"
    assert quarantine.equals(expected_quarantine), f"{quarantine}\n!=\n{expected_quarantine}"
    assert events.height + quarantine.height == len(rows)
    if len(rows) > 40:  # rows 44 to 47 are set aside, each with its reason
        assert quarantine["aggregate_id"].to_list() == ["p2", "p3", "p4", "p5"]
        assert quarantine["reason"].null_count() == 0
        assert events.filter(aggregate_id="p6")["parameters"].to_list()[-1] == (
            '{"k\\"ey":"needs escaping"}'
        )
