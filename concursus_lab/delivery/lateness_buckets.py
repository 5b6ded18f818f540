"""``lateness`` of a history larger than memory: a hash bucket of whole aggregates at a time.

Each delivery's marks (its lateness, whether it is the first of its identity, whether it
arrived out of order) depend only on its aggregate's deliveries
(:func:`~concursus_lab.delivery.lateness.lateness_rows`), so each bucket of whole aggregates
(:mod:`~concursus_lab.timetravel.buckets`) is marked alone. A bucket's marks are then counted
per group and lateness value (a histogram: as many rows as distinct values, not deliveries),
the buckets' counts added, and the profile read from the sums: the percentiles are polars'
``nearest`` ones, the value at rank ``round((n - 1) * q)`` (half away from zero) of the ``n``
sorted values, found from the running count, so the profile is the in-memory one exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import polars as pl

from concursus_lab.timetravel.buckets import each_bucket

_L = "lateness"


def profile_in_buckets(
    events: Any,
    buckets: int | None,
    marks: Callable[[pl.DataFrame], tuple[list[str], pl.DataFrame]],
    percentiles: dict[str, float],
    *,
    progress: bool | None,
) -> tuple[list[str], pl.DataFrame]:
    """The ``by`` keys and the profile's columns (not yet :func:`~concursus_lab.delivery.
    lateness.finish`-ed) of ``events``; ``marks(rows)`` gives a bucket's keys and marked
    rows (``lateness``, ``__first``, ``__ooo``)."""
    found: list[list[str]] = []

    def histogram(rows: pl.DataFrame) -> pl.DataFrame:
        keys, marked = marks(rows)
        found.append(keys)
        return _counted(marked, keys, pl.len())

    parts = list(each_bucket(events, buckets, histogram, progress=progress, what="lateness"))
    keys = found[0]
    counts = _counted(pl.concat(parts), keys, pl.col("__n").sum())
    return keys, _profile(counts, keys, percentiles)


def _counted(marked: pl.DataFrame, keys: Sequence[str], n: pl.Expr) -> pl.DataFrame:
    """Deliveries per group and lateness value: how many, out of order, first deliveries
    (of marked rows, ``n`` is ``pl.len()``; of counts already made, their sum)."""
    return marked.group_by([*keys, _L]).agg(
        n.cast(pl.Int64).alias("__n"),
        pl.col("__ooo").cast(pl.Int64).sum(),
        pl.col("__first").cast(pl.Int64).sum(),
    )


def _profile(
    counts: pl.DataFrame, keys: Sequence[str], percentiles: dict[str, float]
) -> pl.DataFrame:
    """The profile of the summed counts: one row per group (one row, no keys: everything)."""
    ordered = counts.sort([*keys, _L], nulls_last=True)
    running = pl.col("__n").cum_sum()
    ordered = ordered.with_columns((running.over(keys) if keys else running).alias("__running"))
    total = pl.col("__n").sum()

    def at_rank(q: float) -> pl.Expr:
        exact = (total - 1).cast(pl.Float64) * q
        rank = exact.floor() + (exact - exact.floor() >= 0.5).cast(pl.Float64)
        return pl.col(_L).filter(pl.col("__running") > rank).first()

    aggregations = [
        total.alias("count"),
        *[at_rank(q).alias(name) for name, q in percentiles.items()],
        pl.col(_L).max().alias("max"),
        pl.col("__n").filter(pl.col(_L) < 0).sum().alias("negative"),
        pl.col("__ooo").sum().alias("out_of_order"),
        (total - pl.col("__first").sum()).alias("duplicates"),
    ]
    if keys:
        return ordered.group_by(keys).agg(aggregations)
    return ordered.select(aggregations)
