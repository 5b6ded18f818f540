"""The timeline kept live in a real JupyterLab, in headless Debian chromium: batches added
from the kernel put their events on the chart without drawing it again (the SVG marked
before a batch is the same node after it). Run with ``pytest tests/browser``.
"""

from __future__ import annotations

import nbformat
import pytest

from tests.browser.lab import Lab, Recorded, save_screenshot
from tests.browser.notebooks import notebook
from tests.browser.test_live_view_in_lab import run_and_wait
from tests.browser.test_widgets_in_lab import assert_no_errors, open_notebook

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

#: timeline_live.ipynb: 30 parcels' events in arrival order, in three batches.
CELLS = [
    """\
import concursus_lab as cl

events = cl.sample.parcels(30, seed=4).sort("processing_timestamp")
first, second, third = events[:30], events[30:60], events[60:]
view = cl.timeline(first)
view.update(second)  # kept live from here: drawn once more, in its live form
print(view.data.n_marks // 3)""",
    "view",
    "view.update(third)\nprint(view.data.n_marks // 3)",
]

DOTS = ".cl-timeline g.role-mark.mark-symbol path"


def number(page, index: int) -> int:
    text = page.locator(".jp-CodeCell").nth(index).locator(".jp-OutputArea").inner_text()
    return int(text.split()[-1])


def wait_for_dots(page, n: int) -> None:
    page.wait_for_function(
        "([css, n]) => document.querySelectorAll(css).length === n",
        arg=[DOTS, n],
        timeout=120_000,
    )


def test_a_batch_adds_its_events_without_drawing_the_chart_again(
    lab: Lab, page, recorded: Recorded
):
    nbformat.write(notebook(CELLS), lab.root / "timeline_live.ipynb")
    open_notebook(page, lab, "timeline_live.ipynb")
    run_and_wait(page, 0)
    dots = number(page, 0)
    run_and_wait(page, 1)
    wait_for_dots(page, dots)
    page.evaluate("() => { document.querySelector('.cl-timeline svg').dataset.mark = 'kept'; }")
    run_and_wait(page, 2)
    more = number(page, 2)
    assert more > dots
    wait_for_dots(page, more)
    assert page.locator(".cl-timeline svg[data-mark='kept']").count() == 1  # not drawn again
    save_screenshot(page.locator(".cl-timeline"), "timeline-live")
    assert_no_errors(page)
    assert not recorded.foreign()
