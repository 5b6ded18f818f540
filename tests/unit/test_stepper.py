"""The explorer's step mode, driven in the kernel through its traitlets: no browser.

The browser writes ``StepControl.position`` (buttons, arrow keys) and the breakpoint box's
``value``; the assertions are on the state shown, the chart's layers and the summary.
"""

from __future__ import annotations

import pytest

import concursus_lab as cl
from concursus_lab.exceptions import BreakpointError
from concursus_lab.sample import parcel_state, parcel_types
from concursus_lab.widgets._stepper import compile_condition


@pytest.fixture
def view():
    """parcel-B of the messy fixture: its receipt arrived late; failed once, delivered."""
    messy = cl.sample.fixture("messy")
    return cl.explore(messy, parcel_state, types=parcel_types, aggregate_id="parcel-B")


def marks(view) -> list[str]:
    return [layer["mark"]["type"] for layer in view.chart.chart.to_dict()["layer"]]


def test_step_mode_is_off_until_asked(view):
    assert not view.step_mode and view.stepper.layout.display == "none"
    assert "step mode" not in str(view)
    view.step_mode = True
    assert view.stepper.layout.display is None
    assert view.stepper.position == 0 and view.stepper.state is None
    assert view.stepper.control.count == 5
    assert view.stepper.control.label == "before the first delivery (0 of 5)"
    assert "before the first delivery" in view.state_view.value


def test_stepping_shows_the_state_with_the_changed_fields_highlighted(view):
    view.step_mode = True
    view.stepper.control.position = 2  # what the forward button does, twice
    assert view.stepper.control.label == "step 2 of 5: loadedOntoTruck, applied"
    shown = view.state_view.value
    assert shown.count('class="cl-changed"') == 3  # status, truck, attempts
    assert "status       &#x27;on truck&#x27;   (was &#x27;at depot&#x27;)" in shown
    assert "depot        &#x27;Hackney&#x27;\n" in shown  # unchanged: not highlighted
    view.stepper.forward()
    assert view.stepper.state.status == "failed"
    assert view.state_view.value.count('class="cl-changed"') == 1
    view.stepper.back()
    assert view.stepper.step.number == 2
    lines = str(view).splitlines()
    assert lines[4] == (
        "step mode: step 2 of 5, loadedOntoTruck at 2026-03-02 08:20:00 (applied); "
        "changed status, truck, attempts"
    )
    view.stepper.go(99)  # clipped
    assert view.stepper.position == 5


def test_the_current_step_is_ringed_on_the_chart(view):
    assert marks(view) == ["rect", "rule", "rule", "circle"]
    view.step_mode = True
    assert marks(view) == ["rect", "rule", "rule", "circle"]  # before the first: no ring
    view.stepper.forward()
    assert marks(view) == ["rect", "rule", "rule", "circle", "point", "text"]
    ring = view.chart.chart.layer[-1].data.values[0]
    assert ring["label"] == "step 1"
    view.step_mode = False
    assert marks(view) == ["rect", "rule", "rule", "circle"]


def test_a_breakpoint_typed_in_the_box_stops_at_the_right_event(view):
    view.step_mode = True
    view.stepper.condition.value = "state.status == 'failed'"
    assert view.stepper.step.number == 3 and view.stepper.step.name == "deliveryFailed"
    assert "Stopped at step 3" in view.stepper.message.value
    view.stepper.condition.value = "isinstance(event, LoadedOntoTruck)"  # classes in scope
    assert view.stepper.step.number == 4  # forward from where it stands
    view.stepper.run_button.click()  # run again: no later load
    assert view.stepper.step.number == 4
    assert "No step after 4" in view.stepper.message.value


def test_a_bad_breakpoint_is_shown_in_the_box_not_raised(view):
    view.step_mode = True
    view.stepper.condition.value = "state.staus == 'failed'"
    assert "the breakpoint raised AttributeError" in view.stepper.message.value
    assert view.stepper.position == 0
    view.stepper.condition.value = "state ==="
    assert "is not a Python expression" in view.stepper.message.value
    with pytest.raises(BreakpointError, match="is not a Python expression"):
        compile_condition("state ===", {})


def test_moving_a_slider_retraces_at_the_new_cut(view):
    view.step_mode = True
    view.stepper.go(5)
    assert view.stepper.state.status == "delivered"
    view.known_at_slider.value = view.known_at_slider.options[2][1]  # two deliveries known
    assert len(view.stepper.trace) == 5 and view.stepper.position == 5
    statuses = [s.status for s in view.stepper.trace]
    assert statuses.count("not_known_yet") == 3
    assert view.stepper.control.label == "step 5 of 5: delivered, not known yet"
    assert view.stepper.state == view.state  # the last step's state is the sliders' state


def test_a_reducer_that_raises_shows_the_state_before_and_the_error():
    messy = cl.sample.fixture("messy")

    def fragile(state, event):
        if type(event).__name__ == "DeliveryFailed":
            raise ValueError("drivers never fail")
        return parcel_state(state, event)

    view = cl.explore(messy, fragile, types=parcel_types, aggregate_id="parcel-A")
    view.step_mode = True  # parcel-A never failed: the trace runs to the end
    assert view.stepper.trace.error is None
    view.aggregate_picker.value = "parcel-D"
    view.stepper.go(99)
    shown = view.state_view.value
    assert view.stepper.step.status == "raised"
    assert "ValueError: drivers never fail" in shown and "state before it:" in shown


def test_the_current_step_is_marked_in_the_history_table(view):
    view.step_mode = True
    assert "cl-current" not in view.table.value  # before the first delivery
    view.stepper.go(3)
    rows = view.table.value.split("<tbody>")[1].split("</tr>")
    assert [i for i, row in enumerate(rows) if "cl-current" in row] == [2]
    assert "deliveryFailed" in rows[2]
    view.step_mode = False
    assert "cl-current" not in view.table.value
