"""The explorer widget: the picker, the two sliders, the state, the chart and the table,
and what a move of either recomputes."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import polars as pl

from concursus_lab.common.time import when
from concursus_lab.events.types import EventTypes, as_event_types
from concursus_lab.exceptions import ReducerError, SchemaError
from concursus_lab.frame.identity import check_duplicates
from concursus_lab.frame.schema import validate
from concursus_lab.plot.libraries import lab
from concursus_lab.timetravel.history import history
from concursus_lab.timetravel.reducer import check_reducer
from concursus_lab.timetravel.state_at import state_of
from concursus_lab.timetravel.trace import trace
from concursus_lab.widgets._base import SummaryWidget, offline_chart
from concursus_lab.widgets._format import html_table, text_table
from concursus_lab.widgets._stepper import StepMode, mark_step
from concursus_lab.widgets._time_sliders import (
    TimeSliders,
    at_stops,
    known_stops,
    labelled,
    time_slider,
)
from concursus_lab.widgets.explorer.chart import deliveries_chart, move_cut, overrides
from concursus_lab.widgets.explorer.cuts import Cuts
from concursus_lab.widgets.explorer.describe import HISTORY_COLUMNS, STATUS_LABELS, describe_state
from concursus_lab.widgets.explorer.picker import picker

ipywidgets = lab("ipywidgets")


class Explorer(SummaryWidget, TimeSliders):
    """The two-axis state explorer; build it with :func:`explore`.

    Attributes
    ----------
    aggregate_picker
        An ``ipywidgets.Combobox``: suggests the busiest aggregates, accepts any id.
    at_slider, known_at_slider
        ``ipywidgets.SelectionSlider`` of datetimes: event time (exclusive) and processing
        time (inclusive).
    state_view, table, chart
        The state (HTML), the history table (HTML) and the (event time, processing time)
        chart of the aggregate's deliveries.
    step_mode_toggle, stepper
        The "step through" toggle and the step mode (a ``StepMode``: ``.forward()``,
        ``.back()``, ``.run_to(condition)``, ``.step``, ``.trace``), shown when it is on.
    """

    def __init__(
        self,
        events: pl.DataFrame,
        reducer: Callable[[Any, Any], Any],
        *,
        types: EventTypes,
        aggregate_id: str | None = None,
        duplicates: str = "last",
    ) -> None:
        self._types = as_event_types(types)
        frame = validate(events, check_parameters=False)
        self._events = frame.filter(pl.col("aggregate_type") == self._types.aggregate_type)
        if self._events.height == 0:
            present = sorted(frame["aggregate_type"].unique().to_list())
            raise SchemaError(
                f"no events of aggregate type {self._types.aggregate_type!r} to explore; "
                f"the frame has {present!r}. Pass the EventTypes of one of those."
            )
        self._reducer = check_reducer(reducer)
        self._duplicates = check_duplicates(duplicates)
        self.aggregate_picker, first = picker(self._events, aggregate_id, self._types)
        chosen = self.aggregate_picker.value
        self.at_slider = time_slider(at_stops(first), "at (event time)")
        self.known_at_slider = time_slider(known_stops(first), "known at (processed)")
        self.state_view = ipywidgets.HTML()
        self.table = ipywidgets.HTML()
        self.message = ipywidgets.HTML()
        self.step_mode_toggle = ipywidgets.ToggleButton(
            description="step through", tooltip="replay the aggregate one delivery at a time"
        )
        self.stepper = StepMode(self._types, on_move=self._show, labels=STATUS_LABELS)
        self.stepper.layout.display = "none"
        self._busy = False
        self._mine = self._events.head(0)
        self._history = self._events.head(0)
        self._state: Any = None
        self._aggregate_id = chosen
        self._cuts: Cuts | None = None  # the aggregate's replay, walked once
        self._ringed: Any = None
        self._load(chosen)
        self.chart = offline_chart(self._drawn_chart)
        self.aggregate_picker.observe(self._on_pick, names="value")
        self.at_slider.observe(self._on_slide, names="value")
        self.known_at_slider.observe(self._on_slide, names="value")
        self.step_mode_toggle.observe(self._on_step_mode, names="value")
        below = ipywidgets.HBox([self.state_view, self.chart])
        super().__init__(
            [
                self.aggregate_picker,
                self.message,
                self.at_slider,
                self.known_at_slider,
                self.step_mode_toggle,
                self.stepper,
                below,
                self.table,
            ]
        )
        self.add_class("cl-explorer")
        self._show()

    # ----------------------------------------------------------------- what it shows

    @property
    def aggregate_id(self) -> str:
        """The aggregate shown."""
        return self._aggregate_id

    @property
    def state(self) -> Any:
        """The aggregate's state at ``at`` as known at ``known_at`` (None: no state yet)."""
        return self._state

    @property
    def history(self) -> pl.DataFrame:
        """The aggregate's deliveries in replay order with a ``status`` column, as shown."""
        return self._history

    @property
    def step_mode(self) -> bool:
        """Whether step mode is on (set it to turn it on or off)."""
        return self.step_mode_toggle.value

    @step_mode.setter
    def step_mode(self, on: bool) -> None:
        self.step_mode_toggle.value = bool(on)

    def summary(self) -> str:
        """Where the sliders are, the state there, and the marked history."""
        counts = self._history.group_by("status").len()
        tally = dict(counts.iter_rows())
        parts = [
            f"{tally.get(label, 0)} {label}"
            for label in STATUS_LABELS.values()
            if label != "conflicting" or tally.get(label)  # shown only when there are some
        ]
        lines = [
            f"Explorer: {self._types.aggregate_type} {self._aggregate_id}, "
            f"{self._mine.height} deliveries",
            f"at {when(self.at)} UTC (event time, exclusive), "
            f"known at {when(self.known_at)} UTC (processing time)",
            f"state: {self._state!r}" if self._state is not None else "state: (no state yet)",
            ", ".join(parts),
            *(self.stepper.summary_lines() if self.step_mode else ()),
            text_table(self._history, columns=HISTORY_COLUMNS[:-1], limit=20),
        ]
        return "\n".join(lines)

    # --------------------------------------------------------------------- plumbing

    def _load(self, aggregate_id: str) -> None:
        """Point the explorer at ``aggregate_id``: sliders to its stops, both at the end."""
        mine = self._events.filter(pl.col("aggregate_id") == aggregate_id)
        if mine.height == 0:
            self.message.value = (
                f"<b>No {self._types.aggregate_type} with id {aggregate_id!r}</b>; "
                f"still showing {self._aggregate_id!r}."
            )
            return
        self.message.value = ""
        self._aggregate_id = aggregate_id
        self._mine = mine
        self._busy = True
        try:
            for slider, stops in (
                (self.at_slider, at_stops(mine)),
                (self.known_at_slider, known_stops(mine)),
            ):
                slider.options = labelled(stops)
                slider.value = stops[-1]
        finally:
            self._busy = False
        self._cuts = Cuts(
            mine,
            self._reducer,
            types=self._types,
            aggregate_id=aggregate_id,
            duplicates=self._duplicates,
            labels=STATUS_LABELS,
        )
        self._compute()
        self._draw()

    def _compute(self) -> None:
        """The state and marks at the sliders' cut: from the replay walked once (see
        ``cuts.py``), else asked of ``cl.state_of`` and ``cl.history`` afresh."""
        options = {"at": self.at, "known_at": self.known_at, "duplicates": self._duplicates}
        answer = None if self._cuts is None else self._cuts.answer(self.at, self.known_at)
        if answer is None:
            self._ask(options)
        else:
            self._state, self._history = answer
            self.message.value = ""
        if self.step_mode:
            self._trace(options)

    def _ask(self, options: dict[str, Any]) -> None:
        """The state and the marked history at the cut, from ``cl.state_of`` and
        ``cl.history`` (where the walked replay cannot answer)."""
        try:
            self._state = state_of(
                self._mine,
                self._reducer,
                types=self._types,
                aggregate_id=self._aggregate_id,
                **options,
            )
            self.message.value = ""
        except ReducerError as error:  # shown, and step mode shows the state before it
            self._state = None
            self.message.value = (
                f"<b>{html.escape(str(error))}</b><br>Step through to see the state before it."
            )
        marked = history(self._mine, self._aggregate_id, types=self._types, **options)
        self._history = marked.with_columns(pl.col("status").replace_strict(STATUS_LABELS))

    def _trace(self, options: dict[str, Any]) -> None:
        self.stepper.load(
            trace(
                self._mine,
                self._reducer,
                types=self._types,
                aggregate_id=self._aggregate_id,
                **options,
            )
        )

    def _on_step_mode(self, change: dict[str, Any]) -> None:
        self.stepper.layout.display = None if change["new"] else "none"
        if change["new"]:
            options = {"at": self.at, "known_at": self.known_at}
            self._trace({**options, "duplicates": self._duplicates})
        self._show()

    def _on_pick(self, change: dict[str, Any]) -> None:
        if change["new"] and change["new"] != self._aggregate_id:
            self._load(change["new"])
            self._show()

    def _on_slide(self, _change: dict[str, Any]) -> None:
        if self._busy:
            return
        self._compute()
        self._show()

    def _show(self) -> None:
        head = (
            f"{html.escape(self._aggregate_id)}\n at       {when(self.at)}\n"
            f" known at {when(self.known_at)}\n"
        )
        body = html.escape(describe_state(self._state))
        self.state_view.value = f'<div class="cl-state">{head}\n{body}</div>'
        if self.step_mode:
            self.state_view.value = self.stepper.state_html()
        step = self.stepper.step if self.step_mode else None
        self.table.value = html_table(
            self._history,
            columns=HISTORY_COLUMNS,
            limit=50,
            current=None if step is None else step.number - 1,
        )
        if hasattr(self, "chart"):
            self._move_chart(step)

    def _draw(self) -> None:
        """Draw the aggregate's chart (once per aggregate: a move only moves its cut)."""
        self._drawn = self._history
        self._drawn_chart = deliveries_chart(self._drawn, at=self.at, known_at=self.known_at)
        self._ringed = None
        if hasattr(self, "chart"):
            self.chart.chart = self._drawn_chart

    def _move_chart(self, step: Any) -> None:
        """The chart at the sliders' cut (its parameters), the step ringed in step mode."""
        if step is not self._ringed:  # only step mode draws again, to ring the step
            self.chart.chart = mark_step(self._drawn_chart, step)
            self._ringed = step
        changed = overrides(self._drawn, self._history, at=self.at, known_at=self.known_at)
        move_cut(self.chart, at=self.at, known_at=self.known_at, changed=changed)


