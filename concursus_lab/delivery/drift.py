"""Lateness that drifts: percentiles and a recommended bound per period of processing time.

One figure for a whole history hides that lateness changes with the hour: a depot whose
phones go offline at night needs a longer bound at night. ``cl.recommend_watermark(events,
every="1h")`` cuts the history into periods of processing time (aligned to the epoch) and
gives, per period, the lateness percentiles of the deliveries that arrived in it and the
bound that would have kept ``keep`` of them on time under the chosen engine
(:func:`periods`). The bound is computed on the whole replay
(:func:`concursus_lab.delivery.recommend.needed`: the watermark carries over from one
period to the next, as it would in the engine), then its quantile is taken per period; the
worst period is called out (:func:`worst_text`). ``cl.plot.drift`` draws it.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from concursus_lab.common.time import DurationLike, exact, to_timedelta, when
from concursus_lab.delivery.arrivals import Stream
from concursus_lab.exceptions import SchemaError

#: The lateness percentiles reported per period.
PERCENTILES = {"p50": 0.5, "p90": 0.9, "p99": 0.99}

TIME = pl.Datetime("us", "UTC")


def period_length(every: DurationLike) -> dt.timedelta:
    """``every`` as a positive timedelta, or a :class:`SchemaError` naming it."""
    period = to_timedelta(every, "every")
    if period <= dt.timedelta(0):
        raise SchemaError(f"`every` must be a positive duration such as '1h', got {every!r}.")
    return period


def periods(stream: Stream, need: np.ndarray, every: dt.timedelta, keep: float) -> pl.DataFrame:
    """One row per period with deliveries: ``start`` (processing time, UTC), ``deliveries``,
    ``p50``, ``p90``, ``p99``, ``max`` lateness, ``bound`` (the bound that keeps ``keep`` of
    the period's deliveries on time; ``need`` per delivery, µs, arrival order) and ``worst``
    (True on the period that needs the longest bound, the first of them on a tie)."""
    width = every // dt.timedelta(microseconds=1)
    rows = pl.DataFrame(
        {
            "period": (stream.processed // width) * width,
            "lateness": stream.processed - stream.event,
            "need": need,
        },
        schema={"period": pl.Int64, "lateness": pl.Int64, "need": pl.Int64},
    )
    rank = ((pl.len() * keep - 1e-9).ceil().cast(pl.Int64).clip(1) - 1).cast(pl.UInt32)
    table = (
        rows.group_by("period")
        .agg(
            pl.len().cast(pl.Int64).alias("deliveries"),
            *[
                pl.col("lateness").quantile(q, interpolation="nearest").alias(name)
                for name, q in PERCENTILES.items()
            ],
            pl.col("lateness").max().alias("max"),
            pl.col("need").sort().gather(rank).first().alias("bound"),
        )
        .sort("period")
    )
    durations = [*PERCENTILES, "max", "bound"]
    table = table.select(
        pl.col("period").cast(TIME).alias("start"),
        "deliveries",
        *[pl.col(c).cast(pl.Int64).cast(pl.Duration("us")) for c in durations],
    )
    worst = int(np.argmax(table["bound"].to_numpy())) if table.height else -1
    return table.with_columns(pl.Series("worst", np.arange(table.height) == worst))


def worst_row(table: pl.DataFrame | None) -> dict | None:
    """The worst period's row as a dict (None without periods)."""
    if table is None:
        return None
    rows = table.filter("worst")
    return rows.row(0, named=True) if rows.height else None


def worst_text(table: pl.DataFrame, every: dt.timedelta, knob: str) -> str:
    """Two lines: the bounds per period, and the worst period called out."""
    worst = worst_row(table)
    if worst is None:
        return f"by {exact(every)} of processing time: no deliveries"
    bounds = table["bound"]
    return (
        f"by {exact(every)} of processing time, {table.height:,} periods need {knob}s from "
        f"{exact(bounds.min())} to {exact(bounds.max())} (median {exact(bounds.median())})\n"
        f"worst: the {exact(every)} from {when(worst['start'])} UTC, {worst['deliveries']:,} "
        f"deliveries, needs {exact(worst['bound'])} (lateness p99 {exact(worst['p99'])})"
    )
