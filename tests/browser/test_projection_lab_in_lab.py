"""The projection lab in a real JupyterLab, in headless Debian chromium: drawn, driven, offline.

Run with ``pytest tests/browser``; screenshots land in test-artifacts/.
"""

from __future__ import annotations

import nbformat
import pytest

from tests.browser.lab import Lab, Recorded, save_screenshot
from tests.browser.notebooks import notebook
from tests.browser.test_widgets_in_lab import assert_no_errors, open_notebook, run_all

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

#: projection-lab.ipynb: two versions of a delivery-rate view on the sample store.
CELLS = [
    """\
import polars as pl

import concursus_lab as cl

deliveries = cl.open().events(duplicates="keep")
day = pl.col("event_timestamp").dt.date().alias("day")


def delivery_rate(events: pl.DataFrame) -> pl.DataFrame:
    attempts = cl.threads(events, via="truckId").filter(
        pl.col("name").is_in(["delivered", "deliveryFailed"])
    )
    return attempts.group_by(pl.col("thread").alias("truck"), day).agg(
        attempts=pl.len(), delivered=(pl.col("name") == "delivered").sum()
    ).sort("truck", "day")


v1 = cl.projection(delivery_rate, duplicates="keep", key=["truck", "day"])  # every delivery
v2 = cl.projection(delivery_rate, key=["truck", "day"])  # one per event
print(f"{deliveries.height:,} deliveries")""",
    'cl.projection_lab(deliveries, {"v1": v1, "v2": v2})',
]


def test_projection_lab_draws_and_follows_its_sliders_offline(lab: Lab, page, recorded: Recorded):
    nbformat.write(notebook(CELLS), lab.root / "projection-lab.ipynb")
    open_notebook(page, lab, "projection-lab.ipynb")
    run_all(page)

    widget = page.locator(".cl-projection-lab")
    widget.locator(".cl-table").first.wait_for(timeout=120_000)
    tabs = widget.locator(".lm-TabBar-tab")
    assert tabs.count() == 2
    assert tabs.nth(0).inner_text().strip() == "v1"
    diff_text = widget.locator(".cl-table").nth(2)  # v1's view, v2's view, then the diff
    assert "differs" in diff_text.inner_text()
    body = widget.inner_text()
    assert "v1 -> v2: 26 changed" in body
    assert "chaos v1" in body and "unstable" in body
    assert "chaos v2" in body and "stable in 20 redeliveries" in body
    save_screenshot(widget, "projection-lab", docs=True)

    # the second tab shows the second view
    tabs.nth(1).click()
    assert widget.locator(".cl-table").nth(1).is_visible()

    # move known_at back in the page: the caption, the views and the diff follow
    caption = widget.locator(".cl-caption")
    before = caption.inner_text()
    handle = widget.locator(".noUi-handle").nth(1)  # known_at
    handle.focus()
    for _ in range(150):
        handle.press("ArrowLeft")
    page.wait_for_function(
        "(before) => document.querySelector('.cl-projection-lab .cl-caption').innerText !== before",
        arg=before,
        timeout=30_000,
    )
    page.wait_for_timeout(2_000)  # let the last key's update land
    after = widget.inner_text()
    assert "v1 -> v2: 26 changed" not in after  # fewer repeats had arrived by then
    save_screenshot(widget, "projection-lab-known-at")

    assert_no_errors(page)
    foreign = recorded.foreign()
    assert not foreign, f"requests left localhost: {foreign[:10]}"
