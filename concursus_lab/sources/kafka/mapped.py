"""A topic of your own events: its records, through a mapping, onto the canonical frame.

``cl.open("kafka://host:9092/orders", mapping=cl.Mapping(...))`` reads a topic whose values
are your own JSON objects. Each batch of records becomes one frame (:func:`records_frame`):
a column per top-level field of the value (nested objects as structs, for dotted paths), and
the record's own fields under names the mapping may use too:

=========================  =====================================================
``kafka.key``              the record's key, as text (null: no key, or not UTF-8)
``kafka.timestamp``        the record's timestamp (UTC): the processing time when
                           the mapping names none
``kafka.partition``        its partition
``kafka.offset``           its offset
``kafka.headers.<name>``   the value of its header ``<name>``, as text
=========================  =====================================================

:class:`MappedRecords` then maps that frame (:class:`~concursus_lab.mapping.Plan`); rows that
do not map, and values that do not decode, go to the quarantine with the reason.
``kafka_partition``, ``kafka_offset`` and ``kafka_timestamp`` follow the canonical columns,
as for Concursus JSON topics.

>>> import concursus_lab as cl
>>> from concursus_lab.sources.kafka.records import Records
>>> import numpy as np
>>> records = Records([b'{"order":"o1","type":"created","at":"2026-03-01T10:00:00Z"}', b"[1]"],
...                   np.array([7, 8]), np.array([1772359260000] * 2), 9,
...                   keys=[b"o1", b"o1"])
>>> decode = MappedRecords(cl.Mapping(aggregate_type="order", aggregate_id="kafka.key",
...                                   name="type", event_time="at", event_id="kafka.offset"))
>>> events, bad = decode([(Partition(0), records)])
>>> events.select("aggregate_id", "processing_timestamp", "event_id", "kafka_offset").rows()
[('o1', datetime.datetime(2026, 3, 1, 10, 1, tzinfo=zoneinfo.ZoneInfo(key='UTC')), '7', 7)]
>>> bad.select("kafka_offset", "reason").rows()
[(8, 'not a JSON object but an array')]
"""

from __future__ import annotations

from collections import namedtuple
from typing import Any

import numpy as np
import polars as pl

from concursus_lab.mapping import Mapping, Plan
from concursus_lab.sources.kafka.reading import KAFKA_COLUMNS, joined, record_time
from concursus_lab.sources.kafka.records import Records
from concursus_lab.sources.kafka.values import ValueDecoder, json_objects
from concursus_lab.sources.mapped import events_schema, with_absent

#: The record's own fields, as a mapping names them (``kafka.headers.<name>`` besides).
KEY, TIMESTAMP, HEADERS = "kafka.key", "kafka.timestamp", "kafka.headers."
PARTITION, OFFSET = "kafka.partition", "kafka.offset"

#: Columns after the canonical ones, as every Kafka read gives them.
_EXTRA = {
    "kafka_partition": pl.col(PARTITION),
    "kafka_offset": pl.col(OFFSET),
    "kafka_timestamp": pl.col(TIMESTAMP),
}
_RECORD = "__record"

#: A stand-in for kafka-python's ``TopicPartition`` in examples and tests.
Partition = namedtuple("Partition", ["partition"])


def records_frame(
    chunks: list[tuple[Any, Records]], decode: ValueDecoder = json_objects
) -> tuple[pl.DataFrame, list[bytes | None], pl.DataFrame]:
    """Records of several partitions as one frame a mapping reads; see the module docstring.

    ``decode`` turns the values into columns (JSON objects by default). Returns the frame
    (its ``__record`` column: each row's index among the records), every record's value,
    and the records whose value did not decode (Kafka columns, ``raw``, ``reason``).
    """
    return joined_frame(*joined(chunks), decode)


