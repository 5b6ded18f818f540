"""Apache Flink (``engine="flink"``, ``"flink-2.2"``): ``forBoundedOutOfOrderness`` with
``withIdleness``.

Follows Flink's documentation, "Generating Watermarks"
(https://nightlies.apache.org/flink/flink-docs-stable/docs/dev/datastream/event-time/generating_watermarks/)
and "Windows: Allowed Lateness"
(https://nightlies.apache.org/flink/flink-docs-stable/docs/dev/datastream/operators/windows/#allowed-lateness),
checked against its sources (``BoundedOutOfOrdernessWatermarks``, ``WatermarksWithIdleness``,
``WatermarkOutputMultiplexer``, ``CombinedWatermarkStatus``, ``WindowOperator``):

* timestamps and watermarks are milliseconds; a bounded-out-of-orderness generator keeps
  the largest timestamp its split has seen and, periodically (every
  ``pipeline.auto-watermark-interval``, 200 ms by default: ``interval``), emits
  ``largest - bound - 1 ms``. So deliveries that arrive in one interval all meet the
  watermark emitted at its start, built from the deliveries before it;
* with a source of several splits (Kafka partitions: ``by``) each split has its own
  watermark and the source emits their minimum; a split with nothing yet holds it back;
* ``withIdleness``: a split is idle once nothing has arrived for longer than the timeout,
  counted from the first periodic check that saw no records (so up to two intervals after
  its last record); the check that finds it idle marks it so and, in the same emit, the
  source emits the minimum of the other splits: a window that releases fires at that check,
  also when no delivery follows. Idle splits leave the minimum until they deliver again,
  and the combined watermark never moves backwards;
* once *every* split is idle, ``engine="flink"`` holds the watermark where it is, as Flink
  1.20 does (and every release up to 2.1); ``engine="flink-2.2"`` moves it to the largest
  split watermark, as Flink 2.2 does since FLINK-38454 ("if all splits are idle, we should
  flush all watermarks"). Without ``idle_timeout`` the two are the same;
* an element is late when its timestamp is at or before the watermark; a window
  ``[start, end)`` fires when the watermark reaches ``end - 1 ms``, a late element still
  updates it (a late firing) while ``end - 1 ms + allowedLateness`` is after the
  watermark (``WindowOperator.isWindowLate``), and is dropped from it once it is not.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from functools import partial

import numpy as np

from concursus_lab.common.time import exact
from concursus_lab.delivery.arrivals import MAX, MIN, Stream
from concursus_lab.delivery.engines import Engine, Fronts, Settings, on_ticks, running_max
from concursus_lab.delivery.engines._snippets import java_duration

#: Flink's default ``pipeline.auto-watermark-interval``.
INTERVAL = dt.timedelta(milliseconds=200)


def _fronts(stream: Stream, settings: Settings, *, flush: bool = False) -> Fronts:
    """The fronts; ``flush``: once every split is idle, the largest (Flink 2.2)."""
    step = settings.interval or INTERVAL // dt.timedelta(microseconds=1)
    processed = stream.processed
    if len(processed) == 0:
        empty = np.zeros(0, np.int64)
        return Fronts(met=empty, after=empty, at=empty)
    first_check = (processed[0] // step + 1) * step
    event = stream.event // 1000

    def front_at(ticks: np.ndarray) -> np.ndarray:
        before = np.searchsorted(processed, ticks, side="left")  # deliveries before each tick
        last_index = np.maximum(before - 1, 0)
        combined = np.full(len(ticks), MAX, np.int64)
        largest = np.full(len(ticks), MIN, np.int64) if flush else MIN
        for part in range(stream.partitions):
            mine = stream.code == part
            newest = np.where(before > 0, running_max(event, mine)[last_index], MIN)
            if flush:
                largest = np.maximum(largest, newest)
            if settings.idle is not None:
                last = np.where(before > 0, running_max(processed, mine)[last_index], MIN)
                quiet_from = np.where(last == MIN, first_check, (last // step + 2) * step)
                newest = np.where(ticks - quiet_from > settings.idle, MAX, newest)
            np.minimum(combined, newest, out=combined)
        every_split_idle = combined == MAX
        return np.maximum.accumulate(np.where(every_split_idle, largest, combined))

    if settings.idle is None:
        return on_ticks(processed, step, front_at)
    # a split turns idle at the first check more than the timeout after its quiet began
    quiet = np.concatenate([[first_check], (processed // step + 2) * step])
    quiet.sort(kind="stable")
    return on_ticks(processed, step, front_at, extra=((quiet + settings.idle) // step + 1) * step)


def _describe(settings: Settings, unit: int, *, version: str = "1.20") -> str:
    interval = settings.interval or INTERVAL // dt.timedelta(microseconds=1)
    return (
        f"flink watermark (Flink {version} rules): "
        f"forBoundedOutOfOrderness {exact(_ms(settings.bound))}, "
        f"{exact(_ms(settings.allowed))} allowed lateness, emitted every "
        f"{exact(dt.timedelta(microseconds=interval))}"
    )


def _config(advice) -> str:
    lines = [
        "// Flink: the watermark strategy, and the window settings to go with it",
        "WatermarkStrategy<Event> watermarks = WatermarkStrategy",
        f"        .<Event>forBoundedOutOfOrderness({java_duration(advice.bound)})",
        "        .withTimestampAssigner((event, recordTimestamp) -> event.getEventTimestamp())",
    ]
    if advice.idle_timeout is not None:
        lines.append(f"        .withIdleness({java_duration(advice.idle_timeout)})")
    lines[-1] += ";"
    lines.append(
        f"// keeps {advice.keep:.1%} of {advice.events:,} deliveries on time "
        f"({exact(advice.bound)}); pipeline.auto-watermark-interval: "
        f"{exact(advice.options.get('interval') or INTERVAL)}"
    )
    if advice.window is not None:
        size = java_duration(advice.window)
        assigner = (
            f"TumblingEventTimeWindows.of({size})"
            if advice.slide is None
            else f"SlidingEventTimeWindows.of({size}, {java_duration(advice.slide)})"
        )
        lines.append(f"WindowAssigner<Object, TimeWindow> windows = {assigner};")
    if advice.allowed_lateness:
        lines.append(
            f"Duration allowedLateness = {java_duration(advice.allowed_lateness)};"
            " // .window(windows).allowedLateness(allowedLateness)"
        )
    return "\n".join(lines)


def _ms(value: int) -> dt.timedelta:
    return dt.timedelta(milliseconds=value)


ENGINE = Engine(
    name="flink",
    unit=1000,
    own_end=1,
    fire_on_close=False,
    options=("allowed_lateness", "idle_timeout", "interval"),
    fronts=_fronts,
    describe=_describe,
    config=_config,
    docs="https://nightlies.apache.org/flink/flink-docs-stable/docs/dev/datastream/event-time/generating_watermarks/",
    mark_lag=1,
)

#: Flink 2.2 and later: the same, but once every split is idle the watermark moves to the
#: largest split watermark (FLINK-38454).
ENGINE_2_2 = dataclasses.replace(
    ENGINE,
    name="flink-2.2",
    fronts=partial(_fronts, flush=True),
    describe=partial(_describe, version="2.2"),
)
