"""The explorer's step mode: one aggregate's replay, a delivery at a time (``cl.trace``).

:class:`StepMode` holds a :func:`cl.trace <concursus_lab.trace>` and a position in it (0:
before the first delivery; *n*: after step *n*). :class:`StepControl` is its front end, an
anywidget (``_stepper.js``): back and forward buttons, and the arrow keys while it has the
focus; it only moves ``position``. Everything else runs in the kernel: the state after the
step with the fields it changed highlighted (:meth:`StepMode.state_html`), the step marked
on the explorer's two-axis chart (:func:`mark_step`), and the breakpoint box, a Python
condition on ``state`` and ``event`` (the event classes of the aggregate type are in scope
by their names), run with the trace's own breakpoint rule (``Trace.find``).
"""

from __future__ import annotations

import builtins
import html
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from concursus_lab.common.time import when
from concursus_lab.events.types import EventTypes
from concursus_lab.exceptions import BreakpointError
from concursus_lab.plot.libraries import lab
from concursus_lab.timetravel.changes import fields
from concursus_lab.timetravel.trace import Trace
from concursus_lab.timetravel.trace.step import Step

ipywidgets = lab("ipywidgets")
anywidget = lab("anywidget")
traitlets = lab("traitlets")

if TYPE_CHECKING:
    import altair as alt

_CSS = """
.cl-step-control { display: flex; gap: 8px; align-items: center; padding: 4px 0;
  outline: none; }
.cl-step-control:focus-visible { outline: 2px solid #4c78a8; outline-offset: 2px; }
.cl-step-label { font-family: monospace; font-size: 12px; }
"""
#: How the state view highlights a field the current step changed.
_CHANGED = "background: #fff3b0; font-weight: 600;"


class StepControl(anywidget.AnyWidget):
    """Back, forward (buttons and arrow keys) and a label; syncs only three traits."""

    _esm = Path(__file__).with_name("_stepper.js")
    _css = _CSS
    position = traitlets.Int(0).tag(sync=True)
    count = traitlets.Int(0).tag(sync=True)
    label = traitlets.Unicode("").tag(sync=True)


class StepMode(ipywidgets.VBox):
    """The step control, the breakpoint box and what the current step did.

    ``on_move`` is called (with no argument) whenever the position changes; ``labels``
    names the statuses as the explorer does.
    """

    def __init__(
        self,
        types: EventTypes,
        on_move: Callable[[], None],
        labels: dict[str, str] | None = None,
    ) -> None:
        self.control = StepControl()
        self.condition = ipywidgets.Text(
            description="break when",
            placeholder="state.status == 'failed'",
            continuous_update=False,  # runs on Enter
            layout=ipywidgets.Layout(width="520px"),
        )
        self.run_button = ipywidgets.Button(description="run to breakpoint")
        self.message = ipywidgets.HTML()
        self._names = {t.cls.__name__: t.cls for t in types}
        self._on_move = on_move
        self._labels = labels or {}
        self._trace: Trace | None = None
        self.control.observe(self._moved, names="position")
        self.condition.observe(lambda _change: self._run_box(), names="value")
        self.run_button.on_click(lambda _button: self._run_box())
        box = ipywidgets.HBox([self.condition, self.run_button])
        super().__init__([self.control, box, self.message])
        self.add_class("cl-step-mode")

    # ------------------------------------------------------------------------ moving

    @property
    def trace(self) -> Trace | None:
        """The trace stepped through."""
        return self._trace

    @property
    def position(self) -> int:
        """0 before the first delivery, n after step n."""
        return self.control.position

    @property
    def step(self) -> Step | None:
        """The current step (None before the first delivery)."""
        if self._trace is None or self.position == 0:
            return None
        return self._trace.steps[self.position - 1]

    @property
    def state(self) -> Any:
        """The state after the current step (None before the first)."""
        step = self.step
        return None if step is None else step.after

    def load(self, trace: Trace) -> None:
        """Step through ``trace``, staying at the same position where it still exists."""
        self._trace = trace
        self.message.value = ""
        with self.control.hold_trait_notifications():
            self.control.count = len(trace)
            self.control.position = min(self.position, len(trace))
        self._label()

    def go(self, position: int) -> None:
        """Move to ``position`` (clipped to the trace)."""
        count = 0 if self._trace is None else len(self._trace)
        self.control.position = max(0, min(count, int(position)))

    def forward(self) -> None:
        """One delivery forward."""
        self.go(self.position + 1)

    def back(self) -> None:
        """One delivery back."""
        self.go(self.position - 1)

    def run_to(self, condition: str) -> Step | None:
        """Move forward to the first step after the current one after which ``condition``
        (a Python expression on ``state`` and ``event``) holds; None (and stay) if none."""
        if self._trace is None:
            return None
        test = compile_condition(condition, self._names)
        found = self._trace.find(test, after=self.position)
        if found is None:
            self.message.value = html.escape(
                f"No step after {self.position} where {condition.strip()} holds."
            )
            return None
        self.message.value = html.escape(f"Stopped at step {found.number}: {condition.strip()}")
        self.go(found.number)
        return found

    def _run_box(self) -> None:
        if not self.condition.value.strip():
            return
        try:
            self.run_to(self.condition.value)
        except BreakpointError as error:  # shown where the user typed, never raised
            self.message.value = f"<b>{html.escape(str(error))}</b>"

    def _moved(self, _change: dict[str, Any]) -> None:
        self._label()
        self._on_move()

    def _label(self) -> None:
        n = 0 if self._trace is None else len(self._trace)
        step = self.step
        if step is None:
            self.control.label = f"before the first delivery (0 of {n})"
        else:
            status = self._labels.get(step.status, step.status)
            self.control.label = f"step {step.number} of {n}: {step.name}, {status}"

    # ----------------------------------------------------------------------- showing

    def summary_lines(self) -> list[str]:
        """Where the stepper is, and what that step did (for the explorer's summary)."""
        step = self.step
        n = 0 if self._trace is None else len(self._trace)
        if step is None:
            return [f"step mode: before the first delivery (0 of {n})"]
        changed = ", ".join(c.field for c in step.changes) or "nothing"
        status = self._labels.get(step.status, step.status)
        return [
            f"step mode: step {step.number} of {n}, {step.name} at "
            f"{when(step.event_timestamp)} ({status}); changed {changed}",
            f"  state after it: {step.after!r}",
        ]

    def state_html(self) -> str:
        """The state after the current step, the fields it changed highlighted."""
        step = self.step
        if step is None:
            body = "(before the first delivery: no state yet)"
            return f'<div class="cl-state">{body}</div>'
        head = html.escape(
            f"step {step.number}: {step.name}\n at       {when(step.event_timestamp)}\n"
            f" known at {when(step.processing_timestamp)}\n "
            f"{self._labels.get(step.status, step.status)}"
        )
        if step.status == "raised" and self._trace is not None and self._trace.error:
            error = self._trace.error.__cause__ or self._trace.error
            head += html.escape(f": {type(error).__name__}: {error}\nstate before it:")
        return f'<div class="cl-state">{head}\n\n{field_lines(step)}</div>'


