"""The explorer's slider in a real JupyterLab, in headless Debian chromium: a move of the
``at`` slider recolours the chart's points in place (the same SVG, the same point nodes:
only the chart's cut parameters are sent) as the kernel's history marks them. Run with
``pytest tests/browser``.
"""

from __future__ import annotations

import time

import nbformat
import pytest

from tests.browser.lab import Lab, Recorded, save_screenshot
from tests.browser.notebooks import notebook
from tests.browser.test_live_view_in_lab import run_and_wait
from tests.browser.test_widgets_in_lab import assert_no_errors, open_notebook

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

#: slider.ipynb: the sample's parcels given one id, so one aggregate of 3,000 events.
CELLS = [
    """\
import warnings

import polars as pl

import concursus_lab as cl
from concursus_lab.sample import parcel_state, parcel_types

events = cl.sample.parcels(1_000, seed=2).head(3_000)
events = events.with_columns(aggregate_id=pl.lit("parcel-big"))
warnings.simplefilter("ignore", cl.exceptions.ConflictingDeliveries)
ex = cl.explore(events, parcel_state, types=parcel_types, aggregate_id="parcel-big")
print(ex.history.height)""",
    "ex",
    """\
ex.at_slider.value = ex.at_slider.options[len(ex.at_slider.options) // 2][1]
print((ex.history["status"] == "not happened yet").sum())""",
]

POINTS = ".cl-explorer g.role-mark.mark-symbol path"
GREY = POINTS + '[fill="#9e9e9e"]'  # "not happened yet"


def number(page, index: int) -> int:
    text = page.locator(".jp-CodeCell").nth(index).locator(".jp-OutputArea").inner_text()
    return int(text.split()[-1])


def test_a_slider_move_recolours_the_points_in_place(lab: Lab, page, recorded: Recorded):
    nbformat.write(notebook(CELLS), lab.root / "slider.ipynb")
    open_notebook(page, lab, "slider.ipynb")
    run_and_wait(page, 0)
    deliveries = number(page, 0)
    run_and_wait(page, 1)
    page.wait_for_function(
        "([css, n]) => document.querySelectorAll(css).length === n",
        arg=[POINTS, deliveries],
        timeout=120_000,
    )
    assert page.locator(GREY).count() == 0  # at the end: everything had happened
    page.evaluate(
        """(css) => {
        document.querySelector('.cl-explorer svg').dataset.mark = 'kept';
        window.clFirstPoint = document.querySelector(css);
        }""",
        POINTS,
    )
    started = time.perf_counter()
    run_and_wait(page, 2)
    later = number(page, 2)
    assert 0 < later < deliveries
    page.wait_for_function(
        "([css, n]) => document.querySelectorAll(css).length === n",
        arg=[GREY, later],
        timeout=60_000,
    )
    print(f"move to recoloured in the page: {time.perf_counter() - started:.2f} s")
    assert page.locator(".cl-explorer svg[data-mark='kept']").count() == 1  # not drawn again
    assert page.evaluate("(css) => window.clFirstPoint === document.querySelector(css)", POINTS)
    assert page.locator(POINTS).count() == deliveries
    save_screenshot(page.locator(".cl-explorer"), "explorer-slider-moved")
    assert_no_errors(page)
    assert not recorded.foreign()