def explore(
    events: pl.DataFrame,
    reducer: Callable[[Any, Any], Any],
    *,
    types: EventTypes,
    aggregate_id: str | None = None,
    duplicates: str = "last",
) -> Explorer:
    """Explore one aggregate's state on both time axes: two sliders, the state, the history.

    Moving either slider recomputes the state (:func:`cl.state_of
    <concursus_lab.state_of>`) and the marked history (:func:`cl.history
    <concursus_lab.history>`) at once. Printed, it is a short text summary.

    Parameters
    ----------
    events
        A canonical event frame (every delivery, to see duplicates).
    reducer
        A plain function ``(state | None, event) -> state``.
    types
        The :class:`~concursus_lab.EventTypes` the reducer folds.
    aggregate_id
        The aggregate to show first; None shows the busiest (most deliveries).
    duplicates
        As for :func:`cl.state_at <concursus_lab.state_at>`: ``"last"``, ``"first"`` or
        ``"keep"``.

    Examples
    --------
    >>> import concursus_lab as cl
    >>> from concursus_lab.sample import parcel_state, parcel_types
    >>> view = cl.explore(cl.sample.parcels(50, seed=1), parcel_state, types=parcel_types,
    ...                   aggregate_id="parcel-0000007")
    >>> print(str(view).splitlines()[3])
    3 applied, 0 not happened yet, 0 not known yet, 0 duplicate, 0 skipped, 0 undecodable
    >>> view.known_at_slider.value = view.known_at_slider.options[1][1]  # the first delivery
    >>> view.state.status
    'at depot'
    >>> view.step_mode = True  # its replay at that cut, a delivery at a time (cl.trace)
    >>> view.stepper.forward()
    >>> view.stepper.control.label
    'step 1 of 3: receivedAtDepot, applied'
    >>> view.stepper.forward()
    >>> view.stepper.control.label
    'step 2 of 3: loadedOntoTruck, not known yet'
    """
    return Explorer(events, reducer, types=types, aggregate_id=aggregate_id, duplicates=duplicates)
