"""Concursus's ``Event`` rows <-> canonical event frames, column-wise, with no driver import.

The reader asks the driver for every cell as the bytes Cassandra sent (see
:mod:`concursus_lab.sources.cassandra.raw_cells`), so a page of rows arrives as tuples of
``bytes``; :func:`decode_rows` turns those into a canonical frame with NumPy, Arrow and
polars (one column at a time: :mod:`.columns`, :mod:`.parameters`), never a Python object
per value:

* text columns -> one Arrow string buffer each (UTF-8 checked once per column);
* ``eventTimestamp`` (8 bytes, big-endian epoch ms) -> ``Datetime(us, UTC)``;
* ``processingId`` (16 bytes) -> its text, and the processing time read from it by
  :func:`concursus_lab.processing_time` (Java Concursus's malformed variants included);
* ``parameters`` (a serialised ``map<text, text>`` whose values are each one JSON text) ->
  one JSON object text, compact with sorted keys, exactly as
  :func:`concursus_lab.frame.schema.normalise_parameters` writes it;
* ``characteristics`` (4 bytes, or null) -> Int32, null read as 0 as the Java driver's
  ``getInt`` does; ``version`` null -> ``"0"``; an empty or null map -> ``"{}"``.

Rows that cannot become a canonical event (a parameter that is not JSON, no event name,
characteristics other than 0/1/2, ...) go to the quarantine frame with their raw values and
a ``reason``. Rows whose ``processingId`` is null are decoded with a null
``processing_timestamp``; the source then fills it from the row's Cassandra write time.

The rules of an event are :func:`checked`'s, applied to a page's columns (:class:`Cells`)
however they were read: from the driver's bytes here, or from the Spark connector's Arrow
columns (:func:`concursus_lab.spark.cassandra.cells_of`).

Writing goes the other way: :func:`.parameters.encode_parameters` splits each JSON object
into the per-value JSON texts that Java Concursus stores.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from itertools import chain

import numpy as np
import polars as pl

from concursus_lab.frame.schema import COLUMNS, INITIAL, NEITHER, SCHEMA, TERMINAL, TIME
from concursus_lab.frame.timeuuid import processing_time, uuid_texts
from concursus_lab.sources.cassandra.columns import Reasons, fixed_bytes, fixed_width, text_column
from concursus_lab.sources.cassandra.parameters import parameters_json, stored_map_text

#: The ``Event`` columns the reader selects, in this order.
CQL_COLUMNS: tuple[str, ...] = (
    "aggregateType",
    "aggregateId",
    "eventTimestamp",
    "streamId",
    "processingId",
    "name",
    "version",
    "parameters",
    "characteristics",
)
#: Their CQL types, in the same order.
CQL_TYPES: tuple[str, ...] = (
    "text",
    "text",
    "timestamp",
    "text",
    "timeuuid",
    "text",
    "text",
    "map<text, text>",
    "int",
)

#: What the quarantine frame holds: the row's values as stored, and why it was set aside.
QUARANTINE_SCHEMA: pl.Schema = pl.Schema(
    {
        "aggregate_type": pl.String,
        "aggregate_id": pl.String,
        "event_timestamp": TIME,
        "stream_id": pl.String,
        "processing_id": pl.String,
        "name": pl.String,
        "version": pl.String,
        "parameters": pl.String,  # {"name": "<stored text>", ...}: the map as stored
        "characteristics": pl.Int32,
        "reason": pl.String,
    }
)

_MAX_MS = (2**63 - 1) // 1000  # beyond this, milliseconds do not fit in microseconds


def empty_quarantine() -> pl.DataFrame:
    """A quarantine frame with no rows."""
    return pl.DataFrame(schema=QUARANTINE_SCHEMA)


@dataclasses.dataclass
class Cells:
    """A page's columns read from wherever they came (the bytes Cassandra sent, or a Spark
    connector's Arrow columns), before :func:`checked` applies the rules of an event."""

    reasons: Reasons
    text: dict[str, pl.Series]  # aggregate_type, aggregate_id, stream_id, name, version
    millis: np.ndarray  # eventTimestamp, epoch ms (0 where unreadable)
    out_of_range: np.ndarray  # eventTimestamp beyond what microseconds hold
    processing_id: pl.Series  # the time UUID's text, null where null
    characteristics: np.ndarray  # null read as 0
    characteristics_null: np.ndarray
    parameters: pl.Series  # canonical JSON object texts ("{}" where unreadable)
    bad_parameters: dict[int, str]  # why a row's map cannot be read
    stored: Callable[[int], str]  # a row's map as stored, shown for the quarantine


