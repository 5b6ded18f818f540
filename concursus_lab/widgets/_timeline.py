"""``cl.timeline``: aggregates against event time, each event tied to when it was processed.

Every event is a dot at its event time, coloured by name, joined by a rule to a tick at its
processing time: the longer the rule, the later the event arrived. Dragging a rectangle on
the chart selects events and lists them in a table under it; the controls above filter by
aggregate type, event name and aggregate id. What is drawn is summarised in the kernel
(:mod:`concursus_lab.widgets._timeline_data`), so big frames stay quick in the browser.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import polars as pl

from concursus_lab.common.text import plural
from concursus_lab.common.time import when
from concursus_lab.frame.schema import validate
from concursus_lab.plot.altair_private import replace_data, watch_selection
from concursus_lab.plot.libraries import lab
from concursus_lab.widgets._base import SummaryWidget, offline_chart
from concursus_lab.widgets._follower import Follower, FollowsSources
from concursus_lab.widgets._format import html_table, text_table, with_lateness
from concursus_lab.widgets._timeline_data import Filters, TimelineData, select, summarise

ipywidgets = lab("ipywidgets")

if TYPE_CHECKING:
    import altair as alt

_ALL = "(all)"
_ROW_HEIGHT = 16
#: The name of a live timeline's dataset of marks (its rows are replaced per batch).
MARKS = "cl_marks"


def timeline_chart(
    data: TimelineData, *, names: list[str] | None = None, width: int = 680, live: bool = False
) -> alt.LayerChart:
    """The altair chart of a :class:`TimelineData`, with an interval selection named ``brush``.

    Parameters
    ----------
    data
        What to draw (see :func:`concursus_lab.widgets._timeline_data.summarise`).
    names
        Event names in colour order, so colours stay put while filters change.
    width
        Width of the plot in pixels; the height follows the number of aggregates.
    live
        Draw it to be kept live (``_timeline_live.py``): the marks are the named dataset
        :data:`MARKS` (the browser's rows are replaced per batch, the chart is not drawn
        again), the aggregates ordered by a ``rank`` field and a row's height fixed, so that
        new aggregates take their place.
    """
    alt = lab("altair")

    values = mark_values(data)
    source = alt.NamedData(name=MARKS) if live else alt.InlineData(values=values)
    brush = alt.selection_interval(name="brush", encodings=["x", "y"])
    utc = alt.Scale(type="utc")
    if live:
        order = alt.EncodingSortField("rank", op="min")
        y = alt.Y("aggregate:N", sort=order, title=None, axis=alt.Axis(labelLimit=160))
    else:
        y = alt.Y(
            "aggregate:N",
            sort=data.order,
            scale=alt.Scale(type="band", domain=data.order),
            title=None,
            axis=alt.Axis(labelLimit=160),
        )
    base = alt.Chart(source).encode(y=y)
    color_scale = alt.Scale(domain=names) if names and not live else alt.Undefined
    tooltip = [
        alt.Tooltip("aggregate:N"),
        alt.Tooltip("name:N"),
        alt.Tooltip("event_time:T", title="event time (UTC)", format="%Y-%m-%d %H:%M:%S"),
        alt.Tooltip("processing_time:T", title="processed (UTC)", format="%Y-%m-%d %H:%M:%S"),
        alt.Tooltip("lateness_s:Q", title="lateness (s)"),
        alt.Tooltip("events:Q"),
    ]
    x = alt.X("event_time:T", scale=utc, title="event time (UTC) → processing time (tick)")
    rules = base.mark_rule(color="#9a9a9a", strokeWidth=1).encode(x=x, x2="processing_time:T")
    ticks = base.mark_tick(color="#444", thickness=1.5, size=_ROW_HEIGHT * 0.7).encode(
        x=alt.X("processing_time:T", scale=utc)
    )
    dots = (
        base.mark_circle(opacity=0.9)
        .encode(
            x=x,
            color=alt.when(brush)
            .then(alt.Color("name:N", scale=color_scale, title="event"))
            .otherwise(alt.value("#d0d0d0")),
            size=(
                alt.Size("events:Q", title="events per bin", scale=alt.Scale(range=[30, 300]))
                if data.bin_width is not None
                else alt.value(45)
            ),
            tooltip=tooltip,
        )
        .add_params(brush)
    )
    height = max(60, _ROW_HEIGHT * max(1, data.shown_aggregates))
    subtitle = ("Summary: " if data.is_summary else "") + data.caption()
    title = alt.Title(
        "Events by aggregate: event time (dot) and processing time (tick)",
        subtitle="live: as read so far (see the caption)" if live else subtitle,
        anchor="start",
    )
    chart = alt.layer(rules, ticks, dots)
    if live:
        return chart.properties(
            width=width, height=alt.Step(_ROW_HEIGHT), title=title, datasets={MARKS: values}
        )
    return chart.properties(width=width, height=height, title=title)


def mark_values(data: TimelineData) -> list[dict[str, Any]]:
    """The chart's rows of ``data``: times as epoch ms, lateness in seconds, and each
    aggregate's ``rank`` (its place on the y axis, the busiest first)."""
    rank = pl.DataFrame(
        {"aggregate": data.order, "rank": list(range(len(data.order)))},
        schema={"aggregate": pl.String, "rank": pl.Int64},
    )
    marks = data.marks.with_columns(
        pl.col("event_time").dt.epoch("ms"),
        pl.col("processing_time").dt.epoch("ms"),
        pl.col("lateness").dt.total_milliseconds().truediv(1000).round(3).alias("lateness_s"),
    ).drop("lateness")
    return marks.join(rank, on="aggregate", how="left", maintain_order="left").to_dicts()


