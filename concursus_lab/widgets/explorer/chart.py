"""The explorer's chart: one aggregate's deliveries at (event time, processing time).

Each delivery is a point coloured by what the replay did with it (the explorer's status
names); the ``at`` rule and the ``known_at`` rule cut the lower-left corner that counts.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import polars as pl

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


def deliveries_chart(
    marked: pl.DataFrame, *, at: dt.datetime, known_at: dt.datetime
) -> alt.LayerChart:
    """Deliveries at (event time, processing time), coloured by status, with both bounds.

    What counts lies left of the ``at`` rule and at or below the ``known_at`` rule: the
    shaded corner.
    """
    alt = lab("altair")

    values = marked.select(
        "name",
        "status",
        pl.col("event_timestamp").dt.epoch("ms").alias("event_time"),
        pl.col("processing_timestamp").dt.epoch("ms").alias("processing_time"),
    ).to_dicts()
    at_ms = int(at.timestamp() * 1000)
    known_ms = int(known_at.timestamp() * 1000)
    lows = [v["event_time"] for v in values] + [v["processing_time"] for v in values]
    low = min([*lows, at_ms, known_ms]) - 60_000
    utc = alt.Scale(type="utc", nice=False)
    corner = (
        alt.Chart(alt.InlineData(values=[{"x": low, "x2": at_ms, "y": low, "y2": known_ms}]))
        .mark_rect(color="#1b7837", opacity=0.08)
        .encode(x=alt.X("x:T", scale=utc), x2="x2:T", y=alt.Y("y:T", scale=utc), y2="y2:T")
    )
    bounds = alt.InlineData(values=[{"at": at_ms, "known_at": known_ms}])
    at_rule = alt.Chart(bounds).mark_rule(color="#1b7837", strokeDash=[4, 3]).encode(x="at:T")
    known_rule = (
        alt.Chart(bounds).mark_rule(color="#4c78a8", strokeDash=[4, 3]).encode(y="known_at:T")
    )
    points = (
        alt.Chart(alt.InlineData(values=values))
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
    return alt.layer(corner, at_rule, known_rule, points).properties(
        width=300, height=220, title="Counted: left of at, on or below known at"
    )
