"""The chart that chooses an idempotency filter's time to live: repeats let through per TTL.

:func:`idempotency` replays the filter for TTLs from one second to past the longest repeat
(:meth:`IdempotencyReplay.by_ttl
<concursus_lab.delivery.idempotency.IdempotencyReplay.by_ttl>`), draws how many repeats slip
through at each, and marks the TTL that was replayed.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from concursus_lab.common.time import duration
from concursus_lab.plot.libraries import lab

if TYPE_CHECKING:
    import altair as alt

    from concursus_lab.delivery.idempotency import IdempotencyReplay

_STEPS = 40


def idempotency(replay: IdempotencyReplay) -> alt.LayerChart:
    """Repeats that slip through an idempotency filter, against its time to live.

    >>> import concursus_lab as cl
    >>> chart = cl.plot.idempotency(cl.idempotency(cl.sample.fixture("messy"), ttl="1m"))
    >>> [layer["mark"]["type"] for layer in chart.to_dict()["layer"]]
    ['line', 'rule']
    """
    alt = lab("altair")

    longest = replay.longest_repeat or dt.timedelta(seconds=1)
    top = max(longest.total_seconds() * 2, 2.0)
    grid = sorted({round(s, 3) for s in np.geomspace(1.0, top, _STEPS)})
    table = replay.by_ttl([dt.timedelta(seconds=s) for s in grid]).with_columns(
        (pl.col("ttl").dt.total_microseconds() / 1e6).alias("ttl_seconds"),
        pl.col("ttl").map_elements(duration, return_dtype=pl.String).alias("ttl_text"),
    )
    line = (
        alt.Chart(table.drop("ttl"), title="Repeats an idempotency filter lets through")
        .mark_line(interpolate="step-after", point=True)
        .encode(
            x=alt.X("ttl_seconds:Q", scale=alt.Scale(type="log"), title="time to live (s, log)"),
            y=alt.Y("slipped:Q", title="repeats let through"),
            tooltip=[
                alt.Tooltip("ttl_text:N", title="TTL"),
                "slipped:Q",
                "stopped:Q",
            ],
        )
    )
    chosen = replay.ttl.total_seconds() if replay.ttl is not None else top
    rule = (
        alt.Chart(pl.DataFrame({"ttl_seconds": [chosen], "label": [_label(replay)]}))
        .mark_rule(color="#e45756", strokeDash=[4, 3])
        .encode(x="ttl_seconds:Q", tooltip=["label:N"])
    )
    return alt.layer(line, rule).properties(width=560, height=240)


def _label(replay: IdempotencyReplay) -> str:
    c = replay.counts
    ttl = "no TTL" if replay.ttl is None else f"TTL {duration(replay.ttl)}"
    return f"{ttl}: {c['slipped']:,} let through, {c['stopped']:,} stopped"
