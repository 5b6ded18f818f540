"""Writing a frame to a topic: one Concursus JSON record per event, keyed by aggregate.

:func:`append` validates and encodes the frame (see :meth:`KafkaSource.append
<concursus_lab.sources.kafka.source.KafkaSource.append>` for what is written), checks that
every record fits the topic's size limit before anything is sent, then sends the records with
an idempotent producer, :data:`CHUNK` at a time, each chunk flushed and its records' answers
kept by row before the next is sent (memory stays bounded however long the frame). Each
record's own confirmation is counted, so when the broker refuses some records or the
connection fails part-way, the error says exactly how many events are stored, names the first
refused rows and hands back the frame of those that are not.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable

import numpy as np
import polars as pl

from concursus_lab.common.progress import bar as progress_bar
from concursus_lab.common.text import plural
from concursus_lab.exceptions import IncompleteWrite, SchemaError, SourceError
from concursus_lab.frame.schema import for_writing
from concursus_lab.frame.timeuuid import processing_time, time_uuids
from concursus_lab.sources import concursus_json_write
from concursus_lab.sources.kafka.connection import _BATCH_BYTES, Cluster, kafka_python

#: The most bytes a one-record batch adds to its key and value: Kafka's batch header (61),
#: a record's fixed fields and varints (at most 21) and the key's and value's lengths (10).
RECORD_OVERHEAD = 61 + 21 + 10


def append(
    cluster: Cluster,
    topic: str,
    frame: pl.DataFrame,
    *,
    layout: concursus_json_write.Layout,
    progress: bool | None,
    timeout: float,
    encode: Callable[[pl.DataFrame], pl.Series] | None = None,
) -> int:
    """Validate ``frame`` and write one record per event; returns how many were written.
    ``encode`` gives the records' values (default: Concursus JSON in ``layout``)."""
    if layout not in concursus_json_write.LAYOUTS:
        raise SourceError(f"`layout` must be 'flat' or 'nested', got {layout!r}.")
    frame = for_writing(frame, milliseconds=None if encode else "Concursus JSON")
    if frame.height == 0:
        return 0
    missing = frame["processing_id"].is_null()
    if missing.any():
        stamped = time_uuids(frame["processing_timestamp"])
        frame = frame.with_columns(
            pl.when(missing).then(stamped).otherwise(pl.col("processing_id")).alias("processing_id")
        )
    by_id = processing_time(frame["processing_id"]).is_not_null()
    record_times = (
        pl.when(by_id).then(None).otherwise(pl.col("processing_timestamp").dt.epoch("ms"))
    )
    times = frame.select(record_times).to_series()
    values = encode(frame) if encode else concursus_json_write.encode(frame, layout)
    keys = frame["aggregate_id"].cast(pl.Binary)
    limit = cluster.record_limit(topic)
    _check_sizes(frame, keys, values, limit, topic)
    fates = _produce(cluster, topic, (keys, values, times), progress, timeout, limit)
    return _confirmed(frame, fates, topic)


def _check_sizes(
    frame: pl.DataFrame, keys: pl.Series, values: pl.Series, limit: int, topic: str
) -> None:
    """Refuse, before anything is sent, every event whose record the topic would refuse."""
    sizes = keys.bin.size() + values.bin.size() + RECORD_OVERHEAD
    too_big = (sizes > limit).arg_true()
    if too_big.len() == 0:
        return
    row = too_big[0]
    raise SchemaError(
        f"{plural(too_big.len(), 'event')} would not fit one Kafka record on {topic!r}, so "
        f"nothing was written: row {row} (aggregate_id {frame['aggregate_id'][row]!r}, "
        f"name {frame['name'][row]!r}) needs {sizes[row]:,} bytes, and the topic "
        f"takes at most {limit:,} (its max.message.bytes, or the producer's max_request_size)."
        f" Its `parameters` begin {frame['parameters'][row][:60]!r}. Raise the topic's "
        "max.message.bytes (and pass client={'max_request_size': ...}), or leave such events "
        "out with frame.filter(...)."
    )


#: Records sent before their answers are awaited: a waiting record's future holds ~1.2 KB
#: (6M records at once held 12 GB), so each chunk's answers are checked, then let go.
CHUNK = 20_000
#: The refused records an :class:`IncompleteWrite` names.
NAMED = 5


