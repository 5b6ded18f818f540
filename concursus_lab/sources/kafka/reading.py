"""The bounded read of a topic: every partition up to the end offsets taken when it starts.

A :class:`Scan` assigns every partition to a plain consumer, from its start (or from where
processing time ``since`` begins, see :mod:`.seek`) up to the end offsets it takes
first, so a read ends even while producers write. It rides out a broker restart (going on
from where it was) unless nothing moves for the source's ``timeout``, and then says what it
had and what it had not (:meth:`Scan.incomplete_message`). Records are decoded many
partitions' worth at once (:func:`decode`) into frames with the :data:`KAFKA_COLUMNS`;
records that do not decode go to the scan's quarantine frame, which the source keeps.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from concursus_lab.common.progress import bar as progress_bar
from concursus_lab.exceptions import SourceUnavailable
from concursus_lab.frame.schema import SCHEMA
from concursus_lab.sources import concursus_json
from concursus_lab.sources.kafka.connection import kafka_python
from concursus_lab.sources.kafka.records import Records, head
from concursus_lab.sources.kafka.records import chunks as by_partition
from concursus_lab.sources.kafka.seek import start_offsets
from concursus_lab.sources.query import Query


@dataclass(frozen=True)
class Reader:
    """What a read of one topic needs, handed over by its source
    (:meth:`KafkaSource._reader <concursus_lab.sources.kafka.source.KafkaSource._reader>`):
    a read takes these and gives back frames and quarantined records; it never reaches into
    the source."""

    topic: str
    cluster: Any  # the source's :class:`~concursus_lab.sources.kafka.connection.Cluster`
    timeout: float  # seconds a read waits for a broker that stopped answering
    consumer: Callable[[], Any]  # a new plain consumer that hands over whole fetches
    topic_partitions: Callable[[Any], list[Any]]  # the topic's partitions, via a consumer
    decode: Callable[[list], tuple[pl.DataFrame, pl.DataFrame]]  # -> (events, quarantined)
    empty: Callable[[], pl.DataFrame]  # what a read that finds no event gives
    mapped: Any = None  # how a topic read through a mapping decodes its records, else None


#: Columns after the canonical ones in every frame read from Kafka.
KAFKA_COLUMNS = pl.Schema(
    {
        "kafka_partition": pl.Int32,
        "kafka_offset": pl.Int64,
        "kafka_timestamp": pl.Datetime("us", "UTC"),
    }
)
FRAME_SCHEMA = pl.Schema({**SCHEMA, **KAFKA_COLUMNS})
QUARANTINE_SCHEMA = pl.Schema({**KAFKA_COLUMNS, "raw": pl.Binary, "reason": pl.String})

_DECODE_BATCH = 200_000  # records decoded at once
_POLL_MS = 200


@dataclass
class Partition:
    """Where a bounded read of one partition starts, ends and has got to."""

    start: int
    end: int
    position: int = field(init=False)

    def __post_init__(self) -> None:
        self.position = self.start

    @property
    def done(self) -> bool:
        return self.position >= self.end


class Scan:
    """One bounded read of every partition: positions, decoded frames, bad records."""

    def __init__(
        self,
        reader: Reader,
        since: dt.datetime | None,
        keep: pl.Expr | None,
        progress: bool | None,
    ):
        self.reader = reader
        self.since = since
        self.keep = keep
        self.progress = progress
        self.frames: list[pl.DataFrame] = []
        self.bad: list[pl.DataFrame] = []
        self.pending: list[tuple[Any, Records]] = []
        self.pending_count = 0
        self.partitions: dict[Any, Partition] = {}
        self.missing = False
        self.stopped_by = ""
        self.consumer: Any = None

    def run(self) -> None:
        """Read to the end offsets, or until the broker stays away (``missing`` is then set)."""
        self.consumer = self.reader.consumer()
        try:
            tps = self.reader.topic_partitions(self.consumer)
            ends = self.consumer.end_offsets(tps)
            starts = start_offsets(
                self.consumer,
                tps,
                self.since,
                from_end=False,
                cluster=self.reader.cluster,
                timeout=self.reader.timeout,
                decode=self.reader.mapped,
            )
            self.partitions = {tp: Partition(min(starts[tp], ends[tp]), ends[tp]) for tp in tps}
            todo = [tp for tp, p in self.partitions.items() if not p.done]
            total = sum(p.end - p.start for p in self.partitions.values())
            with progress_bar(
                self.progress, total=total, what=self.reader.topic, unit="records"
            ) as bar:
                self._poll(todo, bar)
        except KeyboardInterrupt:
            self.stopped_by = "interrupted"
            self.missing = True
        finally:
            with contextlib.suppress(Exception):
                self.consumer.close()
            self._decode()

    def _poll(self, todo: list[Any], bar: Any) -> None:
        kafka = kafka_python()
        timeout = self.reader.timeout
        self.consumer = self._assign(self.consumer, todo)
        last_progress = time.monotonic()
        while todo:
            try:
                polled = self.consumer.poll(timeout_ms=_POLL_MS)
                moved = self._take(by_partition(polled), todo, bar)
            except (kafka.errors.KafkaError, OSError) as exc:
                self.stopped_by = f"{type(exc).__name__}: {exc}"
                if time.monotonic() - last_progress > timeout:
                    self.missing = True
                    return
                time.sleep(1.0)
                with contextlib.suppress(Exception):
                    self.consumer.close()
                try:
                    self.consumer = self._assign(self.reader.consumer(), todo)
                except SourceUnavailable as again:
                    self.stopped_by = str(again)
                continue
            if moved:
                last_progress = time.monotonic()
            elif time.monotonic() - last_progress > timeout:
                waited = f"nothing arrived for {timeout:g} s"
                self.stopped_by = f"{self.stopped_by}; {waited}" if self.stopped_by else waited
                self.missing = True
                return
            if self.pending_count >= _DECODE_BATCH:
                self._decode()
            todo = [tp for tp in todo if not self.partitions[tp].done]

    def _assign(self, consumer: Any, todo: list[Any]) -> Any:
        if not todo:
            return consumer
        consumer.assign(todo)
        for tp in todo:
            consumer.seek(tp, self.partitions[tp].position)
        return consumer

    def _take(self, chunks: list[tuple[Any, Records]], todo: list[Any], bar: Any) -> bool:
        """Keep what lies before each partition's end; True when any position moved.

        Positions come from the consumer, not from the last record seen: transaction
        markers and compacted gaps take offsets but give no records.
        """
        for tp, records in chunks:
            part = self.partitions.get(tp)
            if part is None or part.done:
                continue
            if len(records) and records.offsets[-1] >= part.end:
                records = head(records, int(np.searchsorted(records.offsets, part.end)))
            if len(records):
                self.pending.append((tp, records))
                self.pending_count += len(records)
        moved = False
        for tp in todo:
            part = self.partitions[tp]
            at = self.consumer.position(tp, timeout_ms=1000)
            if at is not None and min(at, part.end) > part.position:
                bar.update(min(at, part.end) - part.position)
                part.position = min(at, part.end)
                moved = True
            if part.done:
                self.consumer.pause(tp)
        return moved

    def _decode(self) -> None:
        if not self.pending:
            return
        pending, self.pending, self.pending_count = self.pending, [], 0
        frame, bad = self.reader.decode(pending)
        if self.keep is not None:
            frame = frame.filter(self.keep)
        self.frames.append(frame)
        if bad.height:
            self.bad.append(bad)

    def frame(self) -> pl.DataFrame:
        if not self.frames:
            return self.reader.empty()
        return pl.concat(self.frames).sort("kafka_partition", "kafka_offset", maintain_order=True)

    def quarantine(self) -> pl.DataFrame:
        if not self.bad:
            return pl.DataFrame(schema=QUARANTINE_SCHEMA)
        return pl.concat(self.bad).sort("kafka_partition", "kafka_offset")

    def incomplete_message(self) -> str:
        unread = {tp.partition: p for tp, p in self.partitions.items() if p.position < p.end}
        left = sum(p.end - p.position for p in unread.values())
        read = sum(p.position - p.start for p in self.partitions.values())
        detail = "; ".join(
            f"partition {n}: offsets {p.position}..{p.end - 1} unread"
            for n, p in sorted(unread.items())
        )
        return (
            f"the read of {self.reader.topic!r} stopped before its end "
            f"({self.stopped_by}): {read:,} records read, {left:,} not ({detail}). "
            "`.partial` holds the events read; read again to get the rest."
        )


def decode(chunks: list[tuple[Any, Records]]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Decode records of several partitions at once: events with Kafka columns, bad records."""
    return decode_joined(*joined(chunks))


