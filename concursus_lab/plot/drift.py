"""``cl.plot.drift``: lateness percentiles and the recommended bound, period by period."""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from concursus_lab.common.time import exact
from concursus_lab.exceptions import SchemaError
from concursus_lab.plot.libraries import lab

if TYPE_CHECKING:
    import altair as alt

    from concursus_lab.delivery.watermark_results import WatermarkRecommendation

#: The lines drawn, with their colours.
SERIES = {
    "p50": "#9ecae9",
    "p90": "#4c78a8",
    "p99": "#f58518",
    "bound": "#e45756",
}


def drift_lines(result: WatermarkRecommendation) -> pl.DataFrame:
    """The data behind :func:`drift`: ``start``, ``series``, ``seconds``, ``text``."""
    periods = _periods(result)
    if periods.height == 0:
        return pl.DataFrame(
            schema={"start": pl.Datetime("us", "UTC"), "series": pl.String,
                    "seconds": pl.Float64, "text": pl.String}
        )  # fmt: skip
    long = periods.unpivot(on=list(SERIES), index="start", variable_name="series")
    return long.select(
        "start",
        "series",
        (pl.col("value").dt.total_microseconds() / 1e6).alias("seconds"),
        pl.col("value").map_elements(exact, return_dtype=pl.String).alias("text"),
    ).sort("series", "start")


def drift(result: WatermarkRecommendation, *, width: int = 640) -> alt.LayerChart:
    """Lateness p50/p90/p99 per period of processing time, the bound each period needs,
    and a rule on the worst period, from ``cl.recommend_watermark(..., every="1h")``.

    >>> import concursus_lab as cl
    >>> found = cl.recommend_watermark(cl.sample.parcels(200, seed=1), keep=0.99, every="6h")
    >>> [layer["mark"]["type"] for layer in cl.plot.drift(found).to_dict()["layer"]]
    ['line', 'rule']
    """
    alt = lab("altair")

    lines = drift_lines(result)
    worst = result.worst
    y = alt.Y("seconds:Q", scale=alt.Scale(type="symlog"), title="seconds (symlog)")
    colors = alt.Scale(domain=list(SERIES), range=list(SERIES.values()))
    drawn = (
        alt.Chart(lines)
        .mark_line(point=True, interpolate="step-after")
        .encode(
            x=alt.X("start:T", title="processing time (UTC), period start"),
            y=y,
            color=alt.Color("series:N", scale=colors, title=None),
            tooltip=[alt.Tooltip("start:T", format="%Y-%m-%d %H:%M"), "series:N", "text:N"],
        )
    )
    marked = pl.DataFrame(
        {"start": [worst["start"]] if worst else []}, schema={"start": pl.Datetime("us", "UTC")}
    )
    rule = alt.Chart(marked).mark_rule(color="#e45756", strokeDash=[4, 3]).encode(x="start:T")
    knob = "grace" if result.engine == "kafka-streams" else "bound"
    subtitle = (
        f"worst period: {worst['start']:%Y-%m-%d %H:%M} UTC needs a {knob} of "
        f"{exact(worst['bound'])}; the whole history {exact(result.bound)}"
        if worst
        else "no deliveries"
    )
    title = (
        f"Lateness per {exact(_every(result))} of arrival, and the {knob} to keep "
        f"{result.keep:.1%} on time ({result.engine})"
    )
    return alt.layer(drawn, rule).properties(
        width=width, height=280, title=alt.TitleParams(title, subtitle=subtitle)
    )


def _periods(result: WatermarkRecommendation) -> pl.DataFrame:
    if result.periods is None:
        raise SchemaError(
            "this recommendation has no periods: ask for them with "
            "cl.recommend_watermark(events, every='1h'), then chart that."
        )
    return result.periods


def _every(result: WatermarkRecommendation):
    _periods(result)
    return result.every
