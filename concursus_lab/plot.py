"""Charts that people would rather look at than read: each returns an altair chart.

The data is summarised in the kernel first (binned, counted), so a chart of ten million
events sends a few dozen rows to the browser. Charts are altair objects: change them with
``.properties(...)``, ``.encode(...)`` and so on before they are shown.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING

import polars as pl

from concursus_lab._schema import validate

if TYPE_CHECKING:
    import altair as alt

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
    once, at the top of a notebook.
    """
    import altair as alt

    alt.renderers.enable("jupyter", offline=True)


def lateness(events: pl.DataFrame, by: str | None = None) -> alt.Chart:
    """Distribution of lateness (processing − event time) on half-decade bins.

    Negative lateness (a clock running ahead) gets bins of its own, in another colour
    unless ``by`` colours the bars. Counts are on a symlog scale so the long tail shows.

    >>> import concursus_lab as cl
    >>> chart = cl.plot.lateness(cl.sample.parcels(100, seed=1))
    >>> chart.to_dict()["mark"]["type"]
    'bar'
    """
    import altair as alt

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


def _bin_labels() -> list[str]:
    edges = [*_NEGATIVE_EDGES, *_POSITIVE_EDGES]
    labels = [f"< {_short(edges[0])}"]
    labels += [f"{_short(a)} to {_short(b)}" for a, b in itertools.pairwise(edges)]
    labels.append(f">= {_short(edges[-1])}")
    return labels


def _short(seconds: float) -> str:
    sign = "-" if seconds < 0 else ""
    s = abs(seconds)
    if s == 0:
        return "0"
    if s < 1:
        return f"{sign}{s * 1000:.0f}ms"
    if s < 60:
        return f"{sign}{s:.0f}s"
    if s < 3600:
        return f"{sign}{s / 60:.0f}min"
    if s < 86_400:
        return f"{sign}{s / 3600:.0f}h"
    return f"{sign}{s / 86_400:.0f}d"
