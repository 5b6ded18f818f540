"""Whole aggregates in hash buckets, each bucket answered by the local functions themselves.

Every question about aggregates (a state, a latest value, a fold keyed by aggregate) depends
only on each aggregate's own events. :func:`run` hash-partitions a Spark DataFrame of events
on ``(aggregate_type, aggregate_id)`` into buckets of whole aggregates, and in each bucket a
Python worker gets the bucket's rows as one polars frame (through Arrow) and calls the local
function on it: ``cl.state_at``, ``cl.latest``, ... with their own rules of identity, causal
order, the two-axis cut and creation (``frame/``), not a copy of them. One group per
aggregate would call Python once per aggregate, ten times slower (226 s against 13-22 s
for 1M events in 100k aggregates on local[2], docs/spark.md); a bucket holds many.

Rows reach a bucket in no particular order; they are put in the order the local source
gives them (Kafka partition and offset, or the ``__row`` column :func:`~concursus_lab.spark.
from_polars` adds) before the function sees them, so which delivery wins a tie is decided
as it is locally.

Each bucket's answer goes back as Arrow IPC bytes (polars' own dtypes kept exactly) into a
DataFrame Spark keeps (memory, then disk). Its schemas are then merged by the rules of one
local frame (:mod:`concursus_lab.spark.merge`: a parameter that is an integer in one bucket
and a float in another becomes a float), and :meth:`Buckets.frame` gives the answer as a
typed Spark DataFrame, :meth:`Buckets.polars` collects it. An answer of Python objects is
refused in its bucket, states of different kinds in different buckets on the driver; an
exception raised in a bucket (a reducer's :class:`~concursus_lab.ReducerError`, say) is
raised again here, as itself. Conflicting deliveries a bucket finds (``frame/conflicts.py``)
are not warned about in the worker, where no one sees it: each bucket sends its count and
first examples back, and :attr:`Buckets.conflicts` adds them up for the driver to warn.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import pickle
import weakref
from collections.abc import Callable
from typing import Any

import polars as pl
import pyarrow as pa

from concursus_lab.frame import conflicts as _conflicts
from concursus_lab.frame.conflicts import Conflicts
from concursus_lab.spark._pyspark import pyspark
from concursus_lab.spark.arrow import (
    batches_of,
    canonical,
    from_batches,
    from_ipc,
    spark_schema,
    to_ipc,
)
from concursus_lab.spark.merge import aligned, check_carried, check_one_kind, merged_schema
from concursus_lab.spark.one_pass import Plan, again, plan_of, stops

#: Rows of the source's own order, first found first used (see the module docstring).
ORDER_COLUMNS: tuple[tuple[str, ...], ...] = (("kafka_partition", "kafka_offset"), ("__row",))

#: A bucket function: a bucket's events -> named answer frames, and facts to add up.
BucketFunction = Callable[[pl.DataFrame], tuple[dict[str, pl.DataFrame], dict[str, Any]]]

_STORED = pa.schema(
    [
        ("bucket", pa.int32()),
        ("name", pa.string()),
        ("ipc", pa.binary()),
        ("schema", pa.binary()),
        ("meta", pa.string()),
        ("rows", pa.int64()),
    ]
)


def bucket_count(events: Any, buckets: int | None) -> int:
    """``buckets``, or as many as the input has partitions (at least 2 per core)."""
    if buckets is not None:
        if not isinstance(buckets, int) or isinstance(buckets, bool) or buckets < 1:
            from concursus_lab.exceptions import SchemaError

            raise SchemaError(f"`buckets` must be a positive int, got {buckets!r}.")
        return buckets
    cores = events.sparkSession.sparkContext.defaultParallelism
    return max(4, 2 * cores, events.rdd.getNumPartitions())


def in_source_order(frame: pl.DataFrame) -> pl.DataFrame:
    """The bucket's rows in the order the source gave them (see :data:`ORDER_COLUMNS`)."""
    for columns in ORDER_COLUMNS:
        if all(c in frame.columns for c in columns):
            return frame.sort(list(columns))
    return frame.sort(frame.columns[:9])  # no order to follow: a fixed one


