"""Reads that hand whole aggregates to one Python pass: decoded and answered where they land.

A read's ``.frame`` is decoded in Python workers (:mod:`~concursus_lab.spark.cassandra`,
:mod:`~concursus_lab.spark.kafka`) and handed back to the JVM; a question then shuffles the
decoded rows into buckets of whole aggregates and hands them to Python again. Each event so
crosses between the JVM and Python four times, plus one shuffle. When the rows of one
aggregate can be brought together *before* they are decoded, one crossing is enough: the
bucket's worker decodes its raw rows itself and answers at once.

* **Cassandra:** the ``Event`` table's partition key is the aggregate (type and id), and the
  connector reads whole token ranges, so one aggregate's rows are always in one Spark
  partition: each partition is a bucket as read, with no shuffle at all.
* **Kafka (Concursus JSON):** records are keyed by aggregate id (the Concursus writer's rule
  and :meth:`~concursus_lab.sources.kafka.source.KafkaSource.append`'s), and a producer's
  default partitioner puts all records of a key in one partition, which Spark reads in one
  task: each partition is a bucket as read, with no shuffle. Each bucket checks that every
  event it decodes is in the partition the default partitioner gives its aggregate id as a
  key (:func:`~concursus_lab.spark.kafka_partitions.default_partitions`). When one is not,
  the question is asked again with the raw records shuffled on their key (so too when a
  partition is too large for one worker), and there each bucket checks that every event's
  record key is its aggregate id; when one is not, the question is asked the general way
  (decode, then shuffle the decoded rows). Never answered wrong.

A read registers its :class:`Plan` beside the frame it returns (:func:`register`); a question
asked of exactly that frame (:func:`plan_of`) takes the one pass, and a frame derived from it
(filtered, joined, ...) is asked the general way, as before, and so is a cached one
(``.frame.cache()``: its decoded rows are kept, and a user who kept them expects them used).
What does not decode is dropped here as it is from ``.frame`` (``.quarantine`` keeps it).
"""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Callable, Iterable
from typing import Any

import polars as pl
import pyarrow as pa

#: A bucket's raw batches, and whether they are as read (not shuffled) -> (its events in
#: canonical columns, facts for the driver: :data:`NOT_WHOLE`, :data:`MISPLACED`).
Decode = Callable[[Iterable[pa.RecordBatch], bool], tuple[pl.DataFrame, dict[str, int]]]

#: What a bucket reports when its rows turned out not to be whole aggregates: shuffled on
#: the key, events whose record key is not their aggregate id; as read, events not in the
#: partition the default partitioner gives their aggregate id as key (then a shuffle on
#: the key may still work).
NOT_WHOLE = "not_whole"
MISPLACED = "misplaced"


@dataclasses.dataclass(frozen=True)
class Plan:
    """How to answer a question about a read's ``.frame`` in one pass.

    ``raw`` is the Spark DataFrame of undecoded rows; ``key`` the columns of ``raw`` whose
    hash puts one aggregate's rows in one bucket; ``in_place``: they are in one partition
    as read already; ``decode`` turns a bucket's raw batches into its events."""

    raw: Any
    key: tuple[str, ...]
    in_place: bool
    decode: Decode

    def stops(self, facts: dict[str, int]) -> bool:
        """Whether a bucket that found ``facts`` may not hold whole aggregates."""
        return stops(facts, self.in_place)

    def worker(self) -> tuple[Decode, bool]:
        """What a bucket's worker needs (the plan itself holds a DataFrame: not for workers)."""
        return self.decode, self.in_place

    def parted(self, buckets: int | None) -> tuple[Any, int]:
        """``raw`` in buckets of whole aggregates, and how many: the partitions as read (when
        they are whole and no ``buckets`` is asked for), else shuffled on ``key`` into
        ``buckets`` (default: two per core at least)."""
        if self.in_place and buckets is None:
            return self.raw, self.raw.rdd.getNumPartitions()
        if buckets is None:
            cores = self.raw.sparkSession.sparkContext.defaultParallelism
            buckets = max(4, 2 * cores, self.raw.rdd.getNumPartitions())
        return self.raw.repartition(buckets, *self.key), buckets


def stops(facts: dict[str, int], in_place: bool) -> bool:
    """Whether a bucket that found ``facts`` (as read, or shuffled on the key) may not hold
    whole aggregates."""
    return bool(facts.get(MISPLACED if in_place else NOT_WHOLE))


_PLANS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def register(frame: Any, plan: Plan) -> Any:
    """``frame``, with ``plan`` kept for the questions asked of it (and only of it)."""
    _PLANS[frame] = plan
    return frame


def plan_of(frame: Any) -> Plan | None:
    """The plan a read registered for exactly ``frame``, if any, and if ``frame`` is not
    cached (then its decoded rows are at hand: they are asked the general way)."""
    if getattr(frame, "is_cached", False):
        return None
    try:
        return _PLANS.get(frame)
    except TypeError:  # not weakly referable: no read of ours made it
        return None


def again(plan: Plan | None, metas: list[dict[str, Any]]) -> tuple[bool, Plan | None]:
    """Whether to ask again, after buckets that said ``metas``, and by which plan: none (the
    general way) when a record's key is not its aggregate id, shuffled on the key when some
    record was not where its key puts it."""
    if plan is None or not any(plan.stops(m) for m in metas):
        return False, plan
    if any(m.get(NOT_WHOLE) for m in metas):
        return True, None
    return True, dataclasses.replace(plan, in_place=False)


def keyed(events: pl.DataFrame, keys: pl.DataFrame, by: list[str]) -> int:
    """How many of ``events`` do not have their record's key as aggregate id (``keys``:
    each record's ``by`` columns and its ``key``, bytes; ``events`` has ``by`` too)."""
    if events.height == 0:
        return 0
    if events.height == keys.height and events.select(by).equals(keys.select(by)):
        found = keys.with_columns(events["aggregate_id"])  # one event a record, in order
    else:
        found = events.select([*by, "aggregate_id"]).join(keys, on=by, how="left")
    own = pl.col("aggregate_id").cast(pl.Binary)
    return found.select(pl.col("key").ne_missing(own).sum()).item()
