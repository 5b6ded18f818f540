"""Watermarks as each engine computes them: one module per engine, one set of rules for all.

An engine is two things. Its **clock** (``fronts``): for every delivery, how far event time
has got in the engine's eyes when the delivery arrives (the *front*: Flink's newest event
time combined over splits, Spark's maximum over earlier micro-batches, Kafka Streams' stream
time of the task), and how it moves after each step. And its **rules**, which are the same
for every engine once written in terms of the front, with ``B`` the delay and ``A`` the
allowed lateness (Kafka Streams: ``A`` is the grace), for a window ending at ``e``
(exclusive):

* a delivery into the window is **dropped** when ``front >= e + B + A``;
* it is **late** (counted, but after the window's result was emitted, or for Kafka Streams
  after the window ended in stream time) when ``front >= e + B``;
* the window **fires** when ``front >= e + B`` (Kafka Streams, emitting on window close:
  ``e + B + A``).

Without ``window=`` a delivery is judged as a window of its own instant: ``e = t + 1`` unit
of the engine's time (a microsecond for the model, a millisecond for the engines), except
Spark, which drops a row at its watermark (``e = t``). With ``window=`` it is judged by every
window holding it, with the same rules (:mod:`concursus_lab.delivery.windows`), and its one
``status`` summarises them: *dropped* only when every one of its windows dropped it, *on
time* only when every one took it on time, *late* otherwise. Each engine module cites the
page it follows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from concursus_lab.delivery.arrivals import MIN, Stream
from concursus_lab.exceptions import SchemaError

#: The engines, in the order they are offered: today's model first.
ENGINES: tuple[str, ...] = ("model", "flink", "spark", "kafka-streams")

#: Engines also accepted by name: Flink 2.2's idleness (see :mod:`.flink`).
VARIANTS: tuple[str, ...] = ("flink-2.2",)

#: What happened to a delivery, by code (``Engine.codes``): the ``status`` column's values.
STATUSES: tuple[str, ...] = ("on_time", "late", "dropped")


@dataclass(frozen=True)
class Settings:
    """An engine's settings, its durations in the engine's unit (``interval`` in µs)."""

    bound: int  # B: the delay behind the front (0 for Kafka Streams)
    allowed: int  # A: allowed lateness, or Kafka Streams' grace
    idle: int | None = None  # µs of processing time (model, Flink)
    interval: int | None = None  # µs: Flink's watermark interval, Spark's trigger
    policy: str = "min"  # Spark's multiple-watermark policy


@dataclass(frozen=True)
class Fronts:
    """An engine's clock over one replay, in its unit.

    ``met[i]``: the front when delivery ``i`` (arrival position) arrived, ``MIN`` while there
    was none. ``after[j]``, ``at[j]``: the front after step ``j`` (a delivery, or a tick of an
    engine's clock, also after the last delivery) and the processing time (µs) it holds from,
    nondecreasing within each ``group`` (None: one clock for all). Windows use
    ``window_met``/``window_after`` when the engine counts windows on another clock.
    """

    met: np.ndarray
    after: np.ndarray
    at: np.ndarray
    group: np.ndarray | None = None
    window_met: np.ndarray | None = None
    window_after: np.ndarray | None = None

    def for_windows(self) -> Fronts:
        """The clock windows are counted on (Kafka Streams: one task over every partition)."""
        if self.window_met is None or self.window_after is None:
            return self
        return Fronts(met=self.window_met, after=self.window_after, at=self.at)


@dataclass(frozen=True)
class Engine:
    """One engine: its name, unit, clock, description and configuration snippet."""

    name: str
    unit: int  # µs per unit of its event time
    own_end: int  # a delivery's own window ends this many units after its event time
    fire_on_close: bool  # windows emit once the grace has passed (Kafka Streams)
    options: tuple[str, ...]  # keyword options it takes besides the delay and `by`
    fronts: Callable[[Stream, Settings], Fronts]
    describe: Callable[[Settings, int], str]
    config: Callable[..., str] | None
    docs: str
    mark_lag: int = 0  # the engine's watermark is front - B - mark_lag (Flink: 1 ms)

    def mark(self, met: np.ndarray, s: Settings) -> np.ndarray:
        """The engine's own watermark (Kafka Streams: stream time) each delivery met."""
        return np.where(met == MIN, MIN, met - s.bound - self.mark_lag)

    def codes(self, met: np.ndarray, end: np.ndarray, s: Settings) -> np.ndarray:
        """0 on time, 1 late, 2 dropped: deliveries meeting ``met``, into windows ending ``end``."""
        known = met != MIN
        dropped = known & (met >= end + s.bound + s.allowed)
        late = known & (met >= end + s.bound)
        return np.where(dropped, 2, np.where(late, 1, 0)).astype(np.int8)

    def fire_at(self, end: np.ndarray, s: Settings) -> np.ndarray:
        """The front at which a window ending at ``end`` emits its (first) result."""
        return end + s.bound + (s.allowed if self.fire_on_close else 0)

    def needed(self, met: np.ndarray, end: np.ndarray) -> np.ndarray:
        """The smallest delay (Kafka Streams: grace) that keeps each delivery in its window."""
        need = np.subtract(met, end)  # in place from here: one array of working memory
        need += 1
        np.maximum(need, 0, out=need)
        need[met == MIN] = 0
        return need

    def ends(self, event_us: np.ndarray) -> np.ndarray:
        """The end of each delivery's own window, in the engine's unit."""
        end = event_us // self.unit
        end += self.own_end  # in place: no second copy
        return end


def engine(name: object) -> Engine:
    """The engine called ``name``, or a :class:`SchemaError` listing the engines."""
    from concursus_lab.delivery.engines import flink, kafka_streams, model, spark_streaming

    table = {
        "model": model.ENGINE,
        "flink": flink.ENGINE,
        "flink-2.2": flink.ENGINE_2_2,
        "spark": spark_streaming.ENGINE,
        "kafka-streams": kafka_streams.ENGINE,
    }
    if isinstance(name, str) and name.replace("_", "-").lower() in table:
        return table[name.replace("_", "-").lower()]
    raise SchemaError(
        f"`engine` must be one of {ENGINES + VARIANTS}, got {name!r}: 'model' is "
        "concursus-lab's own bounded-out-of-orderness model, the others replay each engine's "
        "documented rules ('flink' as Flink 1.20, 'flink-2.2' with Flink 2.2's idleness)."
    )


def combine_at(
    ticks: np.ndarray, processed: np.ndarray, values: list[np.ndarray], how: str
) -> np.ndarray:
    """For each tick time, the newest value per group over deliveries arrived before it,
    combined across groups (``"min"``, groups with none yet holding it at ``MIN``, or
    ``"max"``), made nondecreasing.

    ``values`` holds one running maximum per group, over arrival positions.
    """
    j = np.searchsorted(processed, ticks, side="left")  # deliveries before each tick
    out = None
    for running in values:
        at = np.where(j > 0, running[np.maximum(j - 1, 0)], MIN)
        if out is None:
            out = at.copy()
        elif how == "max":
            np.maximum(out, at, out=out)
        else:
            np.minimum(out, at, out=out)
    if out is None:
        return np.full(len(ticks), MIN, np.int64)
    return np.maximum.accumulate(out) if len(out) else out


def on_ticks(
    processed: np.ndarray,
    step: int,
    front_at: Callable[[np.ndarray], np.ndarray],
    extra: np.ndarray | None = None,
) -> Fronts:
    """The fronts of an engine that moves its clock at ticks every ``step`` µs (Flink's
    periodic watermark, Spark's micro-batches): a delivery meets the tick at or before its
    arrival, built from the deliveries before that tick; the next tick is the first to have
    seen it. ``front_at`` gives the front at sorted tick times; ``extra`` (sorted) adds the
    ticks where it can move without a delivery (a split turning idle), so the front, made
    nondecreasing over all of them, misses no step. ``after``/``at`` are the front at every
    one of those ticks, so a window fires at the tick that moved the front, also one where a
    split turns idle after the last delivery."""
    met_ticks = (processed // step) * step
    after_ticks = met_ticks + step
    parts = [_distinct(met_ticks), _distinct(after_ticks)]
    runs = np.concatenate(parts if extra is None else [*parts, _distinct(extra)])
    ticks = _distinct(np.sort(runs, kind="stable"))  # sorted runs: a merge
    front = np.maximum.accumulate(front_at(ticks)) if len(ticks) else front_at(ticks)
    return Fronts(met=front[np.searchsorted(ticks, met_ticks)], after=front, at=ticks)


def _distinct(ordered: np.ndarray) -> np.ndarray:
    """The distinct values of a sorted array (one pass; ``np.unique`` would hash them)."""
    if len(ordered) < 2:
        return ordered
    return ordered[np.r_[True, ordered[1:] != ordered[:-1]]]


def running_max(values: np.ndarray, mine: np.ndarray | None = None) -> np.ndarray:
    """The running maximum of ``values`` (over ``mine`` only, ``MIN`` before the first)."""
    if mine is None:
        return np.maximum.accumulate(values) if len(values) else values.copy()
    picked = np.where(mine, values, MIN)
    return np.maximum.accumulate(picked) if len(picked) else picked
