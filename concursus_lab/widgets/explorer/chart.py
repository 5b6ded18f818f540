"""The explorer's chart: one aggregate's deliveries at (event time, processing time).

Each delivery is a point coloured by what the replay did with it (the explorer's status
names); the ``at`` rule and the ``known_at`` rule cut the lower-left corner that counts.

The chart is drawn once per aggregate; the cut is three Vega parameters (:data:`AT`,
:data:`KNOWN_AT`, :data:`OVERRIDES`), so a slider move sends a few bytes, not the chart
(:func:`move_cut`). Vega colours a point "not known yet" or "not happened yet" from the two
bounds itself; every other status is the one drawn, unless :data:`OVERRIDES` (a delivery's
row number to its status) says otherwise: the kernel sends only the deliveries whose status
at the cut differs from what the chart would show (a duplicate that wins once the later
delivery is not known yet, say).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from concursus_lab.common.time import epoch_us
from concursus_lab.plot.libraries import lab

if TYPE_CHECKING:
    import altair as alt

#: A colour per status, as the explorer names them.
STATUS_COLORS = {
    "applied": "#1b7837",
    "not happened yet": "#9e9e9e",
    "not known yet": "#4c78a8",
    "duplicate": "#b35806",
    "conflicting": "#762a83",
    "skipped": "#e45756",
    "undecodable": "#000000",
}
#: The chart's parameters: the cut (microseconds since the epoch, exact in a JS number
#: until the year 2255) and the statuses Vega cannot tell from the cut.
AT, KNOWN_AT, OVERRIDES = "at_us", "known_us", "overrides"
_STATUS = (
    f"datum.processing_us > {KNOWN_AT} ? 'not known yet' : "
    f"datum.event_us >= {AT} ? 'not happened yet' : "
    f"isValid({OVERRIDES}[datum.i]) ? {OVERRIDES}[datum.i] : datum.drawn"
)


def deliveries_chart(
    marked: pl.DataFrame, *, at: dt.datetime, known_at: dt.datetime
) -> alt.LayerChart:
    """Deliveries at (event time, processing time), coloured by status, with both bounds.

    What counts lies left of the ``at`` rule and at or below the ``known_at`` rule: the
    shaded corner. ``marked`` is the explorer's history at (``at``, ``known_at``); its
    statuses are drawn, and the cut is the chart's parameters (see :func:`move_cut`).
    The points are inline JSON text, which altair does not validate point by point.
    """
    alt = lab("altair")

    values = marked.select(
        pl.int_range(pl.len(), dtype=pl.Int64).alias("i"),
        "name",
        pl.col("status").alias("drawn"),
        pl.col("event_timestamp").dt.epoch("ms").alias("event_time"),
        pl.col("processing_timestamp").dt.epoch("ms").alias("processing_time"),
        pl.col("event_timestamp").dt.epoch("us").alias("event_us"),
        pl.col("processing_timestamp").dt.epoch("us").alias("processing_us"),
    )
    at_us, known_us = epoch_us(at), epoch_us(known_at)
    lows = [values["event_time"].min() or 0, values["processing_time"].min() or 0]
    low = min([*lows, at_us // 1000, known_us // 1000]) - 60_000
    utc = alt.Scale(type="utc", nice=False)
    bounds = alt.Chart(alt.InlineData(values=[{"low": low}])).transform_calculate(
        at=f"{AT} / 1000", known_at=f"{KNOWN_AT} / 1000"
    )
    corner = bounds.mark_rect(color="#1b7837", opacity=0.08).encode(
        x=alt.X("low:T", scale=utc), x2="at:T", y=alt.Y("low:T", scale=utc), y2="known_at:T"
    )
    at_rule = bounds.mark_rule(color="#1b7837", strokeDash=[4, 3]).encode(x="at:T")
    known_rule = bounds.mark_rule(color="#4c78a8", strokeDash=[4, 3]).encode(y="known_at:T")
    data = alt.InlineData(values=values.write_json(), format=alt.DataFormat(type="json"))
    points = (
        alt.Chart(data)
        .transform_calculate(status=_STATUS)
        .mark_circle(size=90, opacity=0.9)
        .encode(
            x=alt.X("event_time:T", scale=utc, title="event time (UTC)"),
            y=alt.Y("processing_time:T", scale=utc, title="processing time (UTC)"),
            color=alt.Color(
                "status:N",
                scale=alt.Scale(domain=list(STATUS_COLORS), range=list(STATUS_COLORS.values())),
                title="delivery",
            ),
            tooltip=[
                "name:N",
                "status:N",
                alt.Tooltip("event_time:T", format="%Y-%m-%d %H:%M:%S.%L"),
                alt.Tooltip("processing_time:T", format="%Y-%m-%d %H:%M:%S.%L"),
            ],
        )
    )
    cut = [
        alt.param(name=AT, value=at_us),
        alt.param(name=KNOWN_AT, value=known_us),
        alt.param(name=OVERRIDES, value={}),
    ]
    return (
        alt.layer(corner, at_rule, known_rule, points)
        .add_params(*cut)
        .properties(width=300, height=220, title="Counted: left of at, on or below known at")
    )


def overrides(
    drawn: pl.DataFrame, marked: pl.DataFrame, *, at: dt.datetime, known_at: dt.datetime
) -> dict[str, str]:
    """The statuses (by row number) of ``marked`` (the history at the cut, in the rows of
    ``drawn``, the history the chart was drawn from) that the chart's expression would not
    show: what :data:`OVERRIDES` must hold at this cut."""
    event_us = drawn["event_timestamp"].dt.epoch("us").to_numpy()
    processing_us = drawn["processing_timestamp"].dt.epoch("us").to_numpy()
    shown = np.where(
        processing_us > epoch_us(known_at),
        "not known yet",
        np.where(event_us >= epoch_us(at), "not happened yet", drawn["status"].to_numpy()),
    )
    exact = marked["status"].to_numpy()
    differ = np.flatnonzero(shown != exact)
    return {str(i): str(exact[i]) for i in differ.tolist()}


def move_cut(chart: Any, *, at: dt.datetime, known_at: dt.datetime, changed: dict) -> None:
    """Move the cut of ``chart`` (a ``JupyterChart`` of :func:`deliveries_chart`): its three
    parameters, in one message."""
    with chart.hold_sync():
        chart.params.at_us = float(epoch_us(at))
        chart.params.known_us = float(epoch_us(known_at))
        chart.params.overrides = changed