def _worker(function: BucketFunction, plan: Plan | None = None) -> Callable:
    decode, in_place = plan.worker() if plan is not None else (None, False)

    def work(batches):
        from pyspark import TaskContext

        bucket = TaskContext.get().partitionId()
        if decode is None:
            frame, facts = canonical(from_batches(batches)), {}
        else:  # raw rows of whole aggregates (a one-pass plan)
            frame, facts = decode(batches, in_place)
            if stops(facts, in_place):  # not answered: the driver asks again another way
                yield _batch([bucket], ["__meta"], [b""], [b""], [json.dumps(facts)], [0])
                return
        frame = in_source_order(frame)
        if frame.height == 0:
            return
        try:
            with _conflicts.gathered() as found:  # warned about by the driver
                answers, meta = function(frame)
            for name, answer in answers.items():
                check_carried(answer, name)
            if found:  # several looks at this bucket's deliveries (a trace): the largest
                meta = {**meta, "conflicts": _conflicts.largest(found).to_dict()}
        except Exception as exc:  # raised again by the driver, as itself
            answers, meta = {}, {"error": _pickled(exc)}
        names, ipcs, schemas, rows = ["__meta"], [b""], [b""], [0]
        for name, answer in answers.items():
            names.append(name)
            ipcs.append(to_ipc(answer))
            schemas.append(to_ipc(answer.clear()))
            rows.append(answer.height)
        metas = [json.dumps(meta)] + [""] * (len(names) - 1)
        yield _batch([bucket] * len(names), names, ipcs, schemas, metas, rows)

    return work


def _batch(*columns: list) -> pa.RecordBatch:
    """One batch of :data:`_STORED` rows, from its columns."""
    return pa.RecordBatch.from_arrays(
        [pa.array(c, type=f.type) for c, f in zip(columns, _STORED, strict=True)],
        schema=_STORED,
    )


def _pickled(exc: Exception) -> str:
    """``exc`` as text: its class, arguments and attributes (an exception whose
    ``__init__`` takes other arguments than ``args``, as ReducerError's, pickles so too)."""
    from pyspark import cloudpickle

    try:
        data = cloudpickle.dumps((type(exc), exc.args, vars(exc)))
    except Exception:
        data = cloudpickle.dumps((RuntimeError, (f"{type(exc).__name__}: {exc}",), {}))
    return base64.b64encode(data).decode()


def _unpickled(text: str) -> Exception:
    kind, args, attributes = pickle.loads(base64.b64decode(text))
    exc = kind.__new__(kind)
    exc.args = args
    vars(exc).update(attributes)
    return exc


@dataclasses.dataclass
class Buckets:
    """Every bucket's answers, kept by Spark; see the module docstring."""

    stored: Any  # the persisted Spark DataFrame of (bucket, name, ipc, schema, meta)
    schemas: dict[str, pl.Schema]
    meta: list[dict[str, Any]]
    buckets: int

    def total(self, key: str) -> dict[str, int]:
        """The sums, over buckets, of the counts each put under ``key``."""
        out: dict[str, int] = {}
        for meta in self.meta:
            for name, value in meta.get(key, {}).items():
                out[name] = out.get(name, 0) + value
        return out

    @property
    def conflicts(self) -> Conflicts:
        """The conflicting deliveries every bucket found, added up (buckets hold disjoint
        aggregates); the caller warns of them on the driver
        (:func:`~concursus_lab.frame.conflicts.report`), once per question."""
        return Conflicts.total(
            [Conflicts.from_dict(m["conflicts"]) for m in self.meta if "conflicts" in m]
        )

    def polars(self, name: str) -> pl.DataFrame:
        """The answers named ``name`` of every bucket, in one polars frame."""
        F = pyspark().sql.functions
        rows = self.stored.filter(F.col("name") == name).select("ipc").collect()
        schema = self.schemas[name]
        return pl.concat([pl.DataFrame(schema=schema)] + [_aligned(r[0], schema) for r in rows])

    def frame(self, name: str) -> Any:
        """The answers named ``name`` as one Spark DataFrame (typed, from the kept bytes)."""
        F = pyspark().sql.functions
        schema = self.schemas[name]

        def unpack(batches):
            for batch in batches:
                for data in batch.column(0).to_pylist():
                    yield from batches_of(_aligned(data, schema))

        picked = self.stored.filter(F.col("name") == name).select("ipc")
        return picked.mapInArrow(unpack, spark_schema(schema))

    def unpersist(self) -> None:
        """Let Spark drop the kept answers."""
        self.stored.unpersist()

    def kept_for(self, owner: Any) -> Any:
        """``owner`` (the answer), the kept answers dropped once it is gone: a notebook that
        asks many questions does not fill the executors' memory."""
        release = weakref.finalize(owner, _unpersist, self.stored)
        release.atexit = False  # at exit the JVM may be gone already
        return owner


def _unpersist(stored: Any) -> None:
    with contextlib.suppress(Exception):  # the session was stopped: nothing is kept
        stored.unpersist()


def _aligned(data: bytes, schema: pl.Schema) -> pl.DataFrame:
    return aligned(from_ipc(data), schema)


def by_aggregate(events: Any, buckets: int | None, by: tuple[str, ...] = ()) -> Any:
    """``events`` hash-partitioned into buckets of whole aggregates (or of whole ``by``)."""
    columns = by or ("aggregate_type", "aggregate_id")
    return events.repartition(bucket_count(events, buckets), *columns)


