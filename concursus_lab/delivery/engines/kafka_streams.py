"""Kafka Streams (``engine="kafka-streams"``): stream time per task, and a window's grace.

Follows the Kafka Streams documentation of ``Windows`` and ``TimeWindows``
(https://kafka.apache.org/documentation/streams/developer-guide/dsl-api.html#windowing and
https://kafka.apache.org/37/javadoc/org/apache/kafka/streams/kstream/Windows.html):

* there is no watermark: each task (one per input partition: ``by``) keeps its *stream
  time*, the largest record timestamp (milliseconds) it has processed; tasks do not wait
  for each other, so a silent partition holds nothing back and a hot one moves only its
  own task;
* "windows will continue to accept new records until ``stream_time >= window_end +
  grace_period``; records that arrive after the grace period passed are considered late
  and will not be processed but are dropped";
* a record behind its task's stream time but within the grace is counted (here: *late*);
  with ``emitStrategy(EmitStrategy.onWindowClose())`` a window's one result is emitted
  when stream time reaches its end plus the grace.

Per delivery, a record is judged as a window of its own millisecond. Window results
counted over all deliveries (one key) are counted in one task, whose stream time is the
largest timestamp over every partition.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from concursus_lab.common.time import exact
from concursus_lab.delivery.arrivals import MIN, Stream, shift
from concursus_lab.delivery.engines import Engine, Fronts, Settings, running_max
from concursus_lab.delivery.engines._snippets import java_duration


def _fronts(stream: Stream, settings: Settings) -> Fronts:
    event = stream.event // 1000
    met = np.full(len(event), MIN, np.int64)
    after = np.full(len(event), MIN, np.int64)
    for part in range(stream.partitions):
        at = np.flatnonzero(stream.code == part)
        mine = running_max(event[at])
        after[at] = mine
        met[at] = shift(mine)
    whole = running_max(event)
    return Fronts(
        met=met,
        after=after,
        at=stream.processed,
        group=stream.code,
        window_met=shift(whole),
        window_after=whole,
    )


def _describe(settings: Settings, unit: int) -> str:
    return (
        f"kafka-streams stream time per task: {exact(dt.timedelta(milliseconds=settings.allowed))}"
        " grace"
    )


def _config(advice) -> str:
    grace = advice.bound
    size = "Duration.ofMinutes(5)" if advice.window is None else java_duration(advice.window)
    note = " // your windows' size" if advice.window is None else ""
    windows = (
        "TimeWindows.ofSizeWithNoGrace(windowSize)"
        if not grace
        else f"TimeWindows.ofSizeAndGrace(windowSize, {java_duration(grace)})"
    )
    if advice.slide is not None:
        windows += f"\n        .advanceBy({java_duration(advice.slide)})"
    return "\n".join(
        [
            "// Kafka Streams: windows with the grace that keeps late records counted",
            f"Duration windowSize = {size};{note}",
            f"TimeWindows windows = {windows};",
            f"// the grace keeps {advice.keep:.1%} of {advice.events:,} records counted "
            f"({exact(grace)}); .windowedBy(windows).emitStrategy(EmitStrategy.onWindowClose())",
        ]
    )


ENGINE = Engine(
    name="kafka-streams",
    unit=1000,
    own_end=1,
    fire_on_close=True,
    options=("grace",),
    fronts=_fronts,
    describe=_describe,
    config=_config,
    docs="https://kafka.apache.org/37/javadoc/org/apache/kafka/streams/kstream/Windows.html",
)
