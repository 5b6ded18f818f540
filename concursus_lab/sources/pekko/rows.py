"""Raw ``messages`` rows -> the journal frame: one row per stored event, its payload decoded.

A page of the journal arrives as tuples of the bytes Cassandra sent (see
:mod:`concursus_lab.sources.cassandra.raw_cells`); :func:`decode_rows` turns them into the
*journal frame*, column by column with NumPy and Arrow, the payloads by
:mod:`.payloads`:

==================  ===============================================================
column              from
==================  ===============================================================
persistence_id      ``persistence_id``
sequence_nr         ``sequence_nr``
processing_id       ``timestamp``, the time UUID Pekko stamped the write with, as text
written             its time, to the microsecond (the UUID counts 100 ns ticks)
ser_id              ``ser_id``
ser_manifest        ``ser_manifest``
event_manifest      ``event_manifest``
payload             ``event``, decoded: the parameters, canonical JSON object text
event.<field>       each field of the event read besides (its time, its stream), as text
reason              why the row cannot be an event (null when it can)
event               ``event`` as stored, kept only for the rows with a reason
==================  ===============================================================
"""

from __future__ import annotations

from itertools import chain

import numpy as np
import polars as pl

from concursus_lab.frame.schema import TIME
from concursus_lab.frame.timeuuid import GREGORIAN_OFFSET, uuid_texts
from concursus_lab.sources.cassandra.columns import Reasons, fixed_bytes, fixed_width, text_column
from concursus_lab.sources.pekko import payloads

#: The ``messages`` columns a read selects, in this order, and their CQL types (a read of
#: partitions adds ``partition_nr``: :mod:`.reading`). Each column asked for costs the server
#: and the driver a cell a row.
CQL_COLUMNS: tuple[str, ...] = (
    "persistence_id",
    "sequence_nr",
    "timestamp",
    "ser_id",
    "ser_manifest",
    "event_manifest",
    "event",
)
CQL_TYPES: tuple[str, ...] = ("text", "bigint", "timeuuid", "int", "text", "text", "blob")

#: The journal frame's columns (see the module docstring).
JOURNAL = pl.Schema(
    {
        "persistence_id": pl.String,
        "sequence_nr": pl.Int64,
        "processing_id": pl.String,
        "written": TIME,
        "ser_id": pl.Int32,
        "ser_manifest": pl.String,
        "event_manifest": pl.String,
        "payload": pl.String,
        "reason": pl.String,
        "event": pl.Binary,
    }
)


#: The whole event as parameters, no event time read.
_WHOLE = payloads.Fields()


def empty(fields: payloads.Fields = _WHOLE) -> pl.DataFrame:
    return pl.DataFrame(schema={**JOURNAL, **dict.fromkeys(fields.read, pl.String)})


def decode_rows(rows: list[tuple], fields: payloads.Fields = _WHOLE) -> pl.DataFrame:
    """Raw ``messages`` rows (cells as :data:`CQL_COLUMNS`) as the journal frame; ``fields``
    says where the parameters and the event time are in each event."""
    if not rows:
        return empty(fields)
    n, width = len(rows), len(CQL_COLUMNS)
    flat = list(chain.from_iterable(rows))
    if len(flat) != n * width:
        raise ValueError(f"expected rows of {width} cells ({', '.join(CQL_COLUMNS)})")
    pids, sequences, stamps, ser_ids, manifests, adapters, events = (
        flat[k::width] for k in range(width)
    )
    reasons = Reasons(n)
    raw, null = fixed_bytes(stamps, 16, reasons, "timestamp")
    reasons.add(null, "timestamp is null")
    reasons.add(~null & ((raw[:, 6] >> 4) != 1), "timestamp is not a time-based UUID")
    ids = fixed_width(ser_ids, 4, ">i4", reasons, "ser_id")
    columns = {
        "persistence_id": text_column(pids, reasons, "persistence_id"),
        "sequence_nr": fixed_width(sequences, 8, ">i8", reasons, "sequence_nr"),
        "processing_id": uuid_texts(raw),
        "written": pl.Series(_micros(raw)).cast(TIME),
        "ser_id": pl.Series(ids, dtype=pl.Int32),
        "ser_manifest": text_column(manifests, reasons, "ser_manifest"),
        "event_manifest": text_column(adapters, reasons, "event_manifest"),
    }
    decoded = payloads.decode(ids.tolist(), events, fields)
    for row, reason in decoded.reasons.items():
        reasons.add_one(row, reason)
    bad = np.flatnonzero(reasons.mask())
    columns["payload"] = decoded.parameters.alias("payload")
    columns["reason"] = pl.Series([None] * n, dtype=pl.String)
    columns["event"] = pl.Series([None] * n, dtype=pl.Binary)
    if len(bad):
        columns["reason"] = columns["reason"].scatter(bad, reasons.texts(bad))
        columns["event"] = columns["event"].scatter(
            bad, pl.Series([events[r] for r in bad], dtype=pl.Binary)
        )
    for name, texts in decoded.values.items():
        columns[name] = pl.Series(texts, dtype=pl.String)
    return pl.DataFrame(columns)


def _micros(raw: np.ndarray) -> np.ndarray:
    """Microseconds since the Unix epoch of ``(n, 16)`` time UUID bytes (100 ns ticks / 10)."""
    time_low = np.ascontiguousarray(raw[:, 0:4]).view(">u4").ravel().astype(np.int64)
    time_mid = np.ascontiguousarray(raw[:, 4:6]).view(">u2").ravel().astype(np.int64)
    time_hi = np.ascontiguousarray(raw[:, 6:8]).view(">u2").ravel().astype(np.int64) & 0x0FFF
    ticks = (time_hi << 48) | (time_mid << 32) | time_low
    return (ticks - GREGORIAN_OFFSET) // 10
