"""``cl.lateness_view``: how late events are, and what a watermark bound would drop.

A histogram of lateness (processing − event time, on the half-decade bins of
:func:`cl.plot.lateness <concursus_lab.plot.lateness>`) whose bars are split by what
:func:`cl.watermark <concursus_lab.watermark>` makes of each delivery at the bound chosen on
a slider, under the engine chosen beside it (the model, Flink, Spark or Kafka Streams, whose
slider is the grace): on time, late (within the allowed lateness) or dropped; beside it the
lateness profile of :func:`cl.lateness <concursus_lab.lateness>` and the dropped deliveries.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import TYPE_CHECKING, Any

import polars as pl

from concursus_lab.common.time import duration
from concursus_lab.delivery.engines import ENGINES
from concursus_lab.delivery.lateness import lateness
from concursus_lab.delivery.watermark import (
    DEFAULT_BY,
    WatermarkReplay,
    recommend_watermark,
    watermark,
)
from concursus_lab.frame.schema import validate
from concursus_lab.plot import lateness_bins
from concursus_lab.plot.altair_private import replace_data
from concursus_lab.plot.libraries import lab
from concursus_lab.widgets._base import SummaryWidget, offline_chart
from concursus_lab.widgets._follower import Follower, FollowsSources
from concursus_lab.widgets._format import html_table, text_table, with_lateness

ipywidgets = lab("ipywidgets")

if TYPE_CHECKING:
    import altair as alt

#: The bounds the slider offers.
BOUNDS: tuple[dt.timedelta, ...] = tuple(
    dt.timedelta(seconds=s)
    for s in (
        0, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800,
        3600, 2 * 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86_400, 2 * 86_400,
    )
)  # fmt: skip

#: The name of a live lateness view's dataset of bars (its rows are replaced per batch).
BARS = "cl_bars"

#: Colours of the three outcomes of a watermark.
COLORS = {"on_time": "#4c78a8", "late": "#f58518", "dropped": "#e45756"}

DROPPED_COLUMNS = (
    "aggregate_id",
    "name",
    "event_timestamp",
    "processing_timestamp",
    "lateness",
    "watermark",
    "behind",
    "stream_id",
)


def dropped(replay: WatermarkReplay) -> pl.DataFrame:
    """The deliveries ``replay`` drops, in arrival order, with ``lateness`` and ``behind``.

    ``behind`` is how far the event time was behind the watermark when it arrived.
    """
    return (
        with_lateness(replay.events.filter(pl.col("status") == "dropped"))
        .with_columns((pl.col("watermark") - pl.col("event_timestamp")).alias("behind"))
        .sort("processing_timestamp", maintain_order=True)
    )


def status_bins(replay: WatermarkReplay) -> pl.DataFrame:
    """Lateness bins split by watermark outcome: ``status``, ``bin``, ``lower_s``, ``events``."""
    binned = lateness_bins(replay.events, by="status")
    return binned.with_columns(pl.col("status").cast(pl.String)).select(
        "status", "bin", "lower_s", "events"
    )


def lateness_chart(replay: WatermarkReplay, *, width: int = 560, live: bool = False) -> alt.Chart:
    """Stacked bars of lateness, coloured by what the watermark of ``replay`` does.

    ``live``: the bars are the named dataset :data:`BARS`, whose rows a batch replaces in
    the browser (the chart is not drawn again), the bins ordered by their lower bound."""
    alt = lab("altair")

    binned = status_bins(replay)
    order = binned.sort("lower_s")["bin"].unique(maintain_order=True).to_list()
    values = bar_values(replay)
    data = alt.NamedData(name=BARS) if live else alt.InlineData(values=values)
    sort = alt.EncodingSortField("lower_s", op="min") if live else order
    if replay.engine == "kafka-streams":
        what = f"Kafka Streams with a grace of {label(replay.allowed_lateness)}"
    else:
        engine = "" if replay.engine == "model" else f" ({replay.engine})"
        bound = label(replay.max_out_of_orderness)
        what = f"a watermark {bound} behind the newest event time{engine}"
    chart = (
        alt.Chart(
            data,
            title=alt.Title(
                "Lateness: processing time − event time",
                subtitle=f"coloured by what {what} does to each delivery",
                anchor="start",
            ),
        )
        .mark_bar()
        .encode(
            x=alt.X("bin:O", sort=sort, title="lateness", axis=alt.Axis(labelAngle=-45)),
            y=alt.Y("events:Q", scale=alt.Scale(type="symlog"), title="deliveries (symlog)"),
            color=alt.Color(
                "status:N",
                scale=alt.Scale(domain=list(COLORS), range=list(COLORS.values())),
                title="at this bound",
            ),
            xOffset=alt.XOffset("status:N", scale=alt.Scale(domain=list(COLORS))),
            tooltip=["bin:O", "status:N", "events:Q"],
        )
        .properties(width=width, height=240)
    )
    return chart.properties(datasets={BARS: values}) if live else chart


def bar_values(replay: WatermarkReplay) -> list[dict[str, Any]]:
    """The chart's rows: ``status``, ``bin``, ``lower_s`` and ``events`` per bar."""
    return status_bins(replay).with_columns(pl.col("events").cast(pl.Int64)).to_dicts()


