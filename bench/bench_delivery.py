"""Delivery realism: the lateness profile, the watermark replay and recommender, reconciliation.

Baselines, measured in the same run on the same events:

* the profile against polars computing the lateness percentiles alone (no disorder or repeat
  counting): what the extra columns cost;
* the watermark against a plain-Python replay, one event at a time, as a stream processor
  runs it (on at most 100,000 events, where the Python loop still finishes quickly);
* each engine's replay (Flink, Spark, Kafka Streams; with windows; per period) against the
  model's replay of the same events, measured in the same run: what an engine's rules cost;
* reconciliation against two polars anti-joins on the identity (finding missing events only).
"""

from __future__ import annotations

import polars as pl

import concursus_lab as cl
from bench._harness import measure, row

MAX_SCALE = 10_000_000
EVENTS_PER_PARCEL = 3.25
PARTITIONS = 8
PYTHON_LIMIT = 100_000
BOUND = "10m"


def run(scale: int, quick: bool) -> list[dict]:
    parcels = max(1, int(scale / EVENTS_PER_PARCEL))
    repeat = 1 if quick or scale >= 1_000_000 else 3
    deliveries = cl.sample.parcels(parcels, seed=1)
    n = deliveries.height
    topic = deliveries.with_columns(
        kafka_partition=(pl.col("aggregate_id").str.slice(7).cast(pl.Int64) % PARTITIONS).cast(
            pl.Int32
        )
    )
    rows = []

    profile = measure(lambda: cl.lateness(deliveries), repeat=repeat)
    floor = measure(lambda: _percentiles_only(deliveries), repeat=repeat)
    rows.append(
        row(
            "lateness profile (percentiles, disorder, repeats)",
            n,
            profile,
            "polars: lateness percentiles alone",
            floor,
            goal="10M in seconds",
        )
    )
    by_name = measure(lambda: cl.lateness(deliveries, by="name"), repeat=repeat)
    rows.append(row("lateness profile by name", n, by_name))

    one = measure(lambda: cl.watermark(deliveries, BOUND), repeat=repeat)
    rows.append(row(f"watermark replay, one partition, bound {BOUND}", n, one))
    many = measure(
        lambda: cl.watermark(topic, BOUND, allowed_lateness="1h", idle_timeout="2h"), repeat=repeat
    )
    rows.append(row(f"watermark replay, {PARTITIONS} partitions, idle timeout", n, many))
    advice = measure(lambda: cl.recommend_watermark(topic, keep=0.99), repeat=repeat)
    rows.append(row(f"recommend_watermark, {PARTITIONS} partitions", n, advice))
    rows += _engines(topic, many, repeat)

    m = min(n, PYTHON_LIMIT)
    head = topic.head(m)
    ours = measure(lambda: cl.watermark(head, BOUND), repeat=3)
    plain = measure(lambda: _python_replay(head, 600_000_000), repeat=1)
    rows.append(
        row(
            f"watermark replay, {PARTITIONS} partitions (first {m:,} events)",
            m,
            ours,
            "plain-Python replay, one event at a time",
            plain,
        )
    )

    table = deliveries.sort("processing_timestamp").unique(cl.IDENTITY, keep="last")
    damaged = deliveries.gather_every(2, offset=1) if n > 1 else deliveries
    found = measure(
        lambda: cl.reconcile(damaged, table, names=("kafka", "cassandra")), repeat=repeat
    )
    joins = measure(lambda: _anti_joins(damaged, table), repeat=repeat)
    rows.append(
        row(
            "reconcile (half the deliveries vs the table)",
            n,
            found,
            "polars: two anti-joins on the identity",
            joins,
        )
    )
    return rows


def _engines(topic: pl.DataFrame, model, repeat: int) -> list[dict]:
    """A row per engine, each against the model's replay of the same topic (``model``)."""
    n = topic.height
    base = f"the model's replay, {PARTITIONS} partitions, idle timeout"
    runs = {
        "flink, idleness": lambda: cl.watermark(
            topic, BOUND, "1h", engine="flink", idle_timeout="2h"
        ),
        "spark, 1 s trigger": lambda: cl.watermark(topic, BOUND, engine="spark"),
        "kafka-streams, 1h grace": lambda: cl.watermark(topic, engine="kafka-streams", grace="1h"),
        "flink, 10m tumbling windows": lambda: cl.watermark(
            topic, BOUND, "1h", engine="flink", window="10m"
        ),
        "kafka-streams, 10m windows sliding by 5m": lambda: cl.watermark(
            topic, engine="kafka-streams", grace="1h", window="10m", slide="5m"
        ),
        "recommend, flink, per 1h period": lambda: cl.recommend_watermark(
            topic, keep=0.99, engine="flink", every="1h"
        ),
    }
    return [
        row(
            f"watermark replay, {name}, {PARTITIONS} partitions",
            n,
            measure(run, repeat=repeat),
            base,
            model,
            goal="10M in seconds",
        )
        for name, run in runs.items()
    ]


def _percentiles_only(events: pl.DataFrame) -> pl.DataFrame:
    lateness = pl.col("processing_timestamp") - pl.col("event_timestamp")
    return events.select(
        *[lateness.quantile(q, interpolation="nearest").alias(str(q)) for q in (0.5, 0.9, 0.99)],
        lateness.max().alias("max"),
    )


def _anti_joins(a: pl.DataFrame, b: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    keys = list(cl.IDENTITY)
    return a.join(b, on=keys, how="anti"), b.join(a, on=keys, how="anti")


def _python_replay(events: pl.DataFrame, bound_us: int) -> list[str]:
    """What a careful user would write: sort by arrival, then one event at a time."""
    ordered = events.with_row_index("i").sort("processing_timestamp", "i")
    parts = ordered["kafka_partition"].to_list()
    times = ordered["event_timestamp"].cast(pl.Int64).to_list()
    newest: dict[int, int | None] = dict.fromkeys(set(parts))
    mark = None
    status = []
    for part, event in zip(parts, times, strict=True):
        status.append("on_time" if mark is None or event >= mark else "dropped")
        if newest[part] is None or event > newest[part]:
            newest[part] = event
        if all(v is not None for v in newest.values()):
            candidate = min(newest.values()) - bound_us
            mark = candidate if mark is None else max(mark, candidate)
    return status


if __name__ == "__main__":
    import sys

    for r in run(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000, quick=False):
        print(r)
