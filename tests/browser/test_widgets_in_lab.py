"""The widgets in a real JupyterLab, in headless Debian chromium: drawn, driven, offline.

Run with ``pytest tests/browser``; screenshots land in test-artifacts/.
"""

from __future__ import annotations

import time

import pytest

from tests.browser.lab import ARTIFACTS, Lab, Recorded, save_screenshot

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

#: Vega draws with SVG (see concursus_lab.widgets._base.EMBED_OPTIONS): marks are elements.
DOTS = ".vega-embed svg g.mark-symbol path"
BARS = ".vega-embed svg g.mark-rect path"


def open_notebook(page, lab: Lab, name: str) -> None:
    """Open ``name`` and wait until its kernel is idle, and still idle a moment later.

    JupyterLab may start a kernel, replace it, and report idle in between; cells sent to
    the first one are lost.
    """
    page.goto(lab.notebook(name))
    page.locator(".jp-NotebookPanel").first.wait_for(timeout=60_000)
    idle = page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first
    idle.wait_for(timeout=60_000)
    page.wait_for_timeout(2_000)
    idle.wait_for(timeout=60_000)


def run_all(page) -> None:
    """Run > Run All Cells, from JupyterLab's menu."""
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()


def run_cell(page, index: int) -> None:
    """Select code cell ``index`` and run it (Shift+Enter)."""
    cell = page.locator(".jp-CodeCell").nth(index)
    cell.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Shift+Enter")


def cell_output(page, index: int):
    return page.locator(".jp-CodeCell").nth(index).locator(".jp-OutputArea")


def assert_no_errors(page) -> None:
    errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.error']")
    assert errors.count() == 0, errors.first.inner_text()


def test_widgets_draw_and_respond_offline(lab: Lab, page, recorded: Recorded):
    open_notebook(page, lab, "widgets.ipynb")
    run_all(page)

    # the existing chart helper draws offline too (cl.plot.offline)
    bars = cell_output(page, 1).locator(BARS)
    bars.first.wait_for(timeout=120_000)
    assert bars.count() > 5

    timeline = page.locator(".cl-timeline")
    timeline.locator(DOTS).first.wait_for(timeout=60_000)
    assert timeline.locator("svg text", has_text="Summary: showing the 40 busiest").count() == 1
    dots = timeline.locator(DOTS).count()
    assert dots > 100, dots
    assert timeline.locator(".vega-embed svg g.mark-rule line").count() > 100
    caption = timeline.locator(".cl-caption")
    assert "Drag across the chart" in caption.inner_text()
    save_screenshot(timeline, "timeline-unbrushed")

    # brush in the page: the selected events are listed under the chart
    plot = timeline.locator(".vega-embed svg").first
    box = plot.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.35, box["y"] + box["height"] * 0.2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.7, steps=8)
    page.mouse.up()
    page.wait_for_function(
        "() => document.querySelector('.cl-timeline .cl-caption').innerText.includes('Selected')",
        timeout=30_000,
    )
    assert timeline.locator(".cl-table tbody tr").count() > 0
    save_screenshot(timeline, "timeline", docs=True)

    view = page.locator(".cl-lateness-view")
    view.locator(BARS).first.wait_for(timeout=60_000)
    assert view.locator(BARS).count() > 5
    before = view.locator(".cl-caption").inner_text()
    handle = view.locator(".noUi-handle").first
    handle.focus()
    for _ in range(3):
        handle.press("ArrowLeft")
    page.wait_for_function(
        "(before) => document.querySelector('.cl-lateness-view .cl-caption').innerText !== before",
        arg=before,
        timeout=30_000,
    )
    page.wait_for_timeout(1_500)  # let the last key's update land
    save_screenshot(view, "lateness-view", docs=True)

    # the explorer: move the known-at slider in the page; state and table follow
    explorer = page.locator(".cl-explorer")
    explorer.locator(DOTS).first.wait_for(timeout=60_000)
    state = explorer.locator(".cl-state")
    before = state.inner_text()
    assert "delivered" in before  # everything known: the parcel was delivered
    handle = explorer.locator(".noUi-handle").nth(1)  # known_at
    handle.focus()
    for _ in range(5):
        handle.press("ArrowLeft")
    page.wait_for_function(
        "(before) => document.querySelector('.cl-explorer .cl-state').innerText !== before",
        arg=before,
        timeout=30_000,
    )
    page.wait_for_timeout(1_500)  # let the last key's update land
    after = state.inner_text()
    assert "delivered" not in after.split("\n", 1)[1], after
    assert "not known yet" in explorer.locator(".cl-table").inner_text()
    save_screenshot(explorer, "explorer", docs=True)

    assert_no_errors(page)
    save_screenshot(page, "widgets-notebook")
    foreign = recorded.foreign()
    assert not foreign, f"requests left localhost: {foreign[:10]}"
    assert len(recorded.urls) > 10  # the recording itself works


def test_timeline_of_a_million_events_renders_in_seconds(lab: Lab, page, recorded: Recorded):
    """Time Shift+Enter -> the widget's output arrives -> Vega has drawn its marks.

    The first chart in a kernel also imports altair and loads the Vega bundle; the second
    is what every later chart costs. Times go to test-artifacts/timeline-million.txt (never
    asserted: the machine is shared).
    """
    open_notebook(page, lab, "million.ipynb")
    run_cell(page, 0)
    cell_output(page, 0).get_by_text("events").wait_for(timeout=180_000)
    lines = []
    for index, label in ((1, "first chart in the kernel"), (2, "second chart")):
        output = cell_output(page, index)
        started = time.monotonic()
        run_cell(page, index)
        output.locator(".jupyter-widgets").first.wait_for(timeout=120_000)
        arrived = time.monotonic()
        output.locator(DOTS).first.wait_for(timeout=120_000)
        drawn = time.monotonic()
        assert output.locator("svg text", has_text="Summary:").count() == 1
        lines.append(
            f"{label}: {drawn - started:.2f} s to marks in the page "
            f"(kernel and transfer {arrived - started:.2f} s, drawing {drawn - arrived:.2f} s)"
        )
    save_screenshot(cell_output(page, 1), "timeline-million")
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    report = "\n".join(lines)
    (ARTIFACTS / "timeline-million.txt").write_text(
        f"timeline of 1,000,250 events (load average {load} when done)\n{report}\n"
    )
    print(report)
    assert_no_errors(page)
    assert not recorded.foreign()
