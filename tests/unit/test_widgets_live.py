"""The timeline and the lateness view kept live, driven in the kernel: batches added
(``update``, or a follow in a thread) replace the chart's rows in the browser through
``_py_to_js_updates``; the chart is drawn again once, in its live form, at the first batch,
and never after (but for a change of the lateness view's bound or engine)."""

from __future__ import annotations

import re

import polars as pl

import concursus_lab as cl
from concursus_lab.plot.altair_private import UPDATES
from concursus_lab.widgets._timeline import MARKS, mark_values
from concursus_lab.widgets._timeline_data import summarise


def sent(view, name: str = MARKS) -> list[dict]:
    """The rows the kernel last sent for the chart's dataset ``name``."""
    (update,) = getattr(view.chart, UPDATES)
    assert update["namespace"] == "data" and update["name"] == name
    return update["value"]


def parts(events: pl.DataFrame, n: int) -> list[pl.DataFrame]:
    ordered = events.sort("processing_timestamp")
    size = ordered.height // n + 1
    return [ordered[i : i + size] for i in range(0, ordered.height, size)]


def test_batches_replace_the_marks_and_the_chart_is_drawn_once_in_live_form():
    events = cl.sample.parcels(120, seed=5)
    first, *rest = parts(events, 4)
    view = cl.timeline(first, max_aggregates=15)
    before = view.chart.spec
    view.update(rest[0])
    live = view.chart.spec
    assert live is not before and MARKS in live["datasets"]  # drawn again once, live
    read = pl.concat([first, rest[0]])
    assert view.data.marks.equals(summarise(read, max_aggregates=15).marks)
    for batch in rest[1:]:
        view.update(batch)
        read = pl.concat([read, batch])
        assert view.chart.spec is live  # never drawn again: only its rows are sent
        want = summarise(read, max_aggregates=15)
        assert view.data.marks.equals(want.marks)
        assert sent(view) == mark_values(want)
        assert view.chart.chart.to_dict()["datasets"][MARKS] == mark_values(want)  # as saved
    assert str(view).startswith(f"Timeline: {events.height:,} events of 120 aggregates")


def test_filters_and_the_brush_hold_across_batches():
    events = cl.sample.parcels(60, seed=6)
    first, second = parts(events, 2)
    view = cl.timeline(first.filter(pl.col("name") != "delivered"))
    assert "delivered" not in [value for _, value in view.name_picker.options]
    view.update(first.filter(pl.col("name") == "delivered"))
    assert "delivered" in [value for _, value in view.name_picker.options]  # a new name
    view.name_picker.value = "loadedOntoTruck"
    spec = view.chart.spec
    assert {row["name"] for row in sent(view)} == {"loadedOntoTruck"}  # filtered, not drawn
    view.chart._vl_selections = {"brush": {"value": {}, "store": []}}
    view.update(second)
    assert view.chart.spec is spec
    loads = pl.concat([first, second]).filter(pl.col("name") == "loadedOntoTruck")
    assert view.data.shown_events == min(loads.height, view.data.shown.height)


def test_a_follow_in_a_thread_adds_every_batch():
    events = cl.sample.parcels(80, seed=8)
    first, *rest = parts(events, 5)

    class Growing:  # a followed source: each batch as it "arrives"
        def follow(self, **options):
            assert options == {"idle_timeout": 1.0}
            yield from rest

    view = cl.timeline(first)
    thread = view.follow(Growing(), idle_timeout=1.0)
    thread.join(30)
    assert view.stop(5)
    assert view.data.events == events.height
    assert sent(view) == mark_values(summarise(events))


def test_the_live_chart_draws_its_aggregates_in_rank_order():
    import vl_convert

    events = cl.sample.parcels(40, seed=9)
    first, second = parts(events, 2)
    view = cl.timeline(first, max_aggregates=8)
    view.update(second)
    svg = vl_convert.vegalite_to_svg(view.chart.chart.to_dict())
    labels = re.findall(r"<text[^>]*>(parcel-\d+)</text>", svg)
    assert labels == view.data.order  # the busiest first, as the rank says (not sorted)


def test_the_lateness_view_takes_batches_and_replaces_its_bars():
    from concursus_lab.widgets._lateness_view import BARS, bar_values

    events = cl.sample.parcels(150, seed=12)
    first, *rest = parts(events, 3)
    view = cl.lateness_view(first)
    bound = view.bound_slider.value
    view.update(rest[0])
    live = view.chart.spec
    assert BARS in live["datasets"]
    view.update(rest[1])
    assert view.chart.spec is live  # the bars replaced, the chart not drawn again
    want = cl.watermark(events, bound)
    assert (view.replay.on_time, view.replay.late, view.replay.dropped) == (
        want.on_time,
        want.late,
        want.dropped,
    )
    assert sent(view, BARS) == bar_values(view.replay)
    assert str(view).startswith(f"Lateness view: {events.height:,} deliveries")
    view.bound_slider.value = view.bound_slider.options[0][1]  # a new bound: drawn again
    assert view.chart.spec is not live and BARS in view.chart.spec["datasets"]


def test_without_altairs_private_updates_every_batch_draws_the_chart_again(monkeypatch):
    # the guarded fallback: an altair that moved `_py_to_js_updates` costs a redraw per
    # batch, never a chart that silently stops changing
    from concursus_lab.plot import altair_private
    from concursus_lab.widgets._lateness_view import BARS, bar_values

    monkeypatch.setattr(altair_private, "private_updates", lambda: False)
    events = cl.sample.parcels(120, seed=5)
    first, *rest = parts(events, 4)
    view = cl.timeline(first, max_aggregates=15)
    read = first
    for batch in rest:
        before = view.chart.spec
        view.update(batch)
        read = pl.concat([read, batch])
        assert view.chart.spec is not before  # drawn again, with the batch in it
        want = mark_values(summarise(read, max_aggregates=15))
        assert view.chart.spec["datasets"][MARKS] == want
        assert not getattr(view.chart, UPDATES)  # nothing sent the private way
    lateness = cl.lateness_view(first)
    for batch in rest:
        before = lateness.chart.spec
        lateness.update(batch)
        assert lateness.chart.spec is not before
        assert lateness.chart.spec["datasets"][BARS] == bar_values(lateness.replay)
