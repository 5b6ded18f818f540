"""altair's private API (concursus_lab/plot/altair_private.py): still where it was on the
installed altair, and a public fallback that gives the widgets the same selections.

The browser writes a brush into ``JupyterChart._vl_selections`` (altair's own JavaScript does);
these tests do the same, and altair turns it into its public ``selections`` too.
"""

from __future__ import annotations

import datetime as dt

import pytest

import concursus_lab as cl
from concursus_lab.plot import altair_private
from tests.contract import event, frame

BASE = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)


def ms(second: int) -> int:
    return int((BASE + dt.timedelta(seconds=second)).timestamp() * 1000)


def brush(chart, value: dict) -> None:
    """What the browser does when a rectangle is dragged on the chart."""
    setattr(chart, altair_private.SELECTIONS, {"brush": {"value": value, "store": []}})


@pytest.fixture(scope="module")
def history():
    return frame(
        event("a", 10, 11),
        event("a", 20, 3_600, name="loadedOntoTruck"),
        event("b", 15, 16),
        event("d", 50, 51, aggregate_type="truck", name="departed"),
    )


def test_the_installed_altair_keeps_what_the_adapter_reads():
    # fails when an altair release moves the private API: look at what moved, then adapt
    # altair_private.py (and VERIFIED) before widening the range
    assert altair_private.problems() == []
    low, high = altair_private.VERIFIED
    installed = altair_private.version()
    assert installed is not None and low <= installed <= high, (
        f"altair {installed} is outside the verified {low}..{high}: run these tests and the "
        "widget tests on it, then widen VERIFIED"
    )
    assert altair_private.private_selections()
    assert altair_private.private_updates()


@pytest.fixture(params=["private", "public"])
def path(request, monkeypatch):
    if request.param == "public":
        monkeypatch.setattr(altair_private, "private_selections", lambda: False)
    return request.param


def test_a_brush_reaches_the_timeline_on_either_path_and_after_the_chart_changes(history, path):
    view = cl.timeline(history)
    brush(view.chart, {"event_time": [ms(5), ms(22)], "aggregate": ["parcel/a"]})
    assert view.selected["name"].to_list() == ["receivedAtDepot", "loadedOntoTruck"]
    brush(view.chart, {})
    assert view.selected.height == 0
    view.type_picker.value = "parcel"  # a filter replaces the chart (and its `selections`)
    brush(view.chart, {"event_time": [ms(12), ms(18)], "aggregate": ["b"]})  # one type: ids
    assert view.selected["aggregate_id"].to_list() == ["b"]


def test_offline_charts_use_the_bundle_on_this_altair():
    from concursus_lab.plot.offline import enable_offline

    enable_offline()
    assert altair_private.offline_enabled()
    script = altair_private.offline_script()
    assert script is not None and script != altair_private.widget_script()
