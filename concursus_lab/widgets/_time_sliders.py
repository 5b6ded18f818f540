"""The sliders of a two-axis cut, as the explorer and the projection lab show them.

``at`` bounds event time exclusively, so its stops are just after each event time (the first
stop that includes an event); ``known_at`` bounds processing time inclusively, so its stops
are at each processing time. Each stop is labelled with its UTC time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import polars as pl

from concursus_lab.common.time import when
from concursus_lab.plot.libraries import lab

ipywidgets = lab("ipywidgets")

_US = dt.timedelta(microseconds=1)


def at_stops(events: pl.DataFrame) -> list[dt.datetime]:
    """Where the ``at`` slider stops: before the first event, then just after each one.

    ``at`` is exclusive, so the stop 1 µs after an event time is the first that includes it.
    """
    times = events["event_timestamp"].unique().sort().to_list()
    return [times[0], *(t + _US for t in times)] if times else []


def known_stops(events: pl.DataFrame) -> list[dt.datetime]:
    """Where the ``known_at`` slider stops: before the first delivery, then at each one."""
    times = events["processing_timestamp"].unique().sort().to_list()
    return [times[0] - _US, *times] if times else []


def labelled(stops: Sequence[dt.datetime]) -> list[tuple[str, dt.datetime]]:
    """A slider's options: each stop with its time as the label."""
    return [(when(t), t) for t in stops]


def time_slider(
    stops: Sequence[dt.datetime], description: str, value: dt.datetime | None = None
) -> ipywidgets.SelectionSlider:
    """A slider over ``stops`` (at ``value``, else the first), 760 px wide."""
    slider = ipywidgets.SelectionSlider(
        options=labelled(stops),
        description=description,
        layout=ipywidgets.Layout(width="760px"),
        style={"description_width": "150px"},
    )
    if value is not None:
        slider.value = value
    return slider


class TimeSliders:
    """The ``at`` and ``known_at`` of a widget with those two sliders (``at_slider``,
    ``known_at_slider``)."""

    @property
    def at(self) -> dt.datetime:
        """The ``at`` slider's time (exclusive bound on event time)."""
        return self.at_slider.value

    @property
    def known_at(self) -> dt.datetime:
        """The ``known_at`` slider's time (inclusive bound on processing time)."""
        return self.known_at_slider.value
