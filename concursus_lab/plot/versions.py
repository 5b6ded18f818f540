"""``cl.plot.versions``: the versions of each event name over processing time.

One row of bars per aggregate type and event name; each bar counts the events processed in
a period, coloured by the version they were written in. A rollout shows as one colour giving
way to the next; an old writer still running, or a replay of old data, as an old colour
coming back (``cl.frame.schemas`` flags it, ``docs/versions.md``). The counting and stacking
are polars in the kernel: the chart gets one row per event name, version and period.

>>> import concursus_lab as cl
>>> events = cl.sample.parcels(20, seed=1)
>>> versions_bins(events, every="1h").columns
['aggregate_type', 'name', 'event', 'version', 'start', 'end', 'events']
>>> cl.plot.versions(events).to_dict()["spec"]["mark"]["type"]
'rect'
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import polars as pl

from concursus_lab.common.time import DurationLike, to_timedelta
from concursus_lab.exceptions import SchemaError
from concursus_lab.frame.schema import validate
from concursus_lab.plot.libraries import lab

if TYPE_CHECKING:
    import altair as alt

#: Period lengths chosen from, shortest first, when ``every`` is not given.
PERIODS = ("1s", "5s", "15s", "1m", "5m", "15m", "30m", "1h", "3h", "6h", "12h", "1d", "7d", "30d")
#: At most this many periods when the length is chosen.
MOST_PERIODS = 60

_TIME = pl.Datetime("us", "UTC")


def versions_bins(events: pl.DataFrame, every: DurationLike | None = None) -> pl.DataFrame:
    """The data behind :func:`versions`: events per aggregate type, name, version and period
    of processing time (``start`` inclusive, ``end`` exclusive). ``event`` is the row's label
    (``aggregate_type name``); ``every`` is the period (default: the shortest of
    :data:`PERIODS` giving at most :data:`MOST_PERIODS` periods)."""
    frame = validate(events, check_parameters=False)
    period = _period(frame, every)
    step = pl.duration(microseconds=period // dt.timedelta(microseconds=1))
    return (
        frame.select(
            "aggregate_type",
            "name",
            "version",
            pl.col("processing_timestamp").dt.truncate(_every(period)).alias("start"),
        )
        .group_by("aggregate_type", "name", "version", "start")
        .agg(pl.len().cast(pl.Int64).alias("events"))
        .select(
            "aggregate_type",
            "name",
            pl.format("{} {}", "aggregate_type", "name").alias("event"),
            "version",
            pl.col("start").cast(_TIME),
            (pl.col("start") + step).cast(_TIME).alias("end"),
            "events",
        )
        .sort("aggregate_type", "name", _numeric("version"), "version", "start")
    )


def versions(events: pl.DataFrame, every: DurationLike | None = None) -> alt.FacetChart:
    """The versions of each event name over processing time: a row of stacked bars per
    aggregate type and event name, one colour per version, stacked oldest first (see the
    module's docstring).

    Parameters
    ----------
    events
        A canonical event frame (every delivery counts: it is what was written).
    every
        The length of a bar's period, e.g. ``"1h"``; chosen from :data:`PERIODS` if not given.
    """
    alt = lab("altair")
    table = versions_bins(events, every).with_columns(
        pl.col("events").cum_sum().over("event", "start").alias("top")
    )
    order = table.select("version").unique().sort(_numeric("version"), "version")["version"]
    return (
        alt.Chart(table)
        .mark_rect()
        .encode(
            x=alt.X("start:T", title="processing time"),
            x2="end:T",
            y=alt.Y("top:Q", title="events"),
            y2=alt.Y2("below:Q"),
            color=alt.Color("version:N", sort=order.to_list(), title="version"),
            tooltip=["event:N", "version:N", "start:T", "end:T", "events:Q"],
        )
        .transform_calculate(below="datum.top - datum.events")
        .properties(width=560, height=70)
        .facet(row=alt.Row("event:N", title=None, header=alt.Header(labelAngle=0,
                                                                     labelAlign="left")),
               title="Event versions over processing time")
        .resolve_scale(y="independent")
    )  # fmt: skip


def _numeric(column: str) -> pl.Expr:
    """Versions that are integers in numeric order, other texts after them."""
    return pl.col(column).cast(pl.Int64, strict=False).fill_null(2**62)


def _period(frame: pl.DataFrame, every: DurationLike | None) -> dt.timedelta:
    if every is not None:
        period = to_timedelta(every, "every")
        if period <= dt.timedelta(0):
            raise SchemaError(f"`every` must be longer than zero, got {every!r}.")
        return period
    times = frame["processing_timestamp"]
    span = (times.max() - times.min()) if frame.height else dt.timedelta(0)
    for text in PERIODS:
        period = to_timedelta(text, "every")
        if span / period < MOST_PERIODS:
            return period
    return to_timedelta(PERIODS[-1], "every")


def _every(period: dt.timedelta) -> str:
    """A period as the text polars truncates by (whole microseconds)."""
    return f"{period // dt.timedelta(microseconds=1)}us"
