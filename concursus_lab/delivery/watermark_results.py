"""What :func:`cl.watermark <concursus_lab.watermark>` and :func:`cl.recommend_watermark
<concursus_lab.recommend_watermark>` return: results that print as short deterministic text."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import polars as pl

from concursus_lab.common.time import duration, exact
from concursus_lab.delivery.drift import worst_row, worst_text
from concursus_lab.exceptions import SchemaError


@dataclass(frozen=True)
class WatermarkReplay:
    """What :func:`watermark` found; prints as a short deterministic text.

    Attributes
    ----------
    events
        The input frame (canonical columns first, extras kept, rows in input order) with
        ``watermark`` (the engine's watermark when the event arrived, Kafka Streams: its
        task's stream time, with ``window=`` the stream time of the task counting the
        windows; null while there was none) and ``status`` (``"on_time"``, ``"late"`` or
        ``"dropped"``, an Enum; with ``window=``, by the windows holding it) added.
    by_partition
        One row per partition: the ``by`` key (or ``partition`` = 0 for one partition),
        ``events``, ``on_time``, ``late``, ``dropped``.
    added_wait
        ``{"p50", "p90", "p99", "max"}`` of the wait of on-time events for the watermark to
        pass their event time (timedeltas; None when no event was ever passed).
    unreleased
        On-time events that the watermark had not passed when the history ended.
    windows
        With ``window=``: one row per event-time window (see
        :func:`concursus_lab.delivery.windows.window_results`); else None.
    in_windows
        With ``window=``: one row per delivery and window holding it, what that window made
        of it: ``row`` (the delivery's row in ``events``), ``window_start``, ``window_end``,
        ``status``; ``events``' ``status`` summarises them (dropped only when every window
        dropped it, on time only when every one took it on time, else late). Else None.
    wrong_states, aggregates
        With a reducer: aggregates whose state at ``at`` differs when dropped events are
        ignored, out of ``aggregates`` with a state either way; else None.
    """

    events: pl.DataFrame
    max_out_of_orderness: dt.timedelta
    allowed_lateness: dt.timedelta
    idle_timeout: dt.timedelta | None
    by: str | None
    note: str
    by_partition: pl.DataFrame
    added_wait: dict[str, dt.timedelta | None]
    unreleased: int
    wrong_states: int | None = None
    aggregates: int | None = None
    at: dt.datetime | None = None
    engine: str = "model"
    setting: str = ""
    windows: pl.DataFrame | None = None
    window_note: str = ""
    _in_windows: Callable[[], pl.DataFrame] | None = field(default=None, repr=False, compare=False)

    @cached_property
    def in_windows(self) -> pl.DataFrame | None:
        """With ``window=``: every delivery in every window holding it (see above)."""
        return None if self._in_windows is None else self._in_windows()

    @property
    def on_time(self) -> int:
        """Events the engine counted on time."""
        return int(self.by_partition["on_time"].sum())

    @property
    def late(self) -> int:
        """Events behind the watermark (stream time) that were still counted."""
        return int(self.by_partition["late"].sum())

    @property
    def dropped(self) -> int:
        """Events the engine dropped."""
        return int(self.by_partition["dropped"].sum())

    def __str__(self) -> str:
        total = self.events.height
        idle = f", idle after {exact(self.idle_timeout)}" if self.idle_timeout else ""
        lines = [
            f"{self.setting}, {partitions(self)}{idle}",
            f"{total:,} event{'' if total == 1 else 's'}: {self.on_time:,} on time, "
            f"{self.late:,} late, {self.dropped:,} dropped ({share(self.dropped, total)})",
        ]
        if any(v is not None for v in self.added_wait.values()) or self.unreleased:
            waits = ", ".join(f"{k} {duration(v)}" for k, v in self.added_wait.items())
            lines.append(
                f"added wait of on-time events: {waits}; "
                f"{self.unreleased:,} not yet passed by the watermark at the end"
            )
        if self.window_note:
            lines.append(self.window_note)
        if self.wrong_states is not None:
            when = "at the end" if self.at is None else f"at {self.at:%Y-%m-%d %H:%M:%S} UTC"
            lines.append(
                f"states {when}: {self.wrong_states:,} of {self.aggregates:,} aggregates "
                "wrong if dropped events are ignored"
            )
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_markdown_(self) -> str:
        return "```\n" + str(self) + "\n```"


@dataclass(frozen=True)
class WatermarkRecommendation:
    """What :func:`recommend_watermark` found; ``.bound`` is the answer, ``.config()`` the
    snippet to paste.

    Attributes
    ----------
    bound
        The smallest delay that keeps ``keep`` of all events on time (``max_out_of_orderness``;
        Flink's out-of-orderness, Spark's delay); for Kafka Streams the smallest grace that
        keeps ``keep`` of them counted.
    keep
        The share asked for.
    events
        How many events (deliveries) were replayed.
    periods
        With ``every=``: one row per period of processing time (see
        :func:`concursus_lab.delivery.drift.periods`); ``.worst`` is the worst of them.
    by_partition
        One row per partition: the ``by`` key (or ``partition``), ``events``, ``bound``
        (model: the bound that partition alone would need to keep ``keep`` of its events
        on time; an engine: what its events need under the engine's clock), ``on_time``
        (its events kept at the recommended bound) and ``share`` (``on_time / events``).
    """

    bound: dt.timedelta
    keep: float
    events: int
    by: str | None
    note: str
    idle_timeout: dt.timedelta | None
    by_partition: pl.DataFrame
    engine: str = "model"
    options: dict[str, Any] = field(default_factory=dict)
    window: dt.timedelta | None = None
    slide: dt.timedelta | None = None
    allowed_lateness: dt.timedelta | None = None
    periods: pl.DataFrame | None = None
    every: dt.timedelta | None = None

    @property
    def worst(self) -> dict | None:
        """With ``every=``: the period that needs the longest bound, as a dict; else None."""
        return worst_row(self.periods)

    def config(self) -> str:
        """The configuration to paste into the engine: Flink's ``WatermarkStrategy`` (Java),
        Spark's ``withWatermark`` (PySpark) or Kafka Streams' ``TimeWindows`` with grace (Java).

        The model (``engine="model"``) is no engine's configuration: ask for one by name.
        """
        from concursus_lab.delivery.engines import engine

        make = engine(self.engine).config
        if make is None:
            raise SchemaError(
                "engine='model' is concursus-lab's own model, not an engine's configuration: "
                "recommend for one, e.g. cl.recommend_watermark(events, engine='flink') "
                "(or 'spark', 'kafka-streams'), then call .config()."
            )
        return make(self)

    def __str__(self) -> str:
        knob = "grace" if self.engine == "kafka-streams" else "max_out_of_orderness"
        kept = "counted" if self.engine == "kafka-streams" else "on time"
        engine = "" if self.engine == "model" else f"{self.engine}: "
        text = (
            f"{engine}to keep {self.keep:.1%} of {self.events:,} events {kept}: "
            f"{knob}={exact(self.bound)} ({partitions(self)}"
        )
        if self.by is not None and self.by_partition.height > 1:
            alone = self.by_partition["bound"]
            verb = "alone they would need" if self.engine == "model" else "they need"
            text += f"; {verb} {exact(alone.min())} to {exact(alone.max())}"
        if self.idle_timeout:
            text += f"; idle after {exact(self.idle_timeout)}"
        text += ")"
        if self.periods is not None and self.every is not None:
            noun = "grace" if knob == "grace" else "bound"
            text += "\n" + worst_text(self.periods, self.every, noun)
        return text

    def __repr__(self) -> str:
        return str(self)

    def _repr_markdown_(self) -> str:
        return "```\n" + str(self) + "\n```"


def partitions(result: WatermarkReplay | WatermarkRecommendation) -> str:
    """How the stream was split: ``by `kafka_partition` (4 partitions)`` or one partition."""
    if result.by is None:
        return f"one partition: {result.note}" if result.note else "one partition"
    count = result.by_partition.height
    return f"by `{result.by}` ({count:,} partition{'s' if count != 1 else ''})"


def share(part: int, total: int) -> str:
    """``part`` of ``total`` as a percentage, ``-`` of nothing."""
    return f"{part / total:.2%}" if total else "-"