class LatenessView(SummaryWidget, FollowsSources):
    """The lateness view; build it with :func:`lateness_view`.

    Attributes
    ----------
    bound_slider
        An ``ipywidgets.SelectionSlider`` of watermark bounds (``datetime.timedelta``; Kafka
        Streams: the grace).
    engine_picker
        An ``ipywidgets.ToggleButtons`` of the engines (``"model"``, ``"flink"``,
        ``"spark"``, ``"kafka-streams"``).
    chart, profile, table
        The ``JupyterChart``, the lateness profile (HTML) and the dropped deliveries (HTML).
    """

    def __init__(
        self,
        events: pl.DataFrame,
        *,
        bound: dt.timedelta | None = None,
        allowed_lateness: dt.timedelta = dt.timedelta(0),
        by: str | None = DEFAULT_BY,
        keep: float = 0.99,
        engine: str = "model",
    ) -> None:
        self._events = validate(events, check_parameters=False)
        self._live = self._drawn_live = False  # kept live (after a first batch), drawn so
        self._lock = threading.Lock()
        self.follower = Follower("cl-lateness-view")
        self._allowed = allowed_lateness
        self._by = by
        self._keep = keep
        self.engine_picker = ipywidgets.ToggleButtons(
            options=list(ENGINES), value=_engine_name(engine), description="engine"
        )
        self._advice = self._recommend()
        self._profiles()
        options = sorted({*BOUNDS, *([bound] if bound is not None else [])})
        start = bound if bound is not None else _at_least(self._advice.bound, options)
        self.bound_slider = ipywidgets.SelectionSlider(
            options=[(label(b), b) for b in options],
            value=start,
            description="watermark",
            continuous_update=False,
            layout=ipywidgets.Layout(width="560px"),
        )
        self._replay = self._run(start)
        self.chart = offline_chart(lateness_chart(self._replay))
        self.caption = ipywidgets.HTML()
        self.caption.add_class("cl-caption")
        self.profile = ipywidgets.HTML(
            html_table(self._profile, columns=tuple(self._profile.columns))
        )
        self.table = ipywidgets.HTML()
        self.bound_slider.observe(self._on_bound, names="value")
        self.engine_picker.observe(self._on_engine, names="value")
        super().__init__(
            [
                self.profile,
                self.engine_picker,
                self.bound_slider,
                self.chart,
                self.caption,
                self.table,
            ]
        )
        self.add_class("cl-lateness-view")
        self._show()

    @property
    def replay(self) -> WatermarkReplay:
        """What :func:`cl.watermark <concursus_lab.watermark>` found at the slider's bound."""
        return self._replay

    @property
    def dropped(self) -> pl.DataFrame:
        """The deliveries dropped at the slider's bound, in arrival order."""
        return dropped(self._replay)

    def summary(self) -> str:
        """The profile in one line, the watermark's outcome, and the first dropped rows."""
        row = self._profile.select(
            pl.col("count").sum(),
            pl.col("negative").sum(),
            pl.col("out_of_order").sum(),
            pl.col("duplicates").sum(),
        ).row(0)
        whole = self._overall.row(0, named=True) if self._overall.height else {}
        quantiles = ", ".join(f"{k} {duration(whole.get(k))}" for k in ("p50", "p90", "p99", "max"))
        lines = [
            f"Lateness view: {row[0] or 0:,} deliveries; lateness {quantiles}",
            f"{row[1] or 0:,} ahead of the clock, {row[2] or 0:,} out of order, "
            f"{row[3] or 0:,} repeated",
            str(self._replay),
            f"recommended: {self._advice}",
        ]
        gone = self.dropped
        if gone.height:
            shown = f"first 10 of {gone.height:,}" if gone.height > 10 else f"{gone.height}"
            lines.append(f"dropped, in arrival order ({shown}):")
            lines.append(text_table(gone, columns=DROPPED_COLUMNS, limit=10))
        return "\n".join(lines)

    @property
    def engine(self) -> str:
        """The engine chosen: ``"model"``, ``"flink"``, ``"spark"`` or ``"kafka-streams"``."""
        return self.engine_picker.value

    def _recommend(self):
        return recommend_watermark(self._events, keep=self._keep, by=self._by, engine=self.engine)

    def _run(self, bound: dt.timedelta) -> WatermarkReplay:
        engine = self.engine
        if engine == "kafka-streams":
            return watermark(self._events, engine=engine, grace=bound, by=self._by)
        allowed = dt.timedelta(0) if engine == "spark" else self._allowed
        return watermark(self._events, bound, allowed, engine=engine, by=self._by)

    def update(self, frame: pl.DataFrame) -> None:
        """Add a batch of deliveries (a follow's frame): the profile, the advice and the
        watermark's replay are worked out again over everything read (a watermark replays
        arrival order from the start); the first batch draws the chart once more, in its
        live form, after which a batch only replaces its bars in the browser."""
        frame = validate(frame, check_parameters=False)
        with self._lock:
            self._events = pl.concat([self._events, frame], how="diagonal_relaxed")
            self._profiles()
            self.profile.value = html_table(self._profile, columns=tuple(self._profile.columns))
            self._advice = self._recommend()
            self._replay = self._run(self.bound_slider.value)
            self._live = True
            self._draw(keep=True)

    def _profiles(self) -> None:
        grouping = self._by if self._by is not None and self._by in self._events.columns else None
        self._profile = lateness(self._events, by=grouping)
        self._overall = lateness(self._events) if grouping else self._profile

    def _draw(self, *, keep: bool) -> None:
        """Show the replay: its bars replaced in the browser when the chart is live and
        ``keep`` (a batch: the setting is the same), else the chart drawn again."""
        values = bar_values(self._replay) if keep and self._drawn_live else None
        if values is not None and replace_data(self.chart, BARS, values):
            self.chart.chart.datasets = {BARS: values}  # as saved; the browser was told
        else:
            self.chart.chart = lateness_chart(self._replay, live=self._live)
            self._drawn_live = self._live
        self._show()

    def _on_bound(self, change: dict[str, Any]) -> None:
        with self._lock:
            self._replay = self._run(change["new"])
            self._draw(keep=False)  # the subtitle says the bound

    def _on_engine(self, change: dict[str, Any]) -> None:
        with self._lock:
            self._advice = self._recommend()
            self._replay = self._run(self.bound_slider.value)
            self._draw(keep=False)

    def _show(self) -> None:
        r = self._replay
        total = r.events.height
        share = f"{r.dropped / total:.2%}" if total else "-"
        setting = (
            f"With Kafka Streams and a grace of {label(r.allowed_lateness)}"
            if r.engine == "kafka-streams"
            else f"With the watermark {label(r.max_out_of_orderness)} behind the newest event "
            f"time{'' if r.engine == 'model' else f' ({r.engine})'}"
        )
        self.caption.value = (
            f"{setting}: <b>{r.on_time:,}</b> on time, <b>{r.late:,}</b> late, "
            f"<b>{r.dropped:,}</b> dropped ({share}). Recommended to keep "
            f"{self._advice.keep:.0%}: {duration(self._advice.bound)}."
        )
        self.table.value = html_table(
            self.dropped, columns=DROPPED_COLUMNS, limit=10, rest=" (all of them: `.dropped`)"
        )


