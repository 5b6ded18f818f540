"""A history as a stream processor reads it: deliveries in arrival order, as integer arrays.

Every watermark engine (:mod:`concursus_lab.delivery.engines`) replays the same
:class:`Stream`: arrival order is delivery order
(:func:`~concursus_lab.frame.identity.delivery_order`, ties in processing time broken by
``kafka_offset`` when the frame has one), each delivery's partition numbered in the key's
sort order, nulls last.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
import polars as pl

from concursus_lab.exceptions import SchemaError
from concursus_lab.frame.identity import delivery_order
from concursus_lab.frame.schema import validate

#: The column that names partitions by default: the Kafka partition a record came from.
DEFAULT_BY = "kafka_partition"

#: More partitions than this is a sign that ``by`` names a key, not a source partition.
MAX_PARTITIONS = 1024

MIN = np.iinfo(np.int64).min
MAX = np.iinfo(np.int64).max


@dataclass(frozen=True)
class Stream:
    """The events in arrival order, as integer arrays."""

    order: np.ndarray  # arrival position -> input row
    event: np.ndarray  # event time, µs since the epoch
    processed: np.ndarray  # processing time, µs since the epoch
    code: np.ndarray  # partition number, 0 .. partitions - 1
    labels: pl.Series  # partition key per number
    by: str | None
    note: str
    inputs: np.ndarray | None = None  # input stream number (Spark's inputs), or None

    @property
    def partitions(self) -> int:
        return len(self.labels)


def prepare(
    events: pl.DataFrame, by: str | None, inputs: str | None = None
) -> tuple[pl.DataFrame, Stream]:
    """The validated frame and its :class:`Stream`; ``by`` checked as the module says."""
    frame = validate(events, check_parameters=False)
    note = ""
    if by is not None and not isinstance(by, str):
        raise SchemaError(
            f"`by` must name one column (the source partition), got {by!r}; "
            "use None for one partition."
        )
    if by == DEFAULT_BY and by not in frame.columns:
        by, note = None, f"the frame has no `{DEFAULT_BY}` column"
    elif by is not None:
        _check_column(frame, by, "by", "Use None to replay the events as one partition.")
    if inputs is not None:
        _check_column(frame, inputs, "inputs", "Use None for one input stream.")
    ties = ["kafka_offset"] if "kafka_offset" in frame.columns else []
    order = delivery_order(frame, ties)
    arrivals = frame.select(
        pl.col("event_timestamp").cast(pl.Int64).gather(order),
        pl.col("processing_timestamp").cast(pl.Int64).gather(order),
    )
    code, labels = _numbered(frame, by, order)
    if by is not None and len(labels) > MAX_PARTITIONS:
        raise SchemaError(
            f"`by={by!r}` splits the stream into {len(labels):,} partitions; a watermark "
            f"is kept per source partition (Kafka partitions: a few dozen), at most "
            f"{MAX_PARTITIONS:,} here. Name a coarser column, or by=None for one stream."
        )
    if frame.height == 0:
        labels = labels.head(0)
    stream = Stream(
        order=order,
        event=arrivals.get_column("event_timestamp").to_numpy(),
        processed=arrivals.get_column("processing_timestamp").to_numpy(),
        code=code.astype(np.int64, copy=False),  # one partition's zeros take no memory
        labels=labels,
        by=by,
        note=note,
        inputs=None if inputs is None else _numbered(frame, inputs, order)[0],
    )
    return frame, stream


def _check_column(frame: pl.DataFrame, name: str, what: str, instead: str) -> None:
    if name in frame.columns:
        return
    import difflib

    near = difflib.get_close_matches(name, frame.columns, 1)
    hint = f" Did you mean {near[0]!r}?" if near else ""
    raise SchemaError(f"`{what}` names a column the frame does not have: {name!r}.{hint} {instead}")


def _numbered(
    frame: pl.DataFrame, by: str | None, order: np.ndarray
) -> tuple[np.ndarray, pl.Series]:
    """Partition numbers in arrival order (the key's sort order, nulls last), and labels."""
    if by is None:
        return np.zeros(frame.height, np.int64), pl.Series("partition", [0], dtype=pl.Int64)
    rank = pl.col(by).rank("dense").cast(pl.Int64) - 1
    numbered = frame.select(pl.col(by), rank.fill_null(rank.max() + 1).fill_null(0).alias("n"))
    labels = numbered.unique("n").sort("n").get_column(by)
    return numbered.get_column("n").to_numpy()[order], labels


def shift(after: np.ndarray) -> np.ndarray:
    """Values before each position: ``MIN`` first, then ``after`` without its last."""
    before = np.empty_like(after)
    if len(after):
        before[0] = MIN
        before[1:] = after[:-1]
    return before


def quantile(values: np.ndarray, keep: float) -> int:
    """The smallest value v such that at least ``keep`` of ``values`` are <= v."""
    if len(values) == 0:
        return 0
    k = max(math.ceil(keep * len(values) - 1e-9), 1) - 1
    return int(np.partition(values, k)[k])


def percentiles(waits: np.ndarray) -> dict[str, dt.timedelta | None]:
    """p50, p90, p99 and max of ``waits`` (µs) as timedeltas, None for each when empty."""
    names = {"p50": 0.5, "p90": 0.9, "p99": 0.99, "max": 1.0}
    if len(waits) == 0:
        return dict.fromkeys(names)
    ranks = {k: max(math.ceil(q * len(waits) - 1e-9), 1) - 1 for k, q in names.items()}
    ordered = np.partition(waits, sorted(set(ranks.values())))  # one pass for all four
    return {k: dt.timedelta(microseconds=int(ordered[r])) for k, r in ranks.items()}


def micros(value: dt.timedelta) -> int:
    """A timedelta as integer microseconds."""
    return value // dt.timedelta(microseconds=1)
