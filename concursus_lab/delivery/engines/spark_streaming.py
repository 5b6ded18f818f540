"""Apache Spark Structured Streaming (``engine="spark"``): ``withWatermark`` in micro-batches.

Follows the Structured Streaming Programming Guide, "Handling Late Data and Watermarking"
(https://spark.apache.org/docs/latest/streaming/apis-on-dataframes-and-datasets.html#handling-late-data-and-watermarking)
and ``DataFrame.withWatermark``
(https://spark.apache.org/docs/latest/api/python/reference/pyspark.sql/api/pyspark.sql.DataFrame.withWatermark.html):

* deliveries are read in micro-batches; with a processing-time trigger every ``trigger``
  (here 1 s unless given), a batch holds what arrived in one interval, aligned to the epoch;
* the watermark is set at the beginning of every trigger: the maximum event time seen in
  earlier batches, across all partitions of the query (``by`` changes nothing: a silent
  partition cannot hold it back, a hot one pushes it for all), minus the delay; deliveries
  in one batch all meet the same watermark, however they are ordered inside it;
* with several inputs (``inputs`` names the column that tells them apart, each with its
  own ``withWatermark``), ``spark.sql.streaming.multipleWatermarkPolicy`` combines their
  watermarks: ``"min"`` (the default) or ``"max"``; an input with no data yet has the
  watermark 0 (the epoch), so under ``"min"`` it holds every other back; the watermark never
  moves backwards;
* milliseconds: a window ``[start, end)`` is finalised (emitted in append mode, its state
  evicted) by the first batch whose watermark is at or past its end; a row is dropped as
  late when its event time (in a window: the window's end) is at or before the watermark
  *of the batch before* (Spark 3.4 and later filter late rows by the previous batch's
  watermark, so that stateful operators can be chained). When the interval before a batch
  was empty, the batch before it is the no-data batch Spark runs as soon as the watermark
  has moved, so the filter uses the current watermark. Nothing is counted late: Spark's only
  knob is the delay.

The replay was checked against Spark 3.5 itself (tests/integration/test_spark_watermark.py):
a file per micro-batch, ``withWatermark``, a windowed count, the same counts per window.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from concursus_lab.common.time import exact
from concursus_lab.delivery.arrivals import Stream
from concursus_lab.delivery.engines import (
    Engine,
    Fronts,
    Settings,
    combine_at,
    on_ticks,
    running_max,
)
from concursus_lab.delivery.engines._snippets import spark_interval

#: The trigger replayed when none is given: a micro-batch every second.
TRIGGER = dt.timedelta(seconds=1)

#: The values of ``spark.sql.streaming.multipleWatermarkPolicy``.
POLICIES = ("min", "max")


def _fronts(stream: Stream, settings: Settings) -> Fronts:
    step = settings.interval or TRIGGER // dt.timedelta(microseconds=1)
    event = stream.event // 1000
    if stream.inputs is None:
        values = [running_max(event)]
    else:
        values = [running_max(event, stream.inputs == k) for k in np.unique(stream.inputs)]
    processed = stream.processed

    def front_at(ticks: np.ndarray) -> np.ndarray:
        return combine_at(ticks, processed, values, settings.policy)

    fronts = on_ticks(processed, step, front_at)
    # the late-row filter: the previous batch's watermark when the interval before had data
    batch = processed // step
    previous_had_data = np.isin(batch - 1, batch)
    before = front_at((batch - 1) * step)
    return Fronts(
        met=np.where(previous_had_data, before, fronts.met),
        after=fronts.after,
        at=fronts.at + step,  # the batch after next is the first to evict with it
    )


def _describe(settings: Settings, unit: int) -> str:
    trigger = settings.interval or TRIGGER // dt.timedelta(microseconds=1)
    return (
        f"spark watermark: withWatermark {exact(dt.timedelta(milliseconds=settings.bound))} "
        f"delay, the maximum over all partitions, a micro-batch every "
        f"{exact(dt.timedelta(microseconds=trigger))}"
    )


def _config(advice) -> str:
    trigger = advice.options.get("trigger") or TRIGGER
    lines = [
        "# Spark Structured Streaming: the watermark, and the window it finalises",
        "from pyspark.sql import functions as F",
        "",
    ]
    policy = advice.options.get("policy")
    if policy is not None:
        lines.append(f'spark.conf.set("spark.sql.streaming.multipleWatermarkPolicy", "{policy}")')
    lines += [
        f'events = events.withWatermark("event_timestamp", "{spark_interval(advice.bound)}")',
        f"# keeps {advice.keep:.1%} of {advice.events:,} deliveries ({exact(advice.bound)})",
    ]
    if advice.window is not None:
        sizes = f'"{spark_interval(advice.window)}"'
        if advice.slide is not None:
            sizes += f', "{spark_interval(advice.slide)}"'
        lines += [
            "counts = (",
            f'    events.groupBy(F.window("event_timestamp", {sizes}))',
            "    .count()",
            '    .writeStream.outputMode("append")',
            f'    .trigger(processingTime="{spark_interval(trigger)}")',
            ")",
        ]
    else:
        lines.append(f'# with .trigger(processingTime="{spark_interval(trigger)}") on the query')
    return "\n".join(lines)


ENGINE = Engine(
    name="spark",
    unit=1000,
    own_end=0,
    fire_on_close=False,
    options=("trigger", "inputs", "policy"),
    fronts=_fronts,
    describe=_describe,
    config=_config,
    docs="https://spark.apache.org/docs/latest/streaming/apis-on-dataframes-and-datasets.html",
)