def decode_rows(rows: list[tuple]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Decode raw ``Event`` rows (cells as :data:`CQL_COLUMNS`) into (events, quarantine).

    Every cell is the bytes Cassandra sent (UTF-8 for text), or None. The events frame is
    canonical except that ``processing_timestamp`` is null where ``processingId`` is null;
    the quarantine frame has :data:`QUARANTINE_SCHEMA`.
    """
    if not rows:
        return pl.DataFrame(schema=SCHEMA), empty_quarantine()
    n = len(rows)
    flat = list(chain.from_iterable(rows))  # a transpose that makes no tuple per row
    width = len(CQL_COLUMNS)
    if len(flat) != n * width:
        raise ValueError(f"expected rows of {width} cells ({', '.join(CQL_COLUMNS)})")
    (types, ids, stamps, streams, pids, names, versions, params, chars) = (
        flat[k::width] for k in range(width)
    )
    reasons = Reasons(n)
    millis = fixed_width(stamps, 8, ">i8", reasons, "eventTimestamp")
    pid_raw, pid_null = fixed_bytes(pids, 16, reasons, "processingId")
    pid_text = uuid_texts(pid_raw)
    if pid_null.any():
        pid_text = pid_text.scatter(np.flatnonzero(pid_null), None)
    characteristics = fixed_width(chars, 4, ">i4", reasons, "characteristics", null=0)
    text = {
        "aggregate_type": text_column(types, reasons, "aggregateType"),
        "aggregate_id": text_column(ids, reasons, "aggregateId"),
        "stream_id": text_column(streams, reasons, "streamId"),
        "name": text_column(names, reasons, "name"),
        "version": text_column(versions, reasons, "version"),
    }
    parameters, bad_parameters = parameters_json(params)
    chars_null = np.fromiter((c is None for c in chars), dtype=bool, count=n)
    cells = Cells(
        reasons,
        text,
        millis,
        np.zeros(n, dtype=bool),
        pid_text,
        characteristics,
        chars_null,
        parameters,
        bad_parameters,
        lambda row: stored_map_text(params[row]),
    )
    return checked(cells)


def checked(cells: Cells) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(events, quarantine) of a page's columns: the rules of an event, wherever the
    columns were read from (see the module docstring)."""
    reasons, text, millis = cells.reasons, cells.text, cells.millis
    out_of_range = cells.out_of_range | (np.abs(millis) > _MAX_MS)
    reasons.add(out_of_range, "eventTimestamp is out of range")
    millis = np.where(out_of_range, 0, millis)
    processed = processing_time(cells.processing_id)
    characteristics = cells.characteristics
    reasons.add(
        ~np.isin(characteristics, (INITIAL, TERMINAL, NEITHER)),
        "characteristics is not 0 (neither), 1 (initial) or 2 (terminal)",
    )
    for column in ("aggregate_type", "aggregate_id", "name", "stream_id"):
        series = text[column]
        if series.null_count():
            reasons.add(series.is_null().to_numpy(), f"{column} is null")
        if column != "stream_id":
            empty = (series.str.len_bytes() == 0).fill_null(False)
            if empty.any():
                reasons.add(empty.to_numpy(), f"{column} is empty")
    for row, why in cells.bad_parameters.items():
        reasons.add_one(row, why)
    frame = pl.DataFrame(
        {
            "aggregate_type": text["aggregate_type"],
            "aggregate_id": text["aggregate_id"],
            "event_timestamp": pl.Series(millis * 1000).cast(TIME),
            "stream_id": text["stream_id"],
            "processing_id": cells.processing_id,
            "processing_timestamp": processed,
            "name": text["name"],
            "version": text["version"].fill_null("0"),
            "parameters": cells.parameters,
            "characteristics": pl.Series(characteristics, dtype=pl.Int32),
        }
    ).select(COLUMNS)
    bad = reasons.mask()
    if not bad.any():
        return frame, empty_quarantine()
    rows_bad = np.flatnonzero(bad)
    nulls = cells.characteristics_null
    quarantine = frame[rows_bad].with_columns(
        pl.Series("event_timestamp", millis[rows_bad] * 1000)
        .cast(TIME)
        .scatter(np.flatnonzero(out_of_range[rows_bad]), None),
        text["version"].gather(rows_bad),
        pl.Series("parameters", [cells.stored(r) for r in rows_bad], dtype=pl.String),
        pl.Series(
            "characteristics",
            [None if nulls[r] else characteristics[r] for r in rows_bad],
            dtype=pl.Int32,
        ),
        pl.Series("reason", reasons.texts(rows_bad), dtype=pl.String),
    )
    return frame.filter(pl.Series(~bad)), quarantine.select(QUARANTINE_SCHEMA.names())
