"""Event-time windows under each engine's firing rule: which results are right, late or wrong.

A window ``[start, end)`` of event time counts the deliveries whose event time falls in it
(tumbling: ``window=`` alone; sliding, also called hopping: ``slide=`` as well, a divisor
of the size, each delivery in ``window / slide`` windows, starts aligned to the epoch). Under
an engine (:mod:`concursus_lab.delivery.engines`), a window emits its first result when the
engine's clock passes its end (Flink: the watermark reaches ``end - 1 ms``; Spark: the
watermark reaches ``end``; Kafka Streams, emitting on window close: stream time reaches
``end + grace``; the model: the watermark reaches ``end``). A delivery arriving after that
but within the allowed lateness updates it (a late firing); one arriving later is lost.

Each window's ``result`` compares what was emitted with the event-time truth (every
delivery in the window, as a count with unlimited patience would have it):

``"right"``
    the first result counted every delivery;
``"corrected late"``
    the first result missed deliveries that late firings added afterwards;
``"wrong"``
    some deliveries were lost: the final result is short of the truth;
``"open"``
    the engine's clock never passed the window: no result by the end of the history.

The same verdicts judge each delivery (:func:`place`, one rule for both): in a window, a
delivery is *on time* before the window's first result, *late* after it but still counted
(Kafka Streams: after the window's end in stream time, within the grace) and *dropped*
once the window no longer takes it (Flink: ``end - 1 ms + allowedLateness`` at or before the
watermark; Spark: ``end`` at or before the previous micro-batch's watermark; Kafka Streams:
stream time at or past ``end + grace``). A delivery's ``status`` summarises its windows
(:meth:`Placements.fates`): *dropped* only when every window holding it dropped it, *on
time* only when every one took it on time, *late* otherwise (a sliding window may drop
what the next one still counts); ``.in_windows`` of the result lists every verdict.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

from concursus_lab.common.time import DurationLike, exact, to_timedelta
from concursus_lab.delivery.arrivals import MIN, micros
from concursus_lab.delivery.engines import STATUSES, Engine, Fronts, Settings
from concursus_lab.exceptions import SchemaError

#: What a window's result was, in the ``result`` column.
RESULTS: tuple[str, ...] = ("right", "corrected late", "wrong", "open")

TIME = pl.Datetime("us", "UTC")


def window_sizes(
    window: DurationLike | None, slide: DurationLike | None
) -> tuple[dt.timedelta | None, dt.timedelta | None]:
    """``window`` and ``slide`` as timedeltas, checked: positive, slide dividing the size."""
    if window is None:
        if slide is not None:
            raise SchemaError(
                f"`slide` ({slide!r}) needs a `window` size: pass window='10m', slide='5m' "
                "for sliding windows, or window alone for tumbling ones."
            )
        return None, None
    size = to_timedelta(window, "window")
    if size <= dt.timedelta(0):
        raise SchemaError(f"`window` must be a positive duration, got {window!r}.")
    if slide is None:
        return size, None
    step = to_timedelta(slide, "slide")
    if step <= dt.timedelta(0) or size % step:
        raise SchemaError(
            f"`slide` must be a positive duration that divides the window ({exact(size)}), "
            f"got {slide!r}: e.g. window='10m', slide='5m'."
        )
    return size, (None if step == size else step)


def earliest_ends(event: np.ndarray, size: int, slide: int | None) -> np.ndarray:
    """The end of the earliest-ending window holding each event time (all in one unit)."""
    step = size if slide is None else slide
    return (event // step) * step + step


@dataclass(frozen=True)
class Placements:
    """Every delivery in every window holding it, and what the engine made of it there.

    Pair ``c * n + i`` is delivery ``i`` (arrival position) in the window starting ``c``
    slides before the latest one holding it; the last ``n`` pairs are the earliest-ending
    windows. Times are in the engine's unit.
    """

    start: np.ndarray  # window start per pair
    code: np.ndarray  # 0 on time, 1 late, 2 dropped (Engine.codes), per pair
    width: int
    copies: int
    unit: int

    def fates(self) -> np.ndarray:
        """Per delivery: 2 (dropped) when every window holding it dropped it, 0 (on time)
        when every one took it on time, else 1 (late: taken late by some, or dropped by some
        and counted by another)."""
        if self.copies == 1:
            return self.code
        codes = self.code.reshape(self.copies, -1)
        best, worst = codes.min(axis=0), codes.max(axis=0)
        return np.where(best == 2, 2, np.where(worst == 0, 0, 1)).astype(np.int8)

    def earliest_ends(self) -> np.ndarray:
        """Per delivery, the end of the earliest-ending window holding it."""
        n = len(self.start) // self.copies
        return self.start[(self.copies - 1) * n :] + self.width

    def frame(self, rows: np.ndarray) -> pl.DataFrame:
        """One row per delivery and window: ``row`` (the delivery's row in the input, given
        ``rows``: arrival position -> input row), ``window_start``, ``window_end`` and
        ``status``, by row then window."""
        row = np.tile(rows, self.copies)
        order = np.lexsort((self.start, row))  # by row, then window
        start = self.start[order]
        statuses = pl.Series("status", STATUSES, dtype=pl.Enum(list(STATUSES)))
        return pl.DataFrame(
            [
                pl.Series("row", row[order], pl.Int64),
                pl.Series("window_start", start * self.unit, pl.Int64).cast(TIME),
                pl.Series("window_end", (start + self.width) * self.unit, pl.Int64).cast(TIME),
                statuses.gather(self.code[order]),
            ]
        )


def place(
    engine: Engine,
    settings: Settings,
    fronts: Fronts,
    event_us: np.ndarray,
    size: dt.timedelta,
    slide: dt.timedelta | None,
) -> Placements:
    """Every delivery in every window holding it, judged by the engine's rule
    (:meth:`Engine.codes`) on the clock that counts windows (``fronts.for_windows()``)."""
    unit = engine.unit
    width = max(micros(size) // unit, 1)
    step = width if slide is None else max(micros(slide) // unit, 1)
    met = fronts.for_windows().met
    event = event_us // unit
    copies = width // step
    base = (event // step) * step
    start = np.concatenate([base - c * step for c in range(copies)])
    code = engine.codes(np.tile(met, copies), start + width, settings)
    return Placements(start, code, width, copies, unit)


def window_results(
    engine: Engine, settings: Settings, fronts: Fronts, placed: Placements
) -> pl.DataFrame:
    """One row per window: ``window_start``, ``window_end``, ``events`` (the truth),
    ``first_result`` (counted in it), ``late_updates``, ``lost``, ``fired_at`` (processing
    time of the first result, null while open) and ``result``."""
    unit, width, code = engine.unit, placed.width, placed.code
    clock = fronts.for_windows()
    met = np.tile(clock.met, placed.copies)  # a window fired before the delivery came
    fired = (met != MIN) & (met >= engine.fire_at(placed.start + width, settings))
    pairs = pl.DataFrame(
        {
            "start": placed.start,
            "first": (code != 2) & ~fired,
            "update": (code != 2) & fired,
            "lost": code == 2,
        }
    )
    table = (
        pairs.group_by("start")
        .agg(
            pl.len().cast(pl.Int64).alias("events"),
            pl.col("first").sum().cast(pl.Int64).alias("first_result"),
            pl.col("update").sum().cast(pl.Int64).alias("late_updates"),
            pl.col("lost").sum().cast(pl.Int64).alias("lost"),
        )
        .sort("start")
    )
    ends = table["start"].to_numpy() + width
    index = np.searchsorted(clock.after, engine.fire_at(ends, settings), side="left")
    fired = index < len(clock.after)
    at = np.where(fired, clock.at[np.minimum(index, max(len(clock.after) - 1, 0))], 0)
    status = np.where(
        table["lost"].to_numpy() > 0,
        2,
        np.where(~fired, 3, np.where(table["late_updates"].to_numpy() > 0, 1, 0)),
    )
    return table.select(
        (pl.col("start") * unit).cast(TIME).alias("window_start"),
        ((pl.col("start") + width) * unit).cast(TIME).alias("window_end"),
        "events",
        "first_result",
        "late_updates",
        "lost",
        pl.Series("fired_at", at, pl.Int64).cast(TIME).alias("fired_at"),
        pl.Series("result", RESULTS, dtype=pl.Enum(list(RESULTS))).gather(status).alias("result"),
    ).with_columns(pl.when(pl.Series(fired)).then(pl.col("fired_at")).alias("fired_at"))


def summary(windows: pl.DataFrame, size: dt.timedelta, slide: dt.timedelta | None) -> str:
    """One line: how many windows, and how many of each result."""
    kind = "tumbling" if slide is None else f"sliding by {exact(slide)}"
    counts = dict(windows.group_by("result").len().iter_rows())
    updates = int(windows["late_updates"].sum() or 0)
    lost = int(windows["lost"].sum() or 0)
    return (
        f"{exact(size)} windows, {kind}: {windows.height:,} windows, "
        f"{counts.get('right', 0):,} right, {counts.get('corrected late', 0):,} corrected late "
        f"({updates:,} late updates), {counts.get('wrong', 0):,} wrong ({lost:,} deliveries "
        f"lost), {counts.get('open', 0):,} still open"
    )
