"""Where a read since a processing time starts in each partition of a topic.

Kafka finds records by their record timestamp, not by the processing time in their
``processingId``. A record's timestamp is usually when it was written (Concursus's producer
and ours leave it so, and a topic may set ``LogAppendTime``), so never long before its
processing time. But a producer may stamp each record with its *event* time: a late event's
record time then runs behind its processing time by as long as it was late. A seek by record
time alone then lands past records processed after ``since``. So the start is found in two
steps, the same for a local read, a follow and Spark's read (:func:`start_offsets`):

1. ``offsets_for_times(since - SEEK_SLACK)`` gives the first record whose record time is at
   most :data:`SEEK_SLACK` before ``since``. Every record before it has an earlier record
   time.
2. The seek then checks the records just before that start, :data:`SCAN_BACK` at a time
   (:func:`scan_back`). While any of them was processed at or after ``since - SEEK_SLACK``,
   the start moves back to the earliest such record. It stops at a run of SCAN_BACK records
   all processed earlier than that, or at the partition's first offset.

Step 2 relies only on a partition's records being appended in processing order, give or take
SEEK_SLACK, as a live producer appends each event when it processes it: then a record before
such a run was processed before ``since``. Where records lead their processing time (a
backfill written now), step 1 starts early and step 2 reads one run. The rows are filtered
exactly afterwards.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import polars as pl

from concursus_lab.exceptions import SourceUnavailable
from concursus_lab.sources import concursus_json
from concursus_lab.sources.kafka import private
from concursus_lab.sources.kafka.connection import Cluster
from concursus_lab.sources.kafka.records import Records, head
from concursus_lab.sources.kafka.records import chunks as by_partition

#: Decodes a batch of records into (events with ``kafka_offset``, quarantined records): a
#: topic's own decoding, for one read through a mapping.
Decode = Callable[[list], tuple[pl.DataFrame, pl.DataFrame]]

#: How far before ``since`` (in record time) the seek starts, and the disorder in processing
#: time that the check before the start allows.
SEEK_SLACK = dt.timedelta(minutes=5)
#: Records checked at a time before a start; a run this long processed before
#: ``since - SEEK_SLACK`` ends the check.
SCAN_BACK = 500
_POLL_MS = 200
_SCAN_FETCH_BYTES = 256 * 1024  # per partition and fetch: a few batches, not the rest of it


def start_offsets(
    consumer: Any,
    tps: list[Any],
    since: dt.datetime | None,
    *,
    from_end: bool,
    cluster: Cluster,
    timeout: float,
    decode: Decode | None = None,
) -> dict[Any, int]:
    """Where to start reading each partition: its beginning or end, or where processing time
    ``since`` begins (see the module's text), asked of ``consumer``. The records before a
    start are fetched by a consumer of their own (a fetch of a few batches at a time, where
    ``consumer`` would bring 16 MB per partition), connected to ``cluster``, and decoded by
    ``decode`` (a topic read through a mapping: its records' keys and headers are fetched
    too), or as Concursus JSON.

    Raises
    ------
    SourceUnavailable
        The records before a start could not be fetched within ``timeout`` seconds.
    """
    ends = consumer.end_offsets(tps)
    if since is None:
        return dict(ends) if from_end else dict(consumer.beginning_offsets(tps))
    early = max(0, int((since - SEEK_SLACK).timestamp() * 1000))
    found = consumer.offsets_for_times({tp: early for tp in tps})
    starts = {tp: ends[tp] if found.get(tp) is None else found[tp].offset for tp in tps}
    firsts = consumer.beginning_offsets(tps)
    if all(starts[tp] <= firsts[tp] for tp in tps):
        return starts
    scanner = cluster.consumer(max_partition_fetch_bytes=_SCAN_FETCH_BYTES)
    private.read_whole_fetches(scanner, keys=decode is not None)
    try:
        return scan_back(scanner, starts, firsts, early, timeout, decode)
    finally:
        scanner.close()


def resumed_offsets(consumer: Any, tps: list[Any], offsets: Mapping[int, int]) -> dict[Any, int]:
    """Where a follow that stopped goes on: each partition at ``offsets[partition]`` (the
    next record to read), or at its beginning when not named; never before the beginning
    (records the topic no longer keeps cannot be read again)."""
    firsts = consumer.beginning_offsets(tps)
    return {tp: max(int(offsets.get(tp.partition, 0)), firsts[tp]) for tp in tps}


def scan_back(
    consumer: Any,
    starts: dict[Any, int],
    firsts: dict[Any, int],
    early: int,
    timeout: float,
    decode: Decode | None = None,
) -> dict[Any, int]:
    """Move each partition's start back while the :data:`SCAN_BACK` records before it hold
    one processed at or after ``early`` (epoch ms); every partition is fetched at once."""
    starts = dict(starts)
    todo = {tp for tp, start in starts.items() if start > firsts[tp]}
    while todo:
        spans = {tp: (max(firsts[tp], starts[tp] - SCAN_BACK), starts[tp]) for tp in todo}
        found = _processing_times(consumer, spans, timeout, decode)
        for tp, (offsets, processed) in found.items():
            recent = offsets[processed >= early]
            if recent.size:
                starts[tp] = int(recent.min())
            if recent.size == 0 or starts[tp] <= firsts[tp]:
                todo.discard(tp)
    return starts


def _processing_times(
    consumer: Any,
    spans: dict[Any, tuple[int, int]],
    timeout: float,
    decode: Decode | None = None,
) -> dict[Any, tuple[np.ndarray, np.ndarray]]:
    """Per partition, the offsets of the records in its span ``[low, high)`` that decode, and
    each one's latest processing time (epoch ms; a record may hold an array of events)."""
    fetched = _fetch(consumer, spans, timeout)
    out = {}
    for tp in spans:
        got = fetched[tp]
        if not got:
            out[tp] = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
            continue
        if decode is not None:  # what does not decode or map proves nothing
            rows, _ = decode([(tp, records) for records in got])
            latest = rows.group_by("kafka_offset").agg(
                pl.col("processing_timestamp").max().dt.epoch("ms")
            )
            out[tp] = (
                latest["kafka_offset"].to_numpy(),
                latest["processing_timestamp"].to_numpy(),
            )
            continue
        values = [value for records in got for value in records.values]
        offsets = np.concatenate([records.offsets for records in got])
        stamps = np.concatenate([records.timestamps for records in got])
        rows, _ = concursus_json.decode(values, stamps)  # what does not decode proves nothing
        latest = rows.group_by("record").agg(pl.col("processing_timestamp").max().dt.epoch("ms"))
        out[tp] = (offsets[latest["record"].to_numpy()], latest["processing_timestamp"].to_numpy())
    return out


def _fetch(
    consumer: Any, spans: dict[Any, tuple[int, int]], timeout: float
) -> dict[Any, list[Records]]:
    """The records of each partition in its span ``[low, high)``, fetched together."""
    consumer.assign(list(spans))
    for tp, (low, _) in spans.items():
        consumer.seek(tp, low)
    fetched: dict[Any, list[Records]] = {tp: [] for tp in spans}
    consumer.resume(*spans)  # a partition paused by an earlier fetch stays paused
    todo = set(spans)
    deadline = time.monotonic() + timeout
    while todo:
        if time.monotonic() > deadline:
            tp = min(todo, key=lambda t: t.partition)
            low, high = spans[tp]
            raise SourceUnavailable(
                f"offsets {low}..{high - 1} of partition {tp.partition} of {tp.topic!r} did "
                f"not arrive within {timeout:g} s, while finding where `since` begins. Is "
                "Kafka running? Try again, or read without since=."
            )
        for tp, records in by_partition(consumer.poll(timeout_ms=_POLL_MS)):
            high = spans[tp][1]
            if len(records) and records.offsets[-1] >= high:
                records = head(records, int(np.searchsorted(records.offsets, high)))
            if len(records):
                fetched[tp].append(records)
        for tp in list(todo):
            if consumer.position(tp, timeout_ms=int(timeout * 1000)) >= spans[tp][1]:
                consumer.pause(tp)  # fetch no further than its span
                todo.discard(tp)
    return fetched
