"""The widgets driven through their traitlets, in the kernel: no browser.

A brush is what the browser writes into ``JupyterChart._vl_selections``; controls and
sliders are set through their ``value``. The assertions are on the text summary, the tables
and the frames behind them.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

import concursus_lab as cl
from concursus_lab.exceptions import SchemaError
from concursus_lab.widgets._timeline_data import MIN_BINS, Filters, select, summarise
from tests.contract import at, event, frame

UTC = dt.UTC
BASE = dt.datetime(2026, 3, 2, tzinfo=UTC)


def ms(second: int) -> int:
    """Epoch milliseconds of ``second`` after 2026-03-02, as the browser sends them."""
    return int((BASE + dt.timedelta(seconds=second)).timestamp() * 1000)


def brush(chart, value: dict) -> None:
    """Do what the browser does when a rectangle is dragged on the chart."""
    chart._vl_selections = {"brush": {"value": value, "store": []}}


@pytest.fixture(scope="module")
def history() -> pl.DataFrame:
    return frame(
        event("a", 10, 11),
        event("a", 20, 3_600, name="loadedOntoTruck"),  # an hour late
        event("a", 30, 31, name="delivered", characteristics=2),
        event("b", 15, 16),
        event("b", 25, 26, name="loadedOntoTruck"),
        event("c", 40, 41),
        event("d", 50, 51, aggregate_type="truck", name="departed"),
    )


@pytest.fixture(scope="module")
def sample() -> pl.DataFrame:
    return cl.sample.parcels(400, seed=3)


# ------------------------------------------------------------------------ timeline data


def test_every_event_is_drawn_when_few(history):
    data = summarise(history)
    assert data.bin_width is None
    assert data.marks.height == history.height
    assert str(data) == (
        "Timeline: 7 events of 4 aggregates (every aggregate, every event, 21 marks)"
    )
    # two aggregate types: labels say which; rows are ordered by first event time
    assert data.order == ["parcel/a", "parcel/b", "parcel/c", "truck/d"]
    late = data.marks.filter(pl.col("name") == "loadedOntoTruck", pl.col("aggregate") == "parcel/a")
    assert late["lateness"].item() == dt.timedelta(seconds=3_580)


def test_busiest_aggregates_are_kept(history):
    data = summarise(history, max_aggregates=2)
    assert data.order == ["parcel/a", "parcel/b"]  # 3 and 2 events; two types in the frame
    assert data.is_summary
    assert str(data).endswith("(showing the 2 busiest: 5 events, 15 marks)")


def test_ties_are_broken_by_id_so_the_summary_is_deterministic(history):
    single = history.filter(pl.col("aggregate_id").is_in(["c", "d"]))
    assert summarise(single, max_aggregates=1).order == ["parcel/c"]


def test_filters_by_type_name_and_id(history):
    assert summarise(history, Filters(aggregate_type="truck")).order == ["d"]
    named = summarise(history, Filters(name="loadedOntoTruck"))
    assert named.events == 2
    assert named.order == ["a", "b"]  # one aggregate type left: plain ids
    assert summarise(history, Filters(aggregate_id="b")).shown[
        "aggregate_id"
    ].unique().to_list() == ["b"]
    assert str(Filters(name="x", aggregate_id="7")) == "name = 'x', aggregate_id contains '7'"
    empty = summarise(history, Filters(name="nothing"))
    assert str(empty) == "Timeline: 0 events of 0 aggregates (no events pass the filters)"


def test_large_frames_stay_within_the_budget(sample):
    data = summarise(sample, max_aggregates=40, max_events=200)
    assert data.marks.height <= 200
    assert data.marks["events"].sum() == data.shown_events
    # one aggregate with every event: binned, never more rows than the budget
    one = sample.with_columns(aggregate_id=pl.lit("everything"))
    data = summarise(one, max_events=100)
    assert data.bin_width is not None
    assert data.shown_aggregates == 1
    assert data.marks.height <= 100
    assert data.marks["events"].sum() == one.height
    assert str(data).startswith("Timeline: 1,307 events of 1 aggregate (every aggregate in ")


def test_binned_mode_keeps_enough_bins(sample):
    data = summarise(sample, max_aggregates=400, max_events=300)
    names = sample["name"].n_unique()
    assert data.shown_aggregates <= 300 // (names * MIN_BINS)


def test_a_brush_selects_events_by_time_and_aggregate(history):
    data = summarise(history)
    picked = select(data, {"event_time": [ms(12), ms(26)], "aggregate": ["parcel/a", "parcel/b"]})
    assert picked["aggregate_id"].to_list() == ["a", "b", "b"]
    # ISO strings (Dates serialised by the browser) work as well as numbers
    iso = (BASE + dt.timedelta(seconds=12)).isoformat().replace("+00:00", "Z")
    assert select(data, {"event_time": [iso, ms(26)]}).height == 3
    assert select(data, {}).height == 0


# ---------------------------------------------------------------------- timeline widget


def test_timeline_prints_a_summary_and_filters_through_its_controls(sample):
    view = cl.timeline(sample, max_aggregates=10)
    text = str(view)
    assert text.startswith("Timeline: 1,")
    assert "filters: none" in text
    assert "selected: nothing" in text
    bundle = view._repr_mimebundle_()
    assert bundle["text/plain"] == text
    assert "application/vnd.jupyter.widget-view+json" in bundle

    spec_before = view.chart.spec
    view.name_picker.value = "deliveryFailed"
    assert view.data.filters.name == "deliveryFailed"
    assert set(view.data.shown["name"]) == {"deliveryFailed"}
    assert view.chart.spec != spec_before  # the chart was redrawn
    assert "filters: name = 'deliveryFailed'" in str(view)
    view.id_filter.value = "zzz-no-such-id"
    assert str(view).startswith("Timeline: 0 events")


def test_brushing_the_chart_fills_the_table(history):
    view = cl.timeline(history)
    assert view.selected.height == 0
    brush(view.chart, {"event_time": [ms(5), ms(22)], "aggregate": ["parcel/a"]})
    assert view.selected["name"].to_list() == ["receivedAtDepot", "loadedOntoTruck"]
    assert view.selected.columns == history.columns
    text = str(view)
    assert "selected: 2 events of 1 aggregate, event time 2026-03-02 00:00:10 .." in text
    assert "loadedOntoTruck" in view.table.value
    assert "59.7min" in view.table.value  # the late one's lateness
    assert "Selected" in view.caption.value
    brush(view.chart, {})
    assert view.selected.height == 0
    assert view.table.value == ""


def test_a_display_hook_never_raises(history):
    view = cl.timeline(history)
    view._data = None  # break it
    text = view._repr_mimebundle_()["text/plain"]
    assert text.startswith("Timeline: could not summarise (AttributeError")


def test_the_chart_sends_a_bounded_number_of_rows(sample):
    view = cl.timeline(sample, max_events=300)
    datasets = view.chart.spec["datasets"]
    assert len(datasets) == 1  # the three layers share one inline dataset
    assert 0 < len(next(iter(datasets.values()))) <= 300


# ------------------------------------------------------------------------ lateness view


def test_lateness_view_drops_what_the_watermark_drops(sample):
    view = cl.lateness_view(sample, bound=dt.timedelta(minutes=1))
    expected = cl.watermark(sample, dt.timedelta(minutes=1))
    assert view.replay.dropped == expected.dropped > 0
    assert view.dropped.height == expected.dropped
    assert view.dropped["processing_timestamp"].is_sorted()
    assert f"<b>{expected.dropped:,}</b> dropped" in view.caption.value
    text = str(view)
    assert text.splitlines()[0].startswith(f"Lateness view: {sample.height:,} deliveries")
    assert str(expected).splitlines()[1] in text
    assert "dropped, in arrival order" in text


def test_moving_the_bound_slider_updates_counts_chart_and_table(sample):
    view = cl.lateness_view(sample, bound=dt.timedelta(seconds=10))
    many = view.replay.dropped
    spec = view.chart.spec
    view.bound_slider.value = dt.timedelta(hours=12)
    assert view.replay.max_out_of_orderness == dt.timedelta(hours=12)
    assert view.replay.dropped < many
    assert view.chart.spec != spec
    assert f"{view.replay.dropped:,}</b> dropped" in view.caption.value


def test_lateness_view_starts_at_the_recommended_bound(sample):
    view = cl.lateness_view(sample, keep=0.9)
    advice = cl.recommend_watermark(sample, keep=0.9)
    assert view.bound_slider.value >= advice.bound
    assert view.replay.on_time >= 0.9 * sample.height


# ----------------------------------------------------------------------------- explorer


@pytest.fixture(scope="module")
def bulbs():
    types = cl.EventTypes("lightbulb")

    @types.initial
    class Created:
        wattage: int

    @types.event
    class SwitchedOn: ...

    def reducer(state, event):
        if isinstance(event, Created):
            return {"wattage": event.wattage, "switched_on": 0}
        return {**state, "switched_on": state["switched_on"] + 1}

    def bulb(aggregate_id, second, processed, name="switchedOn", **options):
        return event(
            aggregate_id,
            second,
            processed,
            name=name,
            aggregate_type="lightbulb",
            parameters=options.pop("parameters", "{}"),
            **options,
        )

    created = {"name": "created", "parameters": '{"wattage":60}', "characteristics": 1}
    again = {"name": "created", "parameters": '{"wattage":100}', "characteristics": 1}
    history = frame(
        bulb("b1", 10, 11, **created),
        bulb("b1", 20, 100),  # logged 80 s late
        bulb("b1", 25, 26, **again),  # created twice: skipped
        bulb("b1", 30, 31),
        bulb("b1", 30, 40),  # the same event again: the later delivery wins
        bulb("b2", 50, 51, **created),
    )
    return history, reducer, types


def test_explorer_starts_with_everything_known(bulbs):
    history, reducer, types = bulbs
    view = cl.explore(history, reducer, types=types, aggregate_id="b1")
    assert view.state == {"wattage": 60, "switched_on": 2}
    assert view.at == at(30) + dt.timedelta(microseconds=1)  # just after the last event
    assert view.known_at == at(100)
    assert view.history.select("name", "status").rows() == [
        ("created", "applied"),  # replay order: initial events first, then by event time
        ("created", "skipped"),
        ("switchedOn", "applied"),
        ("switchedOn", "duplicate"),
        ("switchedOn", "applied"),
    ]
    text = str(view)
    assert text.splitlines()[0] == "Explorer: lightbulb b1, 5 deliveries"
    assert "state: {'wattage': 60, 'switched_on': 2}" in text
    assert "3 applied, 0 not happened yet, 0 not known yet, 1 duplicate, 1 skipped" in text


def test_moving_known_at_hides_what_was_not_logged_yet(bulbs):
    history, reducer, types = bulbs
    view = cl.explore(history, reducer, types=types, aggregate_id="b1")
    drawn, known_before = view.chart.spec, view.chart.params.known_us
    view.known_at_slider.value = at(31)
    assert view.state == {"wattage": 60, "switched_on": 1}
    marked = dict(zip(view.history["processing_timestamp"], view.history["status"], strict=True))
    assert marked[at(100)] == "not known yet"
    assert marked[at(40)] == "not known yet"
    assert marked[at(31)] == "applied"
    assert "not known yet" in view.table.value
    assert "switched_on  1" in view.state_view.value  # the state, one field a line
    assert view.chart.spec is drawn  # drawn once: a move sets the cut's parameters
    assert view.chart.params.known_us == known_before - 69_000_000  # the rule moved 69 s
    # before anything was logged: no state at all
    view.known_at_slider.value = view.known_at_slider.options[0][1]
    assert view.state is None
    assert "state: (no state yet)" in str(view)


def test_moving_at_hides_what_had_not_happened_yet(bulbs):
    history, reducer, types = bulbs
    view = cl.explore(history, reducer, types=types, aggregate_id="b1")
    view.at_slider.value = at(10) + dt.timedelta(microseconds=1)  # just after creation
    assert view.state == {"wattage": 60, "switched_on": 0}
    counts = dict(view.history.group_by("status").len().iter_rows())
    assert counts == {"applied": 1, "not happened yet": 4}
    view.at_slider.value = view.at_slider.options[0][1]  # before the first event
    assert view.state is None


def test_picking_another_aggregate_resets_the_sliders(bulbs):
    history, reducer, types = bulbs
    view = cl.explore(history, reducer, types=types)
    assert view.aggregate_id == "b1"  # the busiest first
    view.aggregate_picker.value = "b2"
    assert view.aggregate_id == "b2"
    assert [v for _, v in view.at_slider.options] == [at(50), at(50) + dt.timedelta(microseconds=1)]
    assert view.state == {"wattage": 60, "switched_on": 0}
    view.aggregate_picker.value = "no-such-bulb"
    assert view.aggregate_id == "b2"
    assert "No lightbulb with id 'no-such-bulb'" in view.message.value


def test_explorer_says_what_is_wrong(bulbs):
    history, reducer, types = bulbs
    with pytest.raises(SchemaError, match="no events of aggregate type 'lightbulb'"):
        cl.explore(history.filter(pl.col("aggregate_id") == "nothing"), reducer, types=types)
    with pytest.raises(SchemaError, match="`aggregate_id` 'b9'"):
        cl.explore(history, reducer, types=types, aggregate_id="b9")
    with pytest.raises(SchemaError, match="EventTypes"):
        cl.explore(history, reducer, types="lightbulb")


def test_a_widget_without_a_text_form_is_refused_when_defined():
    from concursus_lab.widgets._base import SummaryWidget

    with pytest.raises(TypeError, match="must define summary"):

        class Mute(SummaryWidget):  # no summary(): it could not print itself
            pass

    class Talks(SummaryWidget):
        def summary(self) -> str:
            return "says what it shows"

    assert str(Talks([])) == "says what it shows"
