"""What the timeline draws, worked out in the kernel: a few thousand marks at most.

:func:`summarise` filters an event frame, keeps the busiest aggregates, and, when they still
have too many events, bins event time per aggregate and name, so that a frame of ten
million events sends a bounded number of rows to the browser. :func:`select` maps a brush
on the chart back to the events under it. Both are pure polars; the widget in
:mod:`concursus_lab.widgets._timeline` only wires them to controls.

>>> import concursus_lab as cl
>>> from concursus_lab.widgets._timeline_data import summarise
>>> print(summarise(cl.sample.parcels(500, seed=1), max_aggregates=20))
Timeline: 1,621 events of 500 aggregates (showing the 20 busiest: 114 events, 342 marks)
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import polars as pl

from concursus_lab.common.text import plural
from concursus_lab.exceptions import SchemaError
from concursus_lab.frame.schema import validate

#: Fewest event-time bins per aggregate and name when events are binned: fewer aggregates
#: are shown rather than fewer bins.
MIN_BINS = 10

#: Marks drawn per row of ``marks``: the event (a dot), its processing time (a tick) and
#: the rule joining them.
MARKS_PER_ROW = 3

#: Bin widths the binned summary chooses from, in microseconds.
_NICE_BINS_US = [
    s * 1_000_000
    for s in (
        1,
        5,
        10,
        30,
        60,
        5 * 60,
        10 * 60,
        30 * 60,
        3600,
        3 * 3600,
        6 * 3600,
        12 * 3600,
        86_400,
        2 * 86_400,
        7 * 86_400,
        30 * 86_400,
        365 * 86_400,
    )
]


@dataclass(frozen=True)
class Filters:
    """Which events the timeline shows: exact type and name, and an id substring."""

    aggregate_type: str | None = None
    name: str | None = None
    aggregate_id: str = ""

    def __str__(self) -> str:
        parts = []
        if self.aggregate_type is not None:
            parts.append(f"aggregate_type = {self.aggregate_type!r}")
        if self.name is not None:
            parts.append(f"name = {self.name!r}")
        if self.aggregate_id:
            parts.append(f"aggregate_id contains {self.aggregate_id!r}")
        return ", ".join(parts) or "none"

    def apply(self, events: pl.DataFrame) -> pl.DataFrame:
        """The rows of ``events`` that pass every filter."""
        predicates = []
        if self.aggregate_type is not None:
            predicates.append(pl.col("aggregate_type") == self.aggregate_type)
        if self.name is not None:
            predicates.append(pl.col("name") == self.name)
        if self.aggregate_id:
            predicates.append(pl.col("aggregate_id").str.contains(self.aggregate_id, literal=True))
        return events.filter(*predicates) if predicates else events


@dataclass(frozen=True)
class TimelineData:
    """The summary behind one timeline chart; prints one deterministic line.

    Attributes
    ----------
    marks
        One row per dot: ``aggregate`` (the y label), ``aggregate_type``, ``aggregate_id``,
        ``name``, ``event_time``, ``processing_time`` (the latest, for a bin), ``lateness``
        (the largest, for a bin) and ``events`` (1, or the count in a bin).
    order
        The y labels, top to bottom: shown aggregates by their first event time.
    shown
        The events of the shown aggregates (after filters), with an ``aggregate`` column:
        what a brush selects from (sorted by aggregate and time when not binned).
    events, aggregates
        Events and aggregates that pass the filters.
    bin_width
        None when every event has its own dot; else the width of the event-time bins.
    filters
        The filters applied.
    """

    marks: pl.DataFrame
    order: list[str]
    shown: pl.DataFrame
    events: int
    aggregates: int
    bin_width: dt.timedelta | None
    filters: Filters = field(default_factory=Filters)

    @property
    def shown_aggregates(self) -> int:
        """How many aggregates are on the y axis."""
        return len(self.order)

    @property
    def shown_events(self) -> int:
        """How many events the shown aggregates have (after filters)."""
        return self.shown.height

    @property
    def n_marks(self) -> int:
        """How many marks reach the browser."""
        return self.marks.height * MARKS_PER_ROW

    @property
    def is_summary(self) -> bool:
        """True when the chart leaves aggregates out or bins events."""
        return self.shown_aggregates < self.aggregates or self.bin_width is not None

    def caption(self) -> str:
        """What the chart shows, for its subtitle and for the text summary."""
        if self.events == 0:
            return "no events pass the filters"
        if self.shown_aggregates < self.aggregates:
            what = f"showing the {self.shown_aggregates:,} busiest: {self.shown_events:,} events"
        else:
            what = "every aggregate"
        if self.bin_width is not None:
            what += f" in {_width(self.bin_width)} bins"
        elif self.shown_aggregates >= self.aggregates:
            what += ", every event"
        return f"{what}, {self.n_marks:,} marks"

    def __str__(self) -> str:
        return (
            f"Timeline: {plural(self.events, 'event')} of "
            f"{plural(self.aggregates, 'aggregate')} ({self.caption()})"
        )


def summarise(
    events: pl.DataFrame,
    filters: Filters | None = None,
    *,
    max_aggregates: int = 40,
    max_events: int = 1_500,
) -> TimelineData:
    """Filter ``events`` and reduce them to at most ``max_events`` dots.

    The ``max_aggregates`` aggregates with the most events are kept (ties broken by type and
    id), ordered by their first event. When they still have more than ``max_events`` events,
    event time is cut into equal bins (a round width: 1 s, 5 s, ... 1 h, 1 day, ...) and
    each (aggregate, name, bin) becomes one dot holding its count, its latest processing
    time and its largest lateness.

    Parameters
    ----------
    events
        A canonical event frame: events or every delivery (repeats then show as extra
        processing ticks on the same event).
    filters
        Which events to keep; None keeps all.
    max_aggregates, max_events
        Bounds on the y axis and on the dots drawn (each dot brings a tick and a rule).
    """
    events = validate(events, check_parameters=False)
    if max_aggregates < 1 or max_events < 1:
        raise SchemaError(
            "`max_aggregates` and `max_events` must be at least 1, got "
            f"{max_aggregates!r} and {max_events!r}."
        )
    filters = filters or Filters()
    kept = filters.apply(events)
    keys = ["aggregate_type", "aggregate_id"]
    per_aggregate = kept.group_by(keys).agg(
        pl.len().alias("n"), pl.col("event_timestamp").min().alias("first")
    )
    n_names = max(1, kept["name"].n_unique())
    by = ["n", *keys]
    busiest = per_aggregate.top_k(max_aggregates, by=by, reverse=[False, True, True])
    if busiest["n"].sum() > max_events:  # binned: keep at least MIN_BINS bins per row
        limit = max(1, min(max_aggregates, max_events // (n_names * MIN_BINS)))
        busiest = busiest.top_k(limit, by=by, reverse=[False, True, True])
    several_types = kept["aggregate_type"].n_unique() > 1
    label = (
        pl.concat_str("aggregate_type", pl.lit("/"), "aggregate_id")
        if several_types
        else pl.col("aggregate_id")
    )
    busiest = busiest.sort("first", *keys).with_columns(label.alias("aggregate"))
    shown = kept.filter(pl.col("aggregate_id").is_in(busiest["aggregate_id"].implode()))
    if several_types:  # the same id may name aggregates of other types too
        shown = shown.join(busiest.select(keys), on=keys, how="semi", maintain_order="left")
    shown = shown.with_columns(label.alias("aggregate"))
    if shown.height <= max_events:
        shown = shown.sort("aggregate", "event_timestamp", "processing_timestamp")
        marks, width = _each_event(shown), None
    else:
        marks, width = _binned(shown, budget=max_events // (busiest.height * n_names))
    return TimelineData(
        marks=marks,
        order=busiest["aggregate"].to_list(),
        shown=shown,
        events=kept.height,
        aggregates=per_aggregate.height,
        bin_width=width,
        filters=filters,
    )


def select(data: TimelineData, value: dict) -> pl.DataFrame:
    """The shown events under a brush: ``value`` as in ``JupyterChart.selections.brush.value``.

    ``value`` maps ``event_time`` to ``[start, end]`` (epoch milliseconds or ISO strings, as
    the browser sends them) and ``aggregate`` to the list of brushed y labels; a missing key
    does not constrain. An empty ``value`` (no brush) selects nothing.
    """
    if not value:
        return data.shown.head(0)
    predicates = []
    span = value.get("event_time")
    if span:
        start, end = sorted(_instant(v) for v in span)
        predicates.append(pl.col("event_timestamp").is_between(start, end))
    labels = value.get("aggregate")
    if labels is not None:
        predicates.append(pl.col("aggregate").is_in([str(v) for v in labels]))
    picked = data.shown.filter(*predicates) if predicates else data.shown
    return picked.sort("aggregate", "event_timestamp", "processing_timestamp", maintain_order=True)


def _each_event(shown: pl.DataFrame) -> pl.DataFrame:
    return shown.select(
        "aggregate",
        "aggregate_type",
        "aggregate_id",
        "name",
        pl.col("event_timestamp").alias("event_time"),
        pl.col("processing_timestamp").alias("processing_time"),
        (pl.col("processing_timestamp") - pl.col("event_timestamp")).alias("lateness"),
        pl.lit(1, pl.Int64).alias("events"),
    )


def _binned(shown: pl.DataFrame, *, budget: int) -> tuple[pl.DataFrame, dt.timedelta]:
    micros = pl.col("event_timestamp").dt.epoch("us")
    start, end = shown.select(micros.min().alias("start"), micros.max().alias("end")).row(0)
    bins = max(1, budget - 1)
    needed = -(-(end - start + 1) // bins)
    width = next((w for w in _NICE_BINS_US if w >= needed), needed)
    binned = shown.with_columns(
        ((pl.col("event_timestamp").dt.epoch("us") // width) * width)
        .cast(pl.Datetime("us", "UTC"))
        .alias("event_time")
    )
    marks = (
        binned.group_by("aggregate", "aggregate_type", "aggregate_id", "name", "event_time")
        .agg(
            pl.col("processing_timestamp").max().alias("processing_time"),
            (pl.col("processing_timestamp") - pl.col("event_timestamp")).max().alias("lateness"),
            pl.len().cast(pl.Int64).alias("events"),
        )
        .sort("aggregate", "event_time", "name")
    )
    return marks, dt.timedelta(microseconds=width)


def _instant(value: object) -> dt.datetime:
    if isinstance(value, int | float):
        return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=value)
    if isinstance(value, str):
        text = value[:-1] + "+00:00" if value.endswith("Z") else value
        parsed = dt.datetime.fromisoformat(text)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    raise SchemaError(f"a brush bound must be epoch milliseconds or an ISO time, got {value!r}.")


def _width(width: dt.timedelta) -> str:
    seconds = int(width.total_seconds())
    for unit, size in (("d", 86_400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"