class Timeline(SummaryWidget, FollowsSources):
    """The timeline widget; build it with :func:`timeline`.

    Attributes
    ----------
    type_picker, name_picker, id_filter
        The controls (ipywidgets): set their ``value`` to filter.
    chart
        The altair ``JupyterChart``; its ``selections.brush`` is what was dragged.
    table
        The HTML table of the selected events.
    """

    def __init__(
        self,
        events: pl.DataFrame,
        *,
        max_aggregates: int = 40,
        max_events: int = 1_500,
        width: int = 680,
    ) -> None:
        self._events = validate(events, check_parameters=False)
        self._limits = {"max_aggregates": max_aggregates, "max_events": max_events}
        self._width = width
        self._names = sorted(self._events["name"].unique().to_list())
        types = sorted(self._events["aggregate_type"].unique().to_list())
        self.type_picker = ipywidgets.Dropdown(
            options=[(_ALL, None), *((t, t) for t in types)], description="type"
        )
        self.name_picker = ipywidgets.Dropdown(
            options=[(_ALL, None), *((n, n) for n in self._names)], description="event"
        )
        self.id_filter = ipywidgets.Text(
            placeholder="part of an id", description="id", continuous_update=False
        )
        self._data = summarise(self._events, **self._limits)
        self._selected = self._data.shown.head(0)
        self._brush: dict[str, Any] = {}
        self._live = self._drawn_live = False  # kept live (after a first batch), drawn so
        self._lock = threading.Lock()
        self.follower = Follower("cl-timeline")
        self.chart = offline_chart(self._chart())
        self.caption = ipywidgets.HTML()
        self.caption.add_class("cl-caption")
        self.table = ipywidgets.HTML()
        for control in (self.type_picker, self.name_picker, self.id_filter):
            control.observe(self._on_filter, names="value")
        watch_selection(self.chart, "brush", self._on_selection)
        controls = ipywidgets.HBox([self.type_picker, self.name_picker, self.id_filter])
        super().__init__([controls, self.chart, self.caption, self.table])
        self.add_class("cl-timeline")
        self._show_selection()

    @property
    def data(self) -> TimelineData:
        """What the chart draws now (after filters), summarised."""
        return self._data

    @property
    def filters(self) -> Filters:
        """The filters the controls set."""
        return Filters(
            aggregate_type=self.type_picker.value,
            name=self.name_picker.value,
            aggregate_id=self.id_filter.value.strip(),
        )

    @property
    def selected(self) -> pl.DataFrame:
        """The events under the brush (rows of the frame given), empty when nothing is."""
        return self._selected.drop("aggregate")

    def summary(self) -> str:
        """The chart's one line, the filters, and what is selected."""
        lines = [str(self._data), f"filters: {self._data.filters}"]
        if self._selected.height:
            lines.append(f"selected: {self._selection_text()}")
            lines.append(text_table(with_lateness(self.selected), limit=10))
        else:
            lines.append("selected: nothing (drag across the chart to select events)")
        return "\n".join(lines)

    # ------------------------------------------------------------------------ live

    def update(self, frame: pl.DataFrame) -> None:
        """Add a batch of deliveries (a follow's frame). The first batch draws the chart
        again once, in its live form; after it, the chart's marks are replaced in the
        browser (``replace_data``) and the chart is not drawn again."""
        frame = validate(frame, check_parameters=False)
        with self._lock:
            self._events = pl.concat([self._events, frame], how="diagonal_relaxed")
            new = sorted(set(frame["name"].unique().to_list()) - set(self._names))
            if new:
                self._names = sorted([*self._names, *new])
                self.name_picker.options = [(_ALL, None), *((n, n) for n in self._names)]
            types = sorted(self._events["aggregate_type"].unique().to_list())
            if len(types) != len(self.type_picker.options) - 1:
                self.type_picker.options = [(_ALL, None), *((t, t) for t in types)]
            self._live = True
            self._summarise(keep_brush=True)

    # --------------------------------------------------------------------- plumbing

    def _chart(self) -> alt.LayerChart:
        return timeline_chart(self._data, names=self._names, width=self._width, live=self._live)

    def _summarise(self, *, keep_brush: bool) -> None:
        """Summarise the events again (filters, a batch) and show it: the live chart's marks
        replaced, else the chart drawn again (and in its live form after a first batch)."""
        self._data = summarise(self._events, self.filters, **self._limits)
        if not keep_brush:
            self._brush = {}
        self._selected = (
            select(self._data, self._brush) if self._brush else self._data.shown.head(0)
        )
        values = mark_values(self._data) if self._live and self._drawn_live else None
        if values is not None and replace_data(self.chart, MARKS, values):
            self.chart.chart.datasets = {MARKS: values}  # as saved; the browser was told
        else:
            self.chart.chart = self._chart()
            self._drawn_live = self._live
        self._show_selection()

    def _on_filter(self, _change: dict[str, Any]) -> None:
        with self._lock:
            self._summarise(keep_brush=False)

    def _on_selection(self, brush: dict[str, Any]) -> None:
        self._brush = brush
        self._selected = select(self._data, brush)
        self._show_selection()

    def _show_selection(self) -> None:
        if self._selected.height:
            self.caption.value = f"<b>Selected</b> {self._selection_text()}"
            self.table.value = html_table(
                with_lateness(self.selected), limit=10, rest=" (all of them: `.selected`)"
            )
        else:
            self.caption.value = "Drag across the chart to select events; they are listed here."
            self.table.value = ""

    def _selection_text(self) -> str:
        picked = self._selected
        aggregates = picked.select(pl.struct("aggregate_type", "aggregate_id").n_unique()).item()
        start, end = picked["event_timestamp"].min(), picked["event_timestamp"].max()
        return (
            f"{plural(picked.height, 'event')} of {plural(aggregates, 'aggregate')}, "
            f"event time {when(start)} .. {when(end)} UTC"
        )