def joined_frame(
    partitions: np.ndarray, records: Records, decode: ValueDecoder = json_objects
) -> tuple[pl.DataFrame, list[bytes | None], pl.DataFrame]:
    """:func:`records_frame` of records already :func:`~.reading.joined`."""
    values, offsets, millis = records.values, records.offsets, records.timestamps
    keys = records.keys if records.keys is not None else [None] * len(records)
    headers = records.headers if records.headers is not None else [()] * len(records)
    data, used, bad = (
        decode(values, headers) if getattr(decode, "takes_headers", False) else decode(values)
    )
    own = pl.DataFrame(
        [
            pl.Series(_RECORD, used, dtype=pl.Int64),
            pl.Series(PARTITION, partitions[used], dtype=pl.Int32),
            pl.Series(OFFSET, offsets[used], dtype=pl.Int64),
            record_time(millis[used], TIMESTAMP),
            _texts(KEY, [keys[i] for i in used.tolist()]),
            *_header_columns([headers[i] for i in used.tolist()]),
        ]
    )
    value = data.drop([c for c in own.columns if c in data.columns])  # the record's own win
    frame = pl.concat([own, value], how="horizontal")
    which = np.array([i for i, _ in bad], dtype=np.int64)
    rejected = pl.DataFrame(
        [
            pl.Series("kafka_partition", partitions[which], dtype=pl.Int32),
            pl.Series("kafka_offset", offsets[which], dtype=pl.Int64),
            record_time(millis[which]),
            pl.Series("raw", [values[i] for i in which.tolist()], dtype=pl.Binary),
            pl.Series("reason", [why for _, why in bad], dtype=pl.String),
        ]
    )
    return frame, values, rejected


class MappedRecords:
    """Decodes batches of a topic's records through ``mapping`` (the values by ``decode``):
    called like :func:`concursus_lab.sources.kafka.reading.decode`, it gives the events
    (canonical columns, identity columns, Kafka columns) and the quarantine."""

    def __init__(self, mapping: Mapping, decode: ValueDecoder = json_objects):
        self.mapping = mapping
        self.decode_values = decode
        self.schema = events_schema(mapping, KAFKA_COLUMNS)

    def __call__(self, chunks: list[tuple[Any, Records]]) -> tuple[pl.DataFrame, pl.DataFrame]:
        return self.decode_joined(*joined(chunks))

    def decode_joined(
        self, partitions: np.ndarray, records: Records
    ) -> tuple[pl.DataFrame, pl.DataFrame]:
        """What calling it gives, for records already :func:`~.reading.joined`."""
        frame, values, rejected = joined_frame(partitions, records, self.decode_values)
        if frame.height == 0:
            return self.empty(), rejected
        frame = with_absent(frame, self.mapping)
        reserved = [c for c in frame.columns if c == _RECORD or c.startswith("kafka.")]
        plan = Plan(
            self.mapping,
            frame.schema,
            processing=pl.col(TIMESTAMP),
            reserved=reserved,
            extra=_EXTRA,
        )
        mapped = plan.run(frame.lazy())
        quarantine = rejected
        if mapped.quarantine.height:
            rows = mapped.quarantine["row"].to_numpy()
            records = frame[_RECORD].to_numpy()[rows]
            unmapped = frame[rows].select(
                pl.col(PARTITION).alias("kafka_partition"),
                pl.col(OFFSET).alias("kafka_offset"),
                pl.col(TIMESTAMP).alias("kafka_timestamp"),
                pl.Series("raw", [values[i] for i in records.tolist()], dtype=pl.Binary),
                mapped.quarantine["reason"],
            )
            quarantine = pl.concat([rejected, unmapped])
        return mapped.events.select(self.schema.names()), quarantine

    def empty(self) -> pl.DataFrame:
        """The events frame of a read that found none."""
        return pl.DataFrame(schema=self.schema)


def _texts(name: str, cells: list[bytes | None]) -> pl.Series:
    """Bytes as UTF-8 text; a cell that is not UTF-8 is null (the row then says why)."""
    return pl.Series(name, cells, dtype=pl.Binary).cast(pl.String, strict=False)


def _header_columns(headers: list[tuple]) -> list[pl.Series]:
    """One text column per header name any record has (the last value, when repeated)."""
    names = list(dict.fromkeys(name for pairs in headers for name, _ in pairs))
    columns = []
    for name in names:
        cells = [dict(pairs).get(name) for pairs in headers]
        columns.append(_texts(HEADERS + name, cells))
    return columns
