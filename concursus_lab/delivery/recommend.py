"""The smallest delay (Kafka Streams: grace) that keeps a share of deliveries, per engine.

Exact, not searched: under every engine's rules (:mod:`concursus_lab.delivery.engines`) the
front a delivery meets does not depend on the delay, and a delivery is on time exactly when
the delay reaches how far that front was past the end of its own window (or, with
``window=``, of the earliest window holding it). So the answer is a quantile of those
distances, :func:`needed`.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from concursus_lab.common.time import DurationLike
from concursus_lab.delivery.arrivals import DEFAULT_BY, Stream, micros, prepare, quantile
from concursus_lab.delivery.drift import period_length, periods
from concursus_lab.delivery.engines import Engine, Fronts
from concursus_lab.delivery.engines import engine as find_engine
from concursus_lab.delivery.engines.model import fronts_and_own
from concursus_lab.delivery.engines.options import read_options
from concursus_lab.delivery.watermark_results import WatermarkRecommendation
from concursus_lab.delivery.windows import earliest_ends, window_sizes
from concursus_lab.exceptions import SchemaError


def recommend_watermark(
    events: pl.DataFrame,
    keep: float = 0.999,
    *,
    engine: str = "model",
    by: str | None = DEFAULT_BY,
    idle_timeout: DurationLike | None = None,
    interval: DurationLike | None = None,
    trigger: DurationLike | None = None,
    inputs: str | None = None,
    policy: str | None = None,
    window: DurationLike | None = None,
    slide: DurationLike | None = None,
    allowed_lateness: DurationLike | None = None,
    every: DurationLike | None = None,
) -> WatermarkRecommendation:
    """The smallest ``max_out_of_orderness`` that keeps ``keep`` of the events on time.

    Exact, not searched: an event is on time exactly when the bound is at least how far the
    engine's front was ahead of it on arrival, so the answer is a quantile of those
    distances (the smallest one that reaches ``keep``). Use ``.bound``; ``.config()`` writes
    the configuration to paste for ``engine``; ``.by_partition`` shows each partition.
    For ``engine="kafka-streams"`` the answer is the grace that keeps ``keep`` counted.

    Parameters
    ----------
    events
        A canonical event frame, every delivery (``source.events(duplicates="keep")``).
    keep
        The share of events that must be on time, in (0, 1].
    engine, by, idle_timeout, interval, trigger, inputs, policy
        As for :func:`~concursus_lab.watermark` (the same fallback when the frame has no
        ``kafka_partition`` column).
    window, slide
        Keep deliveries in time for their event-time windows of this size (the earliest
        window holding each) rather than their own instant; the snippet declares them.
    allowed_lateness
        Flink only: written into the snippet beside the windows.
    every
        Also recommend per period of processing time (``"1h"``): ``.periods`` holds each
        period's lateness percentiles and the bound it alone needs, the worst called out
        (:mod:`concursus_lab.delivery.drift`; ``cl.plot.drift`` draws it).

    Examples
    --------
    >>> import datetime as dt
    >>> import polars as pl
    >>> import concursus_lab as cl
    >>> def at(*seconds):
    ...     t0 = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
    ...     return pl.Series([t0 + dt.timedelta(seconds=s) for s in seconds])
    >>> history = cl.sample.parcels(4, seed=1).head(4).with_columns(
    ...     event_timestamp=at(10, 20, 12, 21), processing_timestamp=at(11, 21, 22, 23)
    ... )
    >>> advice = cl.recommend_watermark(history, keep=1.0)
    >>> advice.bound  # "c" arrived 8 s behind the newest event time, 20 s
    datetime.timedelta(seconds=8)
    >>> cl.watermark(history, advice.bound).dropped
    0
    >>> print(cl.recommend_watermark(history, keep=0.75))  # doctest: +NORMALIZE_WHITESPACE
    to keep 75.0% of 4 events on time: max_out_of_orderness=0s (one partition: the frame has
    no `kafka_partition` column)
    >>> print(cl.recommend_watermark(history, keep=1.0, engine="spark").config())
    # Spark Structured Streaming: the watermark, and the window it finalises
    from pyspark.sql import functions as F
    <BLANKLINE>
    events = events.withWatermark("event_timestamp", "0 seconds")
    # keeps 100.0% of 4 deliveries (0s)
    # with .trigger(processingTime="1 second") on the query

    Spark filters late rows by the watermark of the batch before: "c", read in the batch
    after the one that read 20 s, still meets 10 s, and needs no delay at all.
    """
    if isinstance(keep, bool) or not isinstance(keep, int | float) or not 0 < keep <= 1:
        raise SchemaError(f"`keep` must be a share of events in (0, 1], e.g. 0.999, got {keep!r}.")
    kind = find_engine(engine)
    opts = read_options(
        kind,
        None,
        allowed_lateness,
        idle_timeout=idle_timeout,
        interval=interval,
        trigger=trigger,
        inputs=inputs,
        policy=policy,
        need_bound=False,
    )
    size, step = window_sizes(window, slide)
    period = None if every is None else period_length(every)
    _, stream = prepare(events, by, opts.inputs)
    if kind.name == "model" and size is None:  # a partition alone needs its own distance
        fronts, alone_need = fronts_and_own(stream, opts.settings.idle)
    else:
        fronts = kind.fronts(stream, opts.settings)
        alone_need = None
    need = needed(kind, fronts, stream, size, step)
    bound = quantile(need, keep)
    parts = stream.partitions
    own = need if alone_need is None else alone_need
    if parts == 1:  # no copy of a partition that is the whole stream
        alone = [bound if own is need else quantile(own, keep)]
    else:
        alone = [quantile(own[stream.code == p], keep) for p in range(parts)]
    events_per = np.bincount(stream.code, minlength=parts)
    on_time = np.bincount(stream.code[need <= bound], minlength=parts)
    table = pl.DataFrame(
        {
            "events": events_per,
            "bound": pl.Series(alone, dtype=pl.Int64).cast(pl.Duration("us")),
            "on_time": on_time,
            "share": on_time / np.maximum(events_per, 1),
        },
        schema={
            "events": pl.Int64,
            "bound": pl.Duration("us"),
            "on_time": pl.Int64,
            "share": pl.Float64,
        },
    )
    return WatermarkRecommendation(
        bound=dt.timedelta(microseconds=int(bound)),
        keep=float(keep),
        events=len(stream.event),
        by=stream.by,
        note=stream.note,
        idle_timeout=opts.idle,
        by_partition=pl.concat([stream.labels.to_frame(), table], how="horizontal"),
        engine=kind.name,
        options=opts.shown,
        window=size,
        slide=step,
        allowed_lateness=opts.allowed or None,
        periods=None if period is None else periods(stream, need, period, keep),
        every=period,
    )


def needed(
    kind: Engine,
    fronts: Fronts,
    stream: Stream,
    size: dt.timedelta | None = None,
    slide: dt.timedelta | None = None,
) -> np.ndarray:
    """Per delivery (arrival order), the smallest delay in µs that keeps it (see module),
    given the engine's ``fronts`` over ``stream``."""
    if size is None:
        ends = kind.ends(stream.event)
        met = fronts.met
    else:
        width = max(micros(size) // kind.unit, 1)
        step = None if slide is None else max(micros(slide) // kind.unit, 1)
        ends = earliest_ends(stream.event // kind.unit, width, step)
        met = fronts.for_windows().met
    need = kind.needed(met, ends)
    del ends
    need *= kind.unit  # in place: no second copy
    return need
