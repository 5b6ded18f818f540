"""Charts that people would rather look at than read: each returns an altair chart.

The data is summarised in the kernel first (binned, counted), so a chart of ten million
events sends a few dozen rows to the browser. Charts are altair objects: change them with
``.properties(...)``, ``.encode(...)`` and so on before they are shown. :func:`save` writes
one, or a widget's, to a PNG, an SVG or an HTML page that needs no network.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from concursus_lab.common.time import TimeLike, duration, exact, time_range
from concursus_lab.frame.schema import validate
from concursus_lab.plot.drift import drift as drift
from concursus_lab.plot.idempotency import idempotency as idempotency
from concursus_lab.plot.libraries import lab
from concursus_lab.plot.save import save as save
from concursus_lab.plot.versions import versions as versions

if TYPE_CHECKING:
    import altair as alt

    from concursus_lab.delivery.watermark import WatermarkReplay

#: Bin edges of lateness in seconds: half-decades on each side of zero.
_POSITIVE_EDGES = (
    0,
    0.1,
    0.3,
    1,
    3,
    10,
    30,
    60,
    180,
    600,
    1800,
    3600,
    3 * 3600,
    10 * 3600,
    86_400,
    3 * 86_400,
)
_NEGATIVE_EDGES = (-3600, -600, -60, -10, -1, -0.1)


def offline() -> None:
    """Render altair charts in this notebook without the internet.

    JupyterLab bundles no Vega-Lite 6 renderer, and altair's default HTML output loads
    Vega from a CDN. This switches altair to its ``JupyterChart`` widget with the Vega
    bundle that ships in vl-convert, so charts draw offline and stay interactive. Call it
    once, at the top of a notebook. The bundle is built once per altair and vl-convert
    version and cached under ``~/.cache/concursus-lab``. Each chart's ``text/plain`` is then
    its stable text form (:mod:`concursus_lab.plot.text_form`), which notebook CI compares.
    """
    alt = lab("altair")

    from concursus_lab.plot.offline import enable_offline
    from concursus_lab.plot.text_form import with_text_form

    enable_offline()
    alt.renderers.enable("jupyter", offline=True)
    alt.renderers.register("concursus-lab", with_text_form(alt.renderers.get()))
    alt.renderers.enable("concursus-lab")


def lateness(events: pl.DataFrame, by: str | None = None) -> alt.Chart:
    """Distribution of lateness (processing − event time) on half-decade bins.

    Negative lateness (a clock running ahead) gets bins of its own, in another colour
    unless ``by`` colours the bars. Counts are on a symlog scale so the long tail shows.

    >>> import concursus_lab as cl
    >>> chart = cl.plot.lateness(cl.sample.parcels(100, seed=1))
    >>> chart.to_dict()["mark"]["type"]
    'bar'
    """
    alt = lab("altair")

    validate(events, check_parameters=False)
    binned = lateness_bins(events, by=by)
    if by and binned.schema[by] == pl.String:
        binned = binned.with_columns(pl.col(by).replace("", '"" (empty)'))
    order = _bin_labels()
    color = (
        alt.Color(f"{by}:N", title=by)
        if by
        else alt.Color(
            "side:N",
            scale=alt.Scale(domain=["late", "ahead of the clock"], range=["#4c78a8", "#e45756"]),
            title=None,
        )
    )
    return (
        alt.Chart(binned, title="Lateness: processing time − event time")
        .mark_bar()
        .encode(
            x=alt.X("bin:O", sort=order, title="lateness", axis=alt.Axis(labelAngle=-45)),
            y=alt.Y("events:Q", scale=alt.Scale(type="symlog"), title="deliveries (symlog)"),
            color=color,
            xOffset=alt.XOffset(f"{by}:N") if by else alt.XOffset("side:N"),
            tooltip=["bin:O", "events:Q", *([f"{by}:N"] if by else [])],
        )
        .properties(width=560, height=260)
    )


def lateness_bins(events: pl.DataFrame, by: str | Sequence[str] | None = None) -> pl.DataFrame:
    """The counts behind :func:`lateness`: ``bin``, ``lower_s``, ``side``, ``events``."""
    keys = [] if by is None else ([by] if isinstance(by, str) else list(by))
    edges = [*_NEGATIVE_EDGES, *_POSITIVE_EDGES]
    labels = _bin_labels()
    seconds = (
        pl.col("processing_timestamp") - pl.col("event_timestamp")
    ).dt.total_microseconds() / 1e6
    index = pl.lit(pl.Series(edges, dtype=pl.Float64)).search_sorted(seconds, side="right")
    counts = events.group_by(*keys, index.alias("index")).agg(pl.len().alias("events"))
    lower = pl.Series([float("-inf"), *edges], dtype=pl.Float64)
    return (
        counts.with_columns(
            pl.lit(pl.Series(labels)).gather(pl.col("index")).alias("bin"),
            pl.lit(lower).gather(pl.col("index")).alias("lower_s"),
        )
        .with_columns(
            pl.when(pl.col("lower_s") < 0)
            .then(pl.lit("ahead of the clock"))
            .otherwise(pl.lit("late"))
            .alias("side")
        )
        .sort("lower_s", *keys)
        .select(*keys, "bin", "lower_s", "side", "events")
    )


def watermark(
    result: WatermarkReplay,
    *,
    window: tuple[TimeLike | None, TimeLike | None] | None = None,
    max_points: int = 4_000,
) -> alt.LayerChart:
    """Events against the watermark over processing time, late and dropped ones marked.

    Both are drawn as how far they ran behind processing time, on a symlog scale of
    seconds: a point is an event (processing − event time, its lateness), the band is the
    watermark (processing − watermark, its range in each of a few hundred time bins). An
    event above the band arrived behind the watermark: late, or dropped. A clock running
    ahead shows below zero.

    Late and dropped events get at least half of ``max_points`` (all of them when they
    fit), on-time events the rest, each picked evenly over processing time; the subtitle
    says when the chart shows a sample.

    Parameters
    ----------
    result
        What :func:`concursus_lab.watermark` returned.
    window
        ``(start, end)`` in processing time (end exclusive) to zoom into; either side may be
        None.
    max_points
        At most this many event marks reach the browser.

    >>> import concursus_lab as cl
    >>> result = cl.watermark(cl.sample.parcels(200, seed=1), "2m")
    >>> chart = cl.plot.watermark(result)
    >>> [layer["mark"]["type"] for layer in chart.to_dict()["layer"]]
    ['area', 'circle']
    """
    alt = lab("altair")

    points, band, subtitle = watermark_marks(result, window=window, max_points=max_points)
    values = _tick_values(points["behind_s"], band["high_s"])
    label = " : ".join(f"datum.value == {v} ? '{_tick_text(v)}'" for v in values) + " : ''"
    y_scale = alt.Scale(type="symlog")
    colors = alt.Scale(
        domain=["on_time", "late", "dropped", "watermark"],
        range=["#4c78a8", "#f58518", "#e45756", "#54a24b"],
    )
    watermark_band = (
        alt.Chart(band)
        .mark_area(opacity=0.45, interpolate="step-after")
        .encode(
            x=alt.X("start:T", title="processing time (UTC)"),
            y=alt.Y(
                "low_s:Q",
                scale=y_scale,
                title="behind processing time (symlog)",
                axis=alt.Axis(values=values, labelExpr=label),
            ),
            y2="high_s:Q",
            color=alt.Color("status:N", scale=colors, title=None),
            tooltip=[
                alt.Tooltip("start:T", title="from", format="%Y-%m-%d %H:%M"),
                alt.Tooltip("low:N", title="watermark behind by at least"),
                alt.Tooltip("high:N", title="at most"),
            ],
        )
    )
    dots = (
        alt.Chart(points)
        .mark_circle(size=18, opacity=0.8)
        .encode(
            x=alt.X("processing_timestamp:T"),
            y=alt.Y("behind_s:Q", scale=y_scale),
            color=alt.Color("status:N", scale=colors, title=None),
            order=alt.Order("rank:Q"),
            tooltip=[
                "aggregate_id:N",
                "name:N",
                alt.Tooltip("event_timestamp:T", format="%Y-%m-%d %H:%M:%S"),
                alt.Tooltip("processing_timestamp:T", format="%Y-%m-%d %H:%M:%S"),
                "lateness:N",
                "status:N",
            ],
        )
    )
    title = (
        f"Watermark {exact(result.max_out_of_orderness)} behind the newest event time: "
        f"{result.dropped:,} dropped, {result.late:,} late of {result.events.height:,}"
    )
    return alt.layer(watermark_band, dots).properties(
        width=640, height=300, title=alt.TitleParams(title, subtitle=subtitle)
    )


#: Candidate ticks of the symlog axis, in seconds, with their labels.
_TICKS = {
    -3600: "-1h",
    -600: "-10min",
    -60: "-1min",
    -10: "-10s",
    -1: "-1s",
    0: "0",
    1: "1s",
    10: "10s",
    60: "1min",
    600: "10min",
    3600: "1h",
    6 * 3600: "6h",
    86_400: "1d",
    7 * 86_400: "1w",
}


def _tick_values(*columns: pl.Series) -> list[int]:
    values = pl.concat([c.drop_nulls().cast(pl.Float64) for c in columns])
    if values.len() == 0:
        return [0]
    low, high = float(values.min()), float(values.max())
    ticks = sorted(_TICKS)
    below = [t for t in ticks if t <= low] or [ticks[0]]
    above = [t for t in ticks if t >= high] or [ticks[-1]]
    return [t for t in ticks if below[-1] <= t <= above[0]]


def _tick_text(value: int) -> str:
    return _TICKS[value]


def watermark_marks(
    result: WatermarkReplay,
    *,
    window: tuple[TimeLike | None, TimeLike | None] | None = None,
    max_points: int = 4_000,
    bins: int = 300,
) -> tuple[pl.DataFrame, pl.DataFrame, str]:
    """The data behind :func:`watermark`: event points, watermark band, and a subtitle."""
    if isinstance(max_points, bool) or not isinstance(max_points, int) or max_points < 1:
        raise ValueError(f"`max_points` must be a positive int, got {max_points!r}.")
    start, end = time_range(window, "window")
    frame = result.events
    if start is not None:
        frame = frame.filter(pl.col("processing_timestamp") >= start)
    if end is not None:
        frame = frame.filter(pl.col("processing_timestamp") < end)
    seconds = pl.Duration("us")
    frame = frame.with_row_index("__row").with_columns(
        (
            (pl.col("processing_timestamp") - pl.col("event_timestamp"))
            .cast(seconds)
            .cast(pl.Int64)
            / 1e6
        ).alias("behind_s"),
        (
            (pl.col("processing_timestamp") - pl.col("watermark")).cast(seconds).cast(pl.Int64)
            / 1e6
        ).alias("__wm_s"),
    )
    frame = frame.sort("processing_timestamp", "__row")
    off_time = frame.filter(pl.col("status") != "on_time")
    on_time = frame.filter(pl.col("status") == "on_time")
    shown_off = _evenly(off_time, max(max_points // 2, max_points - on_time.height))
    shown_on = _evenly(on_time, max_points - shown_off.height)
    points = (
        pl.concat([shown_on, shown_off])
        .with_columns(
            pl.col("status").cast(pl.String),
            pl.col("status").to_physical().cast(pl.Int64).alias("rank"),
        )
        .select(
            "processing_timestamp",
            "event_timestamp",
            "behind_s",
            "status",
            "rank",
            "aggregate_id",
            "name",
        )
    )
    points = points.with_columns(
        pl.Series("lateness", [_seconds(s) for s in points["behind_s"].to_list()])
    )
    band = _band(frame, bins)
    shown = points.height
    total = frame.height
    where = " in the window" if window is not None else ""
    subtitle = (
        f"all {total:,} events{where}"
        if shown == total
        else f"{shown:,} of {total:,} events{where}: {shown_off.height:,} of {off_time.height:,} "
        f"late or dropped, {shown_on.height:,} of {on_time.height:,} on time, evenly spread"
    )
    return points, band, subtitle


def _evenly(frame: pl.DataFrame, count: int) -> pl.DataFrame:
    if count <= 0:
        return frame.head(0)
    if frame.height <= count:
        return frame
    picks = np.unique(np.linspace(0, frame.height - 1, count).round().astype(np.int64))
    return frame[picks]


def _band(frame: pl.DataFrame, bins: int) -> pl.DataFrame:
    marked = frame.filter(pl.col("__wm_s").is_not_null())
    empty = pl.DataFrame(
        schema={
            "start": pl.Datetime("us", "UTC"),
            "low_s": pl.Float64,
            "high_s": pl.Float64,
            "status": pl.String,
            "low": pl.String,
            "high": pl.String,
        }
    )
    if marked.height == 0:
        return empty
    t = pl.col("processing_timestamp").cast(pl.Int64)
    first, last = marked.select(t.min().alias("first"), t.max().alias("last")).row(0)
    width = max((last - first) // bins + 1, 1)
    band = (
        marked.group_by(((t - first) // width).alias("bin"))
        .agg(pl.col("__wm_s").min().alias("low_s"), pl.col("__wm_s").max().alias("high_s"))
        .sort("bin")
        .select(
            (pl.col("bin") * width + first).cast(pl.Datetime("us", "UTC")).alias("start"),
            "low_s",
            "high_s",
        )
    )
    return band.with_columns(
        pl.lit("watermark").alias("status"),
        pl.Series("low", [_seconds(v) for v in band["low_s"].to_list()], pl.String),
        pl.Series("high", [_seconds(v) for v in band["high_s"].to_list()], pl.String),
    )


def _seconds(seconds: float) -> str:
    return duration(dt.timedelta(seconds=seconds))


def _bin_labels() -> list[str]:
    edges = [*_NEGATIVE_EDGES, *_POSITIVE_EDGES]
    short = [exact(dt.timedelta(seconds=edge)) for edge in edges]  # round edges: "10s", "1h"
    labels = [f"< {short[0]}"]
    labels += [f"{a} to {b}" for a, b in itertools.pairwise(short)]
    labels.append(f">= {short[-1]}")
    return labels