def timeline(
    events: pl.DataFrame,
    *,
    max_aggregates: int = 40,
    max_events: int = 1_500,
    width: int = 680,
) -> Timeline:
    """An interactive timeline of ``events``: aggregates on y, event time on x.

    Each event is a dot coloured by its name, joined by a rule to a tick at its processing
    time, so late events stand out as long rules. Drag a rectangle to list the events under
    it; filter by aggregate type, event name or part of an aggregate id. Large frames are
    summarised in the kernel (the busiest aggregates, then event-time bins) and the chart
    says so. Printed, it is a short text summary. It takes batches as they are read:
    ``view.update(frame)``, or ``view.follow(source)`` in a thread (``view.stop()``), the
    chart's marks replaced in the browser, not drawn again (docs/live.md).

    Parameters
    ----------
    events
        A canonical event frame; pass every delivery (``duplicates="keep"``) to see
        repeats as extra ticks.
    max_aggregates
        Most aggregates on the y axis (the busiest are kept).
    max_events
        Most dots drawn; beyond it events are binned per aggregate, name and time.
    width
        Plot width in pixels.

    Examples
    --------
    >>> import concursus_lab as cl
    >>> view = cl.timeline(cl.sample.parcels(500, seed=1), max_aggregates=20)
    >>> print(view)
    Timeline: 1,621 events of 500 aggregates (showing the 20 busiest: 114 events, 342 marks)
    filters: none
    selected: nothing (drag across the chart to select events)
    >>> view.name_picker.value = "deliveryFailed"
    >>> print(str(view).splitlines()[0])
    Timeline: 64 events of 57 aggregates (showing the 20 busiest: 27 events, 81 marks)
    """
    return Timeline(events, max_aggregates=max_aggregates, max_events=max_events, width=width)