def joined(chunks: list[tuple[Any, Records]]) -> tuple[np.ndarray, Records]:
    """Records of several partitions as one :class:`Records` and each record's partition
    (Int32): the form every decoder of a topic reads (Spark hands a batch over in it)."""
    values: list[bytes | None] = []
    keys: list[bytes | None] | None = None
    headers: list[tuple] | None = None
    if any(r.keys is not None for _, r in chunks):
        keys = [k for _, r in chunks for k in (r.keys or [None] * len(r))]
    if any(r.headers is not None for _, r in chunks):
        headers = [h for _, r in chunks for h in (r.headers or [()] * len(r))]
    for _, records in chunks:
        values.extend(records.values)
    sizes = [len(r) for _, r in chunks]
    partitions = np.repeat(np.array([tp.partition for tp, _ in chunks], dtype=np.int32), sizes)
    none = np.zeros(0, dtype=np.int64)
    offsets = np.concatenate([r.offsets for _, r in chunks]) if chunks else none
    millis = np.concatenate([r.timestamps for _, r in chunks]) if chunks else none
    return partitions, Records(values, offsets, millis, 0, keys=keys, headers=headers)


def decode_joined(partitions: np.ndarray, records: Records) -> tuple[pl.DataFrame, pl.DataFrame]:
    """:func:`decode` of records already :func:`joined`: events with Kafka columns, and the
    records that did not decode (Kafka columns, ``raw``, ``reason``)."""
    values, offsets, timestamps = records.values, records.offsets, records.timestamps
    rows, bad = concursus_json.decode(values, timestamps)
    record = rows["record"].to_numpy()
    frame = rows.drop("record").with_columns(
        pl.Series("kafka_partition", partitions[record], dtype=pl.Int32),
        pl.Series("kafka_offset", offsets[record], dtype=pl.Int64),
        record_time(timestamps[record]),
    )
    quarantine = pl.DataFrame(schema=QUARANTINE_SCHEMA)
    if bad.height:
        which = bad["record"].to_numpy()
        quarantine = pl.DataFrame(
            [
                pl.Series("kafka_partition", partitions[which], dtype=pl.Int32),
                pl.Series("kafka_offset", offsets[which], dtype=pl.Int64),
                record_time(timestamps[which]),
                pl.Series("raw", [values[i] for i in which.tolist()], dtype=pl.Binary),
                bad["reason"],
            ]
        )
    return frame, quarantine


def record_time(millis: np.ndarray, name: str = "kafka_timestamp") -> pl.Series:
    """Record timestamps (epoch milliseconds) as a UTC microsecond column."""
    return (
        pl.from_epoch(pl.Series(name, millis, dtype=pl.Int64), time_unit="ms")
        .dt.replace_time_zone("UTC")
        .dt.cast_time_unit("us")
    )


def row_filter(query: Query, since: dt.datetime | None) -> pl.Expr | None:
    """The rows a read keeps: the query's predicate, and processed at or after ``since``."""
    parts = [p for p in (query.predicate(),) if p is not None]
    if since is not None:
        parts.append(pl.col("processing_timestamp") >= since)
    if not parts:
        return None
    return pl.all_horizontal(parts)