def field_lines(step: Step) -> str:
    """The state after ``step`` as ``field  value`` lines (HTML), changed fields marked."""
    values = fields(step.after)
    if not values:
        return "(no state yet)"
    changed = {c.field: c for c in step.changes}
    width = max(map(len, values))
    lines = [html.escape(type(step.after).__name__)]
    for name, value in values.items():
        text = f"  {name.ljust(width)}  {value!r}"
        if name in changed:
            was = f"   (was {changed[name].before!r})"
            text = f'<span class="cl-changed" style="{_CHANGED}">{html.escape(text + was)}</span>'
        else:
            text = html.escape(text)
        lines.append(text)
    return "\n".join(lines)


def compile_condition(text: str, names: dict[str, Any]) -> Callable[[Any, Any], Any]:
    """A breakpoint typed as text: ``(state, event) -> value of the expression``.

    ``names`` (the event classes, by name) are in scope beside ``state`` and ``event``.
    """
    try:
        code = compile(text.strip(), "<breakpoint>", "eval")
    except SyntaxError as exc:
        raise BreakpointError(
            f"the breakpoint {text.strip()!r} is not a Python expression ({exc.msg}); write "
            "a condition on `state` and `event`, e.g. state.status == 'failed'."
        ) from exc
    scope = {"__builtins__": builtins, **names}

    def condition(state: Any, event: Any) -> Any:
        return eval(code, scope, {"state": state, "event": event})

    return condition


def mark_step(chart: alt.LayerChart, step: Step | None) -> alt.LayerChart:
    """``chart`` (the explorer's deliveries chart) with ``step``'s delivery ringed."""
    if step is None:
        return chart
    alt = lab("altair")

    point = {
        "event_time": int(step.event_timestamp.timestamp() * 1000),
        "processing_time": int(step.processing_timestamp.timestamp() * 1000),
        "label": f"step {step.number}",
    }
    data = alt.InlineData(values=[point])
    at = {"x": "event_time:T", "y": "processing_time:T"}
    ring = (
        alt.Chart(data)
        .mark_point(shape="circle", size=420, filled=False, stroke="#000", strokeWidth=2.5)
        .encode(**at)
    )
    label = alt.Chart(data).mark_text(align="left", dx=14, dy=-12).encode(**at, text="label:N")
    marked = chart.copy()
    marked.layer = [*marked.layer, ring, label]
    return marked