def lateness_view(
    events: pl.DataFrame,
    *,
    bound: dt.timedelta | None = None,
    allowed_lateness: dt.timedelta = dt.timedelta(0),
    by: str | None = DEFAULT_BY,
    keep: float = 0.99,
    engine: str = "model",
) -> LatenessView:
    """Lateness of ``events``, and a slider for the watermark bound showing what it drops.

    The histogram's bars are split by what :func:`cl.watermark <concursus_lab.watermark>`
    makes of each delivery at the chosen bound (on time, late, dropped); the table under it
    lists the dropped deliveries. Printed, it is a short text summary. It takes batches as
    they are read: ``view.update(frame)``, or ``view.follow(source)`` in a thread
    (``view.stop()``), its bars replaced in the browser, not drawn again (docs/live.md).

    Parameters
    ----------
    events
        A canonical event frame; pass every delivery (``duplicates="keep"``).
    bound
        The watermark bound to start at; None starts at the smallest slider bound that
        keeps ``keep`` of the deliveries on time (:func:`cl.recommend_watermark
        <concursus_lab.recommend_watermark>`).
    allowed_lateness, by
        As for :func:`cl.watermark <concursus_lab.watermark>`; ``by`` also splits the
        lateness profile when the frame has that column.
    keep
        The share of deliveries the recommended bound keeps on time.
    engine
        Whose rules to replay at first (``"model"``, ``"flink"``, ``"spark"``,
        ``"kafka-streams"``); the buttons above the slider change it. For Kafka Streams the
        slider is the grace; Spark takes no allowed lateness.

    Examples
    --------
    >>> import datetime as dt
    >>> import concursus_lab as cl
    >>> view = cl.lateness_view(cl.sample.parcels(300, seed=1))
    >>> print(str(view).splitlines()[3])
    996 events: 988 on time, 0 late, 8 dropped (0.80%)
    >>> view.bound_slider.value = dt.timedelta(minutes=1)
    >>> view.replay.dropped
    55
    >>> view.engine_picker.value = "spark"
    >>> view.replay.engine, view.replay.dropped
    ('spark', 53)
    """
    return LatenessView(
        events, bound=bound, allowed_lateness=allowed_lateness, by=by, keep=keep, engine=engine
    )


def label(bound: dt.timedelta) -> str:
    """A slider label: the bound in its largest whole unit (``90s``, ``5min``, ``2d``).

    >>> label(dt.timedelta(minutes=5)), label(dt.timedelta(seconds=90)), label(dt.timedelta(0))
    ('5min', '90s', '0s')
    """
    micros = bound // dt.timedelta(microseconds=1)
    for unit, size in (("d", 86_400_000_000), ("h", 3_600_000_000), ("min", 60_000_000)):
        if micros >= size and micros % size == 0:
            return f"{micros // size}{unit}"
    if micros % 1_000_000 == 0:
        return f"{micros // 1_000_000}s"
    return duration(bound)


def _engine_name(engine: str) -> str:
    from concursus_lab.delivery.engines import engine as find_engine

    name = find_engine(engine).name
    # the view replays no idleness, the one thing Flink 2.2 does differently from "flink"
    return name if name in ENGINES else "flink"


def _at_least(value: dt.timedelta, options: list[dt.timedelta]) -> dt.timedelta:
    return next((o for o in options if o >= value), options[-1])
