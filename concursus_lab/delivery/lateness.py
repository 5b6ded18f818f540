"""How messy is delivery? Lateness, clock skew, disorder and repeats, per group.

Lateness is ``processing_timestamp - event_timestamp``: how long an event took to be
logged. Negative lateness means the source's clock runs ahead of the logger's.

>>> import concursus_lab as cl
>>> profile = cl.lateness(cl.sample.parcels(2_000, seed=1), by="stream_id")
>>> profile.columns
['stream_id', 'count', 'p50', 'p90', 'p99', 'p999', 'max', 'negative', 'out_of_order', 'duplicates']
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from concursus_lab.exceptions import SchemaError
from concursus_lab.frame import conflicts
from concursus_lab.frame.identity import decide, tie_columns
from concursus_lab.frame.schema import validate

#: The percentiles reported, with their column names.
PERCENTILES = {"p50": 0.5, "p90": 0.9, "p99": 0.99, "p999": 0.999}

_LATENESS = "lateness"


def lateness(events: pl.DataFrame, by: str | Sequence[str] | None = None) -> pl.DataFrame:
    """A lateness and disorder profile of ``events``, one row per ``by`` group.

    Pass every delivery (``source.events(duplicates="keep")``) to count repeats; a frame
    with one row per identity has none to count.

    Columns: the ``by`` keys, then ``count`` (deliveries), ``p50``, ``p90``, ``p99``,
    ``p999`` and ``max`` lateness (Durations), ``negative`` (deliveries logged before they
    happened: a clock running ahead), ``out_of_order`` (events that arrived after an event of
    the same aggregate with a later event time; first deliveries only) and ``duplicates``
    (deliveries beyond the first of each identity). Arrival order and identity are the
    identity module's (``frame/identity.py``): processing time, then Kafka's partition and
    offset when the frame has them, then row; conflicting deliveries are warned about.

    Parameters
    ----------
    events
        A canonical event frame (extra columns such as ``kafka_partition`` may be grouped on).
    by
        Column(s) to group by, e.g. ``"name"``, ``"stream_id"``, ``"kafka_partition"``;
        None gives one row for everything.
    """
    keys = by_columns(events, by)
    frame = lateness_rows(events, keys)
    aggregations = [
        pl.len().alias("count"),
        *[
            pl.col(_LATENESS).quantile(q, interpolation="nearest").alias(name)
            for name, q in PERCENTILES.items()
        ],
        pl.col(_LATENESS).max().alias("max"),
        (pl.col(_LATENESS) < 0).sum().alias("negative"),
        pl.col("__ooo").sum().alias("out_of_order"),
        (pl.len() - pl.col("__first").sum()).alias("duplicates"),
    ]
    result = frame.group_by(keys).agg(aggregations) if keys else frame.select(aggregations)
    return finish(result, keys)


def lateness_rows(events: pl.DataFrame, keys: Sequence[str]) -> pl.DataFrame:
    """One row per delivery: the ``keys``, ``lateness`` (microseconds), ``__first`` (the
    first delivery of its identity) and ``__ooo`` (out of order); rows grouped by aggregate.

    Each row's flags depend only on its own aggregate's deliveries, so any split of the
    aggregates (Spark's buckets) gives the same rows.
    """
    decision = decide(events, "first")  # the first delivery of each identity
    conflicts.report(decision.conflicts)
    first = pl.lit(True) if decision.mask is None else pl.Series(decision.mask)
    ties = tie_columns(events)
    needed = ("aggregate_type", "aggregate_id", "event_timestamp", "processing_timestamp")
    frame = events.select(
        *needed,
        *[t for t in ties if t not in needed],
        *[k for k in keys if k not in needed and k not in ties],
    ).with_columns(first.alias("__first"))
    frame = frame.with_row_index("__arrival")
    return _arrival_order(frame, ties).with_columns(
        (pl.col("processing_timestamp") - pl.col("event_timestamp"))
        .dt.total_microseconds()
        .alias(_LATENESS)
    )


def finish(result: pl.DataFrame, keys: Sequence[str]) -> pl.DataFrame:
    """The profile's columns in order and dtype (durations, Int64 counts), sorted by key."""
    if keys:
        result = result.sort(keys, nulls_last=True)
    durations = [*PERCENTILES, "max"]
    counts = ["count", "negative", "out_of_order", "duplicates"]
    return result.with_columns(
        *[pl.col(c).cast(pl.Duration("us")) for c in durations],
        *[pl.col(c).cast(pl.Int64) for c in counts],
    ).select(*keys, "count", *durations, "negative", "out_of_order", "duplicates")


def by_columns(events: pl.DataFrame, by: str | Sequence[str] | None) -> list[str]:
    """The ``by`` columns as a list, each checked to be in ``events``."""
    validate(events, check_parameters=False)
    if by is None:
        return []
    keys = [by] if isinstance(by, str) else list(by)
    missing = [k for k in keys if k not in events.columns]
    if missing:
        import difflib

        near = {k: difflib.get_close_matches(k, events.columns, 1) for k in missing}
        hints = "; ".join(
            f"{k!r} (did you mean {v[0]!r}?)" if v else repr(k) for k, v in near.items()
        )
        raise SchemaError(f"`by` names column(s) the frame does not have: {hints}.")
    return keys


def _arrival_order(frame: pl.DataFrame, ties: tuple[str, ...]) -> pl.DataFrame:
    """Rows sorted by aggregate then arrival (processing time, ``ties``, row), with the
    ``__ooo`` flag: a first delivery (``__first``) whose aggregate already had an event with
    a later event time arrive. Aggregates are sorted by a 64-bit hash (fast); a hash
    collision is detected and falls back to sorting by name.
    """
    aggregate = pl.struct("aggregate_type", "aggregate_id")
    keyed = frame.with_columns(aggregate.hash().alias("__agg"))
    keyed = keyed.sort("__agg", "processing_timestamp", *ties, "__arrival")
    runs = keyed.select(
        pl.col("__agg").rle_id().max().alias("hashed"),
        aggregate.rle_id().max().alias("named"),
    ).row(0)
    if runs[0] != runs[1]:  # two aggregates share a hash: order by the names themselves
        keyed = frame.sort(
            "aggregate_type", "aggregate_id", "processing_timestamp", *ties, "__arrival"
        )
        keyed = keyed.with_columns(aggregate.rle_id().alias("__agg"))
    keyed = keyed.with_columns(
        pl.col("__agg").rle_id().cast(pl.Int64).alias("__seg"),
        pl.col("event_timestamp").rank("dense").cast(pl.Int64).alias("__rank"),
    )
    # a running maximum of event-time rank that restarts at each aggregate: offset each
    # aggregate's ranks above every earlier aggregate's, so one cumulative max serves all
    span = pl.col("__rank").max() + 1
    base = pl.col("__seg") * span
    seen = base + pl.when(pl.col("__first")).then(pl.col("__rank")).otherwise(0)
    latest_before = seen.cum_max().shift(1) - base
    ooo = pl.col("__first") & (latest_before > pl.col("__rank")).fill_null(False)
    return keyed.with_columns(ooo.alias("__ooo"))
