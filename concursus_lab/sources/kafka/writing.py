"""Writing a frame to a topic: one Concursus JSON record per event, keyed by aggregate.

:func:`append` validates and encodes the frame (see :meth:`KafkaSource.append
<concursus_lab.sources.kafka.source.KafkaSource.append>` for what is written), checks that
every record fits the topic's size limit before anything is sent, then sends every record
with an idempotent producer and flushes before it returns. Each record's own confirmation is
counted, so when the broker refuses some records or the connection fails part-way, the error
says exactly how many events are stored and hands back the frame of those that are not.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

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
    times = frame.select(record_times).to_series().to_list()
    values = encode(frame) if encode else concursus_json_write.encode(frame, layout)
    keys = frame["aggregate_id"].cast(pl.Binary)
    limit = cluster.record_limit(topic)
    _check_sizes(frame, keys, values, limit, topic)
    sent = _produce(
        cluster, topic, keys.to_list(), values.to_list(), times, progress, timeout, limit
    )
    return _confirmed(frame, sent, topic)


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


def _produce(
    cluster: Cluster,
    topic: str,
    keys: list[bytes],
    values: list[bytes],
    times: list[int | None],
    progress: bool | None,
    timeout: float,
    limit: int,
) -> list:
    """Send every record and wait for each answer; returns one future per record sent, in
    frame order, then the error that stopped the sending if one did."""
    kafka = kafka_python()
    producer = cluster.producer(batch_size=min(_BATCH_BYTES, limit))
    futures: list = []
    bar = progress_bar(progress, total=len(values), what="writing", unit="events")
    try:
        send = producer.send
        try:
            for key, value, at in zip(keys, values, times, strict=True):
                futures.append(send(topic, value=value, key=key, timestamp_ms=at))
                if len(futures) % 10_000 == 0:
                    bar.update(10_000)
        except kafka.errors.KafkaError as exc:
            futures.append(exc)  # the records after this one were not sent
        _await(producer, [f for f in futures if not isinstance(f, BaseException)], timeout)
    finally:
        bar.update(min(len(futures), len(values)) - bar.n)
        bar.close()
        with contextlib.suppress(kafka.errors.KafkaError):
            producer.close(timeout=5)
    return futures


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


def _confirmed(frame: pl.DataFrame, sent: list, topic: str) -> int:
    """How many events the broker confirmed; an :class:`IncompleteWrite` unless all."""
    stopped = sent.pop() if sent and isinstance(sent[-1], BaseException) else None
    stored = [f.is_done and f.succeeded() for f in sent]
    if stopped is None and all(stored):
        return frame.height
    refused = [f.exception for f in sent if f.is_done and f.failed()]
    unwritten = frame.with_row_index("_row").filter(
        ~pl.col("_row").is_in([i for i, ok in enumerate(stored) if ok])
    )
    not_sent = frame.height - len(sent)
    unknown = len(sent) - sum(stored) - len(refused)
    cause = stopped if stopped is not None else (refused[0] if refused else "no confirmation")
    raise IncompleteWrite(
        f"{sum(stored):,} of {frame.height:,} events were written to {topic!r}; "
        f"{len(refused):,} were refused, {unknown:,} not confirmed in time and {not_sent:,} "
        "not sent "
        f"({type(cause).__name__}: {cause}). `.unwritten` holds the {unwritten.height:,} "
        "others (column _row: their rows in your frame); append them again once the cause is "
        "fixed. Appending the whole frame again is also safe: reads keep the last delivery "
        "of each identity.",
        written=sum(stored),
        unwritten=unwritten,
    )
