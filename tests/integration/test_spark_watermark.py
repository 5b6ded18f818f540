"""Spark itself, on the same recorded arrivals: its windowed counts equal the replay's.

Each micro-batch of the replay (the deliveries that arrived in one trigger interval) is
written as one Parquet file, and real Spark (local[1]) reads them one file per batch
(``maxFilesPerTrigger=1``, ``Trigger.AvailableNow``) through ``withWatermark`` and a windowed
count in update mode: the last count Spark emits for each window must equal what
``cl.watermark(..., engine="spark", window=...)`` says was counted (``events - lost``), so
Spark drops exactly the deliveries the replay drops. Every interval holds at least one
delivery, so every replayed batch is one of Spark's (an empty interval would be a no-data
batch, which a file source run this way does not make).
"""

from __future__ import annotations

import datetime as dt
import os

import numpy as np
import polars as pl
import pytest

import concursus_lab as cl
import concursus_lab.spark as cls  # needs the spark extra, which the test command installs
from tests.unit.test_watermark import stream

pytestmark = [pytest.mark.spark, pytest.mark.slow, pytest.mark.timeout(600)]

TRIGGER = dt.timedelta(seconds=1)


@pytest.fixture(scope="module")
def spark():
    session = cls.session("local[1]", memory="1g")
    yield session
    session.stop()


def arrivals(seed: int, intervals: int = 40) -> pl.DataFrame:
    """One to three deliveries in every second; most 0-2 s late, some up to 20 s, a few
    from a clock running ahead."""
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(intervals):
        for offset in sorted(rng.integers(0, 1000, rng.integers(1, 4))):
            processed = k * 1000 + int(offset)
            late = int(rng.choice([rng.integers(0, 2000), rng.integers(0, 20_000), -1500]))
            rows.append(((processed - late) / 1000, processed / 1000))
    return stream(*rows)


def spark_counts(spark, history: pl.DataFrame, folder, delay: str, size: str, slide: str | None):
    from pyspark.sql import functions as F

    step = TRIGGER // dt.timedelta(microseconds=1)
    batches = history.select("event_timestamp", "processing_timestamp").with_columns(
        batch=pl.col("processing_timestamp").cast(pl.Int64) // step
    )
    source = folder / "batches"
    source.mkdir()
    for i, (_, part) in enumerate(sorted(batches.partition_by("batch", as_dict=True).items())):
        path = source / f"batch-{i:06d}.parquet"
        part.select("event_timestamp").write_parquet(path)
        os.utime(path, (1_000_000 + 10 * i, 1_000_000 + 10 * i))  # the order Spark reads them
    counts: dict = {}

    def keep(batch, _id):
        for row in batch.collect():
            counts[row["window"]["start"].replace(tzinfo=dt.UTC)] = row["count"]

    windows = (
        F.window("event_timestamp", size)
        if slide is None
        else (F.window("event_timestamp", size, slide))
    )
    query = (
        spark.readStream.schema("event_timestamp timestamp")
        .option("maxFilesPerTrigger", 1)
        .parquet(str(source))
        .withWatermark("event_timestamp", delay)
        .groupBy(windows)
        .count()
        .writeStream.outputMode("update")
        .foreachBatch(keep)
        .option("checkpointLocation", str(folder / "checkpoint"))
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination(300)
    return counts


@pytest.mark.parametrize(
    ("seed", "delay", "size", "slide"),
    [(1, "3 seconds", "5 seconds", None), (2, "0 seconds", "10 seconds", "5 seconds")],
)
def test_spark_drops_what_the_replay_drops(spark, tmp_path, seed, delay, size, slide):
    history = arrivals(seed)
    replay = cl.watermark(
        history,
        delay.replace(" seconds", "s"),
        engine="spark",
        trigger=TRIGGER,
        window=size.replace(" seconds", "s"),
        slide=None if slide is None else slide.replace(" seconds", "s"),
    )
    ours = {
        r["window_start"]: r["events"] - r["lost"]
        for r in replay.windows.iter_rows(named=True)
        if r["events"] > r["lost"]
    }
    assert int(replay.windows["lost"].sum()) > 0  # the history has late deliveries to drop
    assert spark_counts(spark, history, tmp_path, delay, size, slide) == ours
