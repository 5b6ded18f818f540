"""The lateness view kept live in a real JupyterLab, in headless Debian chromium: a batch added
from the kernel changes the bars in place (the SVG marked before the batch is the same node
after it, its bars' shapes changed) and the caption counts the batch. Run with
``pytest tests/browser``.
"""

from __future__ import annotations

import json

import nbformat
import pytest

from tests.browser.lab import Lab, Recorded, save_screenshot
from tests.browser.notebooks import notebook
from tests.browser.test_live_view_in_lab import run_and_wait
from tests.browser.test_timeline_live_in_lab import number
from tests.browser.test_widgets_in_lab import assert_no_errors, open_notebook

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

#: lateness_live.ipynb: 60 parcels' deliveries in arrival order, in three batches; the view
#: prints how many deliveries its replay holds after each step.
CELLS = [
    """\
import concursus_lab as cl

events = cl.sample.parcels(60, seed=4).sort("processing_timestamp")
first, second, third = events[:40], events[40:100], events[100:]
view = cl.lateness_view(first)
view.update(second)  # kept live from here: drawn once more, in its live form
print(view.replay.events.height)""",
    "view",
    "view.update(third)\nprint(view.replay.events.height)",
]

BARS = ".cl-lateness-view g.role-mark.mark-rect path"


def shapes(page) -> list[str]:
    return page.evaluate(
        "(css) => Array.from(document.querySelectorAll(css), p => p.getAttribute('d'))", BARS
    )


def test_a_batch_changes_the_bars_in_place_and_the_caption_counts_it(
    lab: Lab, page, recorded: Recorded
):
    nbformat.write(notebook(CELLS), lab.root / "lateness_live.ipynb")
    open_notebook(page, lab, "lateness_live.ipynb")
    run_and_wait(page, 0)
    before = number(page, 0)
    run_and_wait(page, 1)
    page.wait_for_selector(BARS, timeout=120_000)
    caption = page.locator(".cl-lateness-view .cl-caption")
    said = caption.inner_text()
    bars = shapes(page)
    page.evaluate(
        "() => { document.querySelector('.cl-lateness-view svg').dataset.mark = 'kept'; }"
    )
    run_and_wait(page, 2)
    after = number(page, 2)
    assert after > before
    page.wait_for_function(
        "([css, old]) => JSON.stringify(Array.from(document.querySelectorAll(css),"
        " p => p.getAttribute('d'))) !== old",
        arg=[BARS, json.dumps(bars, separators=(",", ":"))],
        timeout=120_000,
    )
    assert shapes(page) != bars
    assert caption.inner_text() != said
    assert page.locator(".cl-lateness-view svg[data-mark='kept']").count() == 1  # not redrawn
    save_screenshot(page.locator(".cl-lateness-view"), "lateness-view-live")
    assert_no_errors(page)
    assert not recorded.foreign()
