"""The explorer's step mode in a real JupyterLab, in headless Debian chromium.

Stepping (buttons and arrow keys) changes the highlighted state and the ringed step on the
chart, and a breakpoint typed in the box stops at the right event. Run with
``pytest tests/browser``; screenshots land in test-artifacts/.
"""

from __future__ import annotations

import nbformat
import pytest

from tests.browser.lab import Lab, Recorded, save_screenshot
from tests.browser.notebooks import notebook
from tests.browser.test_widgets_in_lab import DOTS, assert_no_errors, open_notebook, run_all

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

#: stepper.ipynb: parcel-0000321 of the sample store, loaded onto a truck twice by one
#: repeated delivery (8 deliveries; attempts reaches 3 at step 7 with duplicates="last").
CELLS = [
    """\
import concursus_lab as cl
from concursus_lab.sample import parcel_state, parcel_types

deliveries = cl.open().events(duplicates="keep")
print(f"{deliveries.height:,} deliveries")""",
    'cl.explore(deliveries, parcel_state, types=parcel_types, aggregate_id="parcel-0000321")',
]


def wait_for_label(page, text: str) -> None:
    page.wait_for_function(
        "(text) => (document.querySelector('.cl-explorer .cl-step-label') || {})"
        ".textContent?.startsWith(text)",
        arg=text,
        timeout=30_000,
    )


def changed_fields(explorer) -> list[str]:
    return [s.split()[0] for s in explorer.locator(".cl-state .cl-changed").all_inner_texts()]


def test_stepping_highlights_the_changes_and_a_breakpoint_stops(lab: Lab, page, recorded: Recorded):
    nbformat.write(notebook(CELLS), lab.root / "stepper.ipynb")
    open_notebook(page, lab, "stepper.ipynb")
    run_all(page)

    explorer = page.locator(".cl-explorer")
    explorer.locator(DOTS).first.wait_for(timeout=120_000)
    explorer.get_by_role("button", name="step through").click()
    control = explorer.locator(".cl-step-control")
    control.wait_for(timeout=30_000)
    wait_for_label(page, "before the first delivery (0 of 8)")

    # the buttons: two steps forward; the fields the second step changed are highlighted
    forward = control.locator(".cl-step-forward")
    forward.click()
    wait_for_label(page, "step 1 of 8")
    forward.click()
    wait_for_label(page, "step 2 of 8: loadedOntoTruck")
    page.wait_for_function(
        "() => document.querySelectorAll('.cl-explorer .cl-state .cl-changed').length === 3"
    )
    assert changed_fields(explorer) == ["status", "truck", "attempts"]
    assert "'on truck'" in explorer.locator(".cl-state .cl-changed").first.inner_text()
    explorer.locator("svg text", has_text="step 2").wait_for(timeout=30_000)  # ringed

    # the arrow keys, while the control has the focus
    control.focus()
    page.keyboard.press("ArrowRight")
    wait_for_label(page, "step 3 of 8: deliveryFailed")
    page.wait_for_function(
        "() => document.querySelectorAll('.cl-explorer .cl-state .cl-changed').length === 1"
    )
    assert changed_fields(explorer) == ["status"]
    assert "'failed'" in explorer.locator(".cl-state .cl-changed").inner_text()
    page.keyboard.press("ArrowLeft")
    wait_for_label(page, "step 2 of 8")
    explorer.locator("svg text", has_text="step 2").wait_for(timeout=30_000)

    # a breakpoint, typed in the box and run with Enter: forward to the third load
    box = explorer.locator(".cl-step-mode input[type='text']")
    box.fill("state.attempts == 3")
    box.press("Enter")
    wait_for_label(page, "step 7 of 8: loadedOntoTruck")
    explorer.locator(".cl-step-mode", has_text="Stopped at step 7").wait_for(timeout=30_000)
    assert changed_fields(explorer) == ["status", "attempts"]
    assert "3" in explorer.locator(".cl-state .cl-changed").nth(1).inner_text()
    explorer.locator("svg text", has_text="step 7").wait_for(timeout=30_000)
    current = explorer.locator(".cl-table tr.cl-current")
    assert current.count() == 1 and "2026-03-09 06:45:35.213" in current.inner_text()
    save_screenshot(explorer, "explorer-step-mode", docs=True)

    assert_no_errors(page)
    foreign = recorded.foreign()
    assert not foreign, f"requests left localhost: {foreign[:10]}"