@dataclasses.dataclass
class _Fates:
    """What became of each record: stored (by row), the first refusals, what was not sent."""

    stored: np.ndarray
    sent: int = 0
    refused: int = 0
    unknown: int = 0
    examples: list[tuple[int, BaseException]] = dataclasses.field(default_factory=list)
    stopped: BaseException | None = None

    def take(self, start: int, futures: list) -> None:
        """The answers of the chunk whose first row is ``start``."""
        for i, future in enumerate(futures, start):
            if not future.is_done:
                self.unknown += 1
            elif future.succeeded():
                self.stored[i] = True
            else:
                self.refused += 1
                if len(self.examples) < NAMED:
                    self.examples.append((i, future.exception))
        self.sent = start + len(futures)


def _produce(
    cluster: Cluster,
    topic: str,
    records: tuple[pl.Series, pl.Series, pl.Series],
    progress: bool | None,
    timeout: float,
    limit: int,
) -> _Fates:
    """Send the records (keys, values, record times) a chunk at a time, each chunk's answers
    awaited and kept by row before the next is sent. A chunk with a record refused or not
    confirmed in time, or a send that fails, stops the sending: the chunks after it are not
    sent (the idempotent producer gives up after a refusal anyway)."""
    kafka = kafka_python()
    producer = cluster.producer(batch_size=min(_BATCH_BYTES, limit))
    n = len(records[1])
    fates = _Fates(np.zeros(n, dtype=bool))
    bar = progress_bar(progress, total=n, what="writing", unit="events")
    try:
        send = producer.send
        for start in range(0, n, CHUNK):
            keys, values, times = (r.slice(start, CHUNK).to_list() for r in records)
            futures: list = []
            try:
                for key, value, at in zip(keys, values, times, strict=True):
                    futures.append(send(topic, value=value, key=key, timestamp_ms=at))
            except kafka.errors.KafkaError as exc:
                fates.stopped = exc  # the records after this one are not sent
            _await(producer, futures, timeout)
            fates.take(start, futures)
            bar.update(len(futures))
            if fates.stopped is not None or fates.unknown or fates.refused:
                break
    finally:
        bar.close()
        with contextlib.suppress(kafka.errors.KafkaError):
            producer.close(timeout=5)
    return fates


def _await(producer, futures: list, timeout: float) -> None:
    """Wait until every record is confirmed or refused, or the time is up.

    ``flush`` alone is not enough: while it splits a batch the broker refused as too large,
    kafka-python 3.0 can raise from ``flush`` with records still under way.
    """
    kafka = kafka_python()
    deadline = time.monotonic() + max(timeout, 30.0)
    with contextlib.suppress(kafka.errors.KafkaError):
        producer.flush(timeout=max(timeout, 30.0))
    for future in futures:
        left = deadline - time.monotonic()
        if future.is_done or left <= 0:
            continue
        with contextlib.suppress(kafka.errors.KafkaError):
            future.get(timeout=left)


def _confirmed(frame: pl.DataFrame, fates: _Fates, topic: str) -> int:
    """How many events the broker confirmed; an :class:`IncompleteWrite` unless all, which
    names the first refused rows."""
    written = int(fates.stored.sum())
    if written == frame.height:
        return written
    unwritten = frame.with_row_index("_row").filter(pl.Series(~fates.stored))
    not_sent = frame.height - fates.sent
    first = fates.examples[0][1] if fates.examples else "no confirmation"
    cause = fates.stopped if fates.stopped is not None else first
    named = "; ".join(
        f"row {row} (aggregate_id {frame['aggregate_id'][row]!r}, name "
        f"{frame['name'][row]!r}: {type(exc).__name__})"
        for row, exc in fates.examples
    )
    refused = f" Refused{' first' if fates.refused > NAMED else ''}: {named}." if named else ""
    raise IncompleteWrite(
        f"{written:,} of {frame.height:,} events were written to {topic!r}; "
        f"{fates.refused:,} were refused, {fates.unknown:,} not confirmed in time and "
        f"{not_sent:,} not sent ({type(cause).__name__}: {cause}).{refused} `.unwritten` "
        f"holds the {unwritten.height:,} others (column _row: their rows in your frame); "
        "append them again once the cause is fixed. Appending the whole frame again is also "
        "safe: reads keep the last delivery of each identity.",
        written=written,
        unwritten=unwritten,
    )
