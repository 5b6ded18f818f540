"""``lateness`` on Spark: each delivery's flags from the local rules, the profile in Spark.

:func:`concursus_lab.delivery.lateness.lateness_rows` marks each delivery (its lateness,
whether it is the first of its identity, whether it arrived out of order): those depend only
on its aggregate's deliveries, so each bucket of whole aggregates is marked by that function
itself. The profile is then aggregated in Spark, percentiles included: polars' ``nearest``
percentile of ``n`` values is the one at rank ``round((n - 1) * q)`` (half away from zero),
which Spark finds with a row number per group, so the profile is the local one exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

from concursus_lab.delivery.lateness import PERCENTILES, by_columns, finish, lateness_rows
from concursus_lab.frame.schema import empty
from concursus_lab.spark import buckets as _buckets
from concursus_lab.spark._pyspark import pyspark
from concursus_lab.spark.read import to_polars
from concursus_lab.spark.result import SparkFrame

_MARKS = ("lateness", "__first", "__ooo")


def lateness(
    events: Any, by: str | Sequence[str] | None = None, *, buckets: int | None = None
) -> SparkFrame:
    """:func:`concursus_lab.lateness` on Spark: one row per ``by`` group.

    In the Spark DataFrame the percentiles and ``max`` are microseconds (Spark has no exact
    duration type); ``.to_polars()`` gives the local frame, Durations included, sorted by key.
    """
    F, Window = pyspark().sql.functions, pyspark().sql.Window
    shape = pl.concat([empty(), _empty_like(events)], how="diagonal_relaxed")
    keys = by_columns(shape, by)

    def answer(frame):
        return lateness_rows(frame, keys)

    schema = lateness_rows(shape, keys).select(*keys, *_MARKS).schema
    found = _buckets.conflicts_found(events)
    rows = _buckets.map_rows(events, answer, schema, buckets=buckets, found=found)
    group = Window.partitionBy(*keys) if keys else Window.partitionBy()
    ranked = rows.withColumn(
        "__rank", F.row_number().over(group.orderBy("lateness")) - 1
    ).withColumn("__n", F.count(F.lit(1)).over(group))
    one = F.lit(1)
    aggregations = [
        F.count(one).alias("count"),
        *[
            F.max(
                F.when(F.col("__rank") == F.round((F.col("__n") - 1) * q), F.col("lateness"))
            ).alias(name)
            for name, q in PERCENTILES.items()
        ],
        F.max("lateness").alias("max"),
        _total((F.col("lateness") < 0).cast("long")).alias("negative"),
        _total(F.col("__ooo").cast("long")).alias("out_of_order"),
        (F.count(one) - _total(F.col("__first").cast("long"))).alias("duplicates"),
    ]
    profile = ranked.groupBy(*keys).agg(*aggregations) if keys else ranked.agg(*aggregations)
    if keys:
        profile = profile.orderBy(*[F.col(k).asc_nulls_last() for k in keys])

    def collect() -> pl.DataFrame:
        collected = to_polars(profile)
        _buckets.report_found(found)  # the workers' conflicts, warned about here
        return finish(collected, keys)

    return SparkFrame(profile, collect, "a lateness profile")


def _total(column: Any) -> Any:
    """The sum of ``column``: 0 over no rows, as polars sums (Spark's ``sum`` is null)."""
    F = pyspark().sql.functions
    return F.coalesce(F.sum(column), F.lit(0).cast("long"))


def _empty_like(events: Any) -> pl.DataFrame:
    """An empty polars frame with ``events``' columns (to check ``by`` as locally)."""
    from pyspark.sql.pandas.types import to_arrow_schema

    return pl.from_arrow(to_arrow_schema(events.schema).empty_table())  # type: ignore[return-value]
