"""live_view in a real JupyterLab, in headless Debian chromium: batches appended to the
live fold from the kernel change the table and the timeline in place (the nodes drawn
before are the same nodes after), restated states are highlighted, and the pause button
holds batches until it is pressed again. Run with ``pytest tests/browser``.
"""

from __future__ import annotations

import nbformat
import pytest

from tests.browser.lab import Lab, Recorded, save_screenshot
from tests.browser.notebooks import notebook
from tests.browser.test_widgets_in_lab import assert_no_errors, open_notebook, run_cell

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

#: live.ipynb: the sample's parcels folded live in three batches: most of the on-time
#: deliveries, the rest of them, then every parcel's first scan, late (each restates the
#: past of a parcel that already had events).
CELLS = [
    """\
import polars as pl

import concursus_lab as cl
from concursus_lab.sample import parcel_state, parcel_types
from concursus_lab.widgets import live_view

parcels = cl.sample.parcels(200, seed=7)
received = pl.col("name") == "receivedAtDepot"
on_time, late = parcels.filter(~received), parcels.filter(received)
live = cl.live.states(parcel_state, types=parcel_types)
view = live_view(live)
view.update(live.update(on_time[:300]))
ids = parcels["aggregate_id"].n_unique()
print(on_time.height, "on time,", late.height, "late,", ids, "parcels")""",
    "view",
    "view.update(live.update(on_time[300:]))",
    "view.update(live.update(late))",
]

CIRCLES = ".cl-live svg circle"


def circles(page) -> int:
    return page.locator(CIRCLES).count()


def wait_for_circles(page, n: int) -> None:
    page.wait_for_function(
        "(n) => document.querySelectorAll('.cl-live svg circle').length === n",
        arg=n,
        timeout=60_000,
    )


def run_and_wait(page, index: int) -> None:
    """Run code cell ``index`` and wait until its execution count shows (it finished)."""
    run_cell(page, index)
    prompt = page.locator(".jp-CodeCell").nth(index).locator(".jp-InputPrompt")
    page.wait_for_function(
        "(el) => /\\[\\d+\\]/.test(el.textContent)", arg=prompt.element_handle(), timeout=60_000
    )


def test_the_live_view_changes_in_place_as_batches_arrive(lab: Lab, page, recorded: Recorded):
    nbformat.write(notebook(CELLS), lab.root / "live.ipynb")
    open_notebook(page, lab, "live.ipynb")
    run_and_wait(page, 0)
    text = page.locator(".jp-CodeCell").nth(0).locator(".jp-OutputArea").inner_text()
    on_time, late, parcels = (int(word) for word in text.split() if word.isdigit())
    run_and_wait(page, 1)
    wait_for_circles(page, 300)
    table = page.locator(".cl-live-table tbody tr")
    assert table.count() == 20
    assert page.locator(".cl-live-caption").inner_text().startswith("batch 1: 300 deliveries")

    # mark what is drawn now; the next batch must keep these very nodes
    page.evaluate(
        """() => {
        document.querySelector('.cl-live svg').dataset.mark = 'kept';
        document.querySelector('.cl-live svg circle[data-point="0"]').dataset.mark = 'kept';
        document.querySelector('.cl-live-table').dataset.mark = 'kept';
        window.clLiveFirstCircle = document.querySelector('.cl-live svg circle');
        }"""
    )
    first_rows = table.all_inner_texts()
    run_and_wait(page, 2)
    wait_for_circles(page, on_time)
    assert page.locator(".cl-live svg[data-mark='kept']").count() == 1
    assert page.locator(".cl-live svg circle[data-mark='kept']").count() == 1
    assert page.evaluate(
        "() => window.clLiveFirstCircle === document.querySelector('.cl-live svg circle')"
    )  # the same node, moved at most: the chart was not drawn again
    assert page.locator(".cl-live-table[data-mark='kept']").count() == 1
    assert table.all_inner_texts() != first_rows
    assert page.locator(".cl-live-restated").count() == 0

    # pause: the late batch is held in the kernel, nothing changes in the page
    page.locator(".cl-live-pause").click()
    page.locator(".cl-live-caption", has_text="paused").wait_for(timeout=30_000)
    run_and_wait(page, 3)
    page.locator(".cl-live-caption", has_text="1 batches held").wait_for(timeout=30_000)
    assert circles(page) == on_time
    save_screenshot(page.locator(".cl-live"), "live-view-paused")

    # resume: the late deliveries arrive, those that restated a past are highlighted
    page.locator(".cl-live-pause").click()
    wait_for_circles(page, min(on_time + late, 2_000))
    restated_points = page.locator(".cl-live svg circle.cl-live-restated").count()
    assert 0 < restated_points <= parcels
    restated_rows = page.locator(".cl-live-table tr.cl-live-restated")
    assert restated_rows.count() == 20  # the whole table: every row a restated parcel
    assert "past" in restated_rows.first.inner_text()
    assert page.locator(".cl-live svg circle[data-mark='kept']").count() == 1
    caption = page.locator(".cl-live-caption").inner_text()
    assert caption.startswith("batch 3:") and "paused" not in caption
    save_screenshot(page.locator(".cl-live"), "live-view", docs=True)
    assert_no_errors(page)
    assert not recorded.foreign()