def map_rows(
    events: Any,
    function: Callable[[pl.DataFrame], pl.DataFrame],
    schema: pl.Schema,
    *,
    buckets: int | None = None,
    found: Any = None,
) -> Any:
    """A Spark DataFrame of ``function``'s rows for every bucket of whole aggregates, when
    its columns are known beforehand (``schema``): nothing is kept, each action reruns it.
    The conflicting deliveries the buckets find go to ``found`` (:func:`conflicts_found`)."""

    def work(batches):
        from pyspark import TaskContext

        frame = in_source_order(canonical(from_batches(batches)))
        if frame.height:
            with _conflicts.gathered() as seen:
                out = function(frame)
            if seen and found is not None:
                bucket = TaskContext.get().partitionId()
                found.add({bucket: _conflicts.largest(seen).to_dict()})
            yield from batches_of(pl.DataFrame(schema=schema).vstack(out.select(list(schema))))

    return by_aggregate(events, buckets).mapInArrow(work, spark_schema(schema))


def conflicts_found(events: Any) -> Any:
    """A Spark accumulator for :func:`map_rows`' conflicts, by bucket (an action that runs a
    bucket again replaces its entry, so they are never counted twice); :func:`report_found`
    warns of them on the driver once the answer is collected."""
    pyspark()
    from pyspark.accumulators import AccumulatorParam

    class ByBucket(AccumulatorParam):
        def zero(self, value):
            return {}

        def addInPlace(self, value1, value2):
            value1.update(value2)
            return value1

    return events.sparkSession.sparkContext.accumulator({}, ByBucket())


def report_found(found: Any) -> None:
    """Warn (on the driver) of the conflicts :func:`conflicts_found` gathered."""
    _conflicts.report(Conflicts.total([Conflicts.from_dict(d) for d in found.value.values()]))


def run(
    events: Any,
    function: BucketFunction,
    *,
    empty: dict[str, pl.DataFrame],
    buckets: int | None = None,
    arrange: Callable[[str, list[str]], list[str]] | None = None,
    by: tuple[str, ...] = (),
    one_kind: tuple[str, ...] = (),
    one_pass: bool = True,
) -> Buckets:
    """Call ``function`` on every bucket of whole aggregates of ``events``; keep the answers.

    ``empty`` gives each answer's schema when no bucket has rows; ``arrange(name, columns)``
    puts the merged columns in the local function's order; ``by`` buckets by other columns
    than the aggregate's (a keyed fold's key); the answers named in ``one_kind`` are states,
    whose columns every bucket must make alike (:func:`~concursus_lab.spark.merge.
    check_one_kind`). ``events`` exactly as a read gave them are answered in one pass
    (:mod:`~concursus_lab.spark.one_pass`), unless ``one_pass`` is false.
    """
    spark = pyspark()
    from pyspark.sql.pandas.types import from_arrow_schema

    plan = None if by or not one_pass else plan_of(events)
    while True:
        if plan is not None:  # raw rows of whole aggregates, decoded in the bucket
            parted, n = plan.parted(buckets)
        else:
            n = bucket_count(events, buckets)
            parted = by_aggregate(events, n, by)
        stored = parted.mapInArrow(_worker(function, plan), from_arrow_schema(_STORED))
        stored = stored.persist(spark.StorageLevel.MEMORY_AND_DISK)
        small = stored.select("bucket", "name", "schema", "meta", "rows").collect()
        metas = [json.loads(r["meta"]) for r in small if r["name"] == "__meta"]
        retry, plan = again(plan, metas)
        if not retry:
            break
        stored.unpersist()
    try:
        for meta in metas:
            if "error" in meta:
                raise _unpickled(meta["error"])
        schemas = _schemas(small, empty, arrange, one_kind)
    except BaseException:
        stored.unpersist()
        raise
    return Buckets(stored, schemas, metas, n)


def _schemas(small: list, empty: dict[str, pl.DataFrame], arrange, one_kind) -> dict:
    """Every answer's merged schema, from the buckets' own (those with rows, if any have)."""
    found: dict[str, list[tuple[int, pl.Schema]]] = {}
    for row in small:
        if row["name"] != "__meta":
            schema = from_ipc(bytes(row["schema"])).schema
            found.setdefault(row["name"], []).append((row["rows"], schema))
    schemas = {}
    for name, frame in empty.items():
        seen = found.get(name, [])
        # a bucket without rows cannot know its columns (no state to take fields from)
        seen = [s for rows, s in seen if rows] or [s for _, s in seen] or [frame.schema]
        if name in one_kind:
            check_one_kind(seen, name)
        merged = merged_schema(seen, name)
        columns = arrange(name, list(merged)) if arrange else list(merged)
        schemas[name] = pl.Schema({c: merged[c] for c in columns})
    return schemas
