"""The explorer's fast slider: answers from one walked replay, and a chart drawn once.

Moving the ``at`` slider takes the state and the marks from the replay walked once per
``known_at`` (``widgets/explorer/cuts.py``) and moves the chart's Vega parameters
(``widgets/explorer/chart.py``). Every cut of every aggregate here is checked against
``cl.state_of`` and ``cl.history`` asked afresh, and the chart is drawn by Vega itself
(vl-convert) to check that the colours it gives are the statuses the table shows.
"""

from __future__ import annotations

import copy
import re
import warnings

import polars as pl
import pytest

import concursus_lab as cl
from concursus_lab.sample import parcel_state, parcel_types
from concursus_lab.widgets.explorer import STATUS_LABELS
from concursus_lab.widgets.explorer.cuts import Cuts
from tests.contract import event, frame

RECEIVED = {"name": "receivedAtDepot", "characteristics": 1}
LOADED = {"name": "loadedOntoTruck", "parameters": '{"truckId":"LEW-2"}'}
DELIVERED = {"name": "delivered", "parameters": '{"destinationId":"d1"}', "characteristics": 2}


def hard_cases() -> pl.DataFrame:
    """Aggregates whose cuts are not all prefixes of their replay, and duplicates that win
    or lose with ``known_at``."""
    return frame(
        # a receipt logged twice, the later copy an hour late; loaded twice (redelivered)
        event("p1", 10, 11, **RECEIVED),
        event("p1", 20, 21, **LOADED),
        event("p1", 20, 3_600, **LOADED),
        event("p1", 30, 31, **DELIVERED),
        # delivered (terminal) before a later load: cuts between them are not prefixes
        event("p2", 10, 11, **RECEIVED),
        event("p2", 20, 25, **DELIVERED),
        event("p2", 30, 31, **LOADED),
        # created twice, the second earlier in processing time; a load before any receipt
        event("p3", 5, 50, **LOADED),
        event("p3", 10, 40, **RECEIVED),
        event("p3", 15, 12, **RECEIVED),
        event("p3", 25, 26, **LOADED),
        # a load whose later copy does not decode: it wins, until it is not known yet
        event("p4", 10, 11, **RECEIVED),
        event("p4", 20, 21, **LOADED),
        event("p4", 20, 50, name="loadedOntoTruck", parameters='{"truck":1}'),
    )


accounts = cl.EventTypes("account")


@accounts.initial
class Opened:
    owner: str


@accounts.event
class Deposited:
    amount: int


@accounts.terminal
class Closed: ...


def balance(state, event):
    if isinstance(event, Opened):
        return {"owner": event.owner, "balance": 0, "open": True}
    if isinstance(event, Deposited):
        return {**state, "balance": state["balance"] + event.amount}
    return {**state, "open": False}


def account_cases() -> pl.DataFrame:
    """Creation rules at work: deposits before the opening is known or happened (skipped
    where no state exists), an account opened twice, a close before later deposits."""
    opened = {"aggregate_type": "account", "name": "opened", "parameters": '{"owner":"ann"}'}
    deposit = {"aggregate_type": "account", "name": "deposited", "parameters": '{"amount":5}'}
    closed = {"aggregate_type": "account", "name": "closed", "parameters": "{}"}
    return frame(
        event("a1", 10, 60, **opened),  # opened late in both times: deposits come first
        event("a1", 5, 6, **deposit),
        event("a1", 15, 16, **deposit),
        event("a2", 10, 11, **opened),
        event("a2", 12, 13, **deposit),
        event("a2", 20, 21, **opened),  # opened again: skipped
        event("a2", 22, 23, **closed),
        event("a2", 30, 31, **deposit),
        event("a2", 30, 90, **deposit),  # the same deposit again, late
    )


def every_cut(events: pl.DataFrame, aggregate_id: str, reducer=parcel_state, types=parcel_types):
    """The explorer at every (at, known_at) stop, beside cl.state_of and cl.history."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", cl.exceptions.ConflictingDeliveries)
        view = cl.explore(events, reducer, types=types, aggregate_id=aggregate_id)
        for _, known_at in view.known_at_slider.options:
            view.known_at_slider.value = known_at
            for _, at in view.at_slider.options:
                view.at_slider.value = at
                options = {"at": at, "known_at": known_at, "types": types}
                marked = cl.history(events, aggregate_id, **options)
                labelled = marked.with_columns(pl.col("status").replace_strict(STATUS_LABELS))
                try:
                    state = cl.state_of(events, reducer, aggregate_id=aggregate_id, **options)
                except cl.exceptions.ReducerError:
                    state = None
                yield view, state, labelled


@pytest.mark.parametrize("aggregate_id", ["p1", "p2", "p3", "p4"])
def test_every_cut_answers_as_state_of_and_history_do(aggregate_id):
    events = hard_cases()
    for view, state, marked in every_cut(events, aggregate_id):
        assert view.state == state, (view.at, view.known_at)
        assert view.history.equals(marked), (view.at, view.known_at)


@pytest.mark.parametrize("aggregate_id", ["a1", "a2"])
def test_every_cut_follows_the_creation_rules_as_state_of_does(aggregate_id):
    events = account_cases()
    folded = 0
    for view, state, marked in every_cut(events, aggregate_id, balance, accounts):
        assert view.state == state, (view.at, view.known_at)
        assert view.history.equals(marked), (view.at, view.known_at)
        folded += view._cuts.folded
    assert folded > 0  # some cuts were folded on from a keyframe, not read off the walk


def test_the_sample_and_a_reducer_that_raises_answer_the_same():
    messy = cl.sample.fixture("messy")
    for aggregate_id in ("parcel-A", "parcel-B", "parcel-D"):
        for view, state, marked in every_cut(messy, aggregate_id):
            assert view.state == state and view.history.equals(marked)

    def fragile(state, event):
        if type(event).__name__ == "DeliveryFailed":
            raise ValueError("drivers never fail")
        return parcel_state(state, event)

    raised = 0
    for view, state, marked in every_cut(messy, "parcel-D", fragile):
        assert view.state == state and view.history.equals(marked)
        raised += "drivers never fail" in view.message.value
    assert raised > 0  # the cuts that hold the failure say so, as cl.state_of does


def test_a_cut_folds_on_from_its_keyframe_only_what_causal_order_puts_after_it():
    events = hard_cases()
    p2 = events.filter(pl.col("aggregate_id") == "p2")
    cuts = Cuts(
        p2,
        parcel_state,
        types=parcel_types,
        aggregate_id="p2",
        duplicates="last",
        labels=STATUS_LABELS,
    )
    times = sorted(p2["event_timestamp"].to_list())
    us = pl.duration(microseconds=1)
    stops = pl.select(pl.lit(pl.Series(times)) + us).to_series().to_list()
    folded = []
    for at in [times[0], *stops]:
        state, _ = cuts.answer(at, p2["processing_timestamp"].max())
        assert state == cl.state_of(p2, parcel_state, types=parcel_types, aggregate_id="p2", at=at)
        folded.append(cuts.folded)
    # before anything; after the receipt; after delivered (the load at 30 is replayed
    # before it, terminal last: delivered is folded on from the state before the load);
    # after everything
    assert folded == [0, 0, 1, 0]


def vega_statuses(chart) -> list[str]:
    """The status of every point as Vega draws the chart at its parameters now."""
    import vl_convert

    spec = copy.deepcopy(chart.spec)
    for param in spec["params"]:
        param["value"] = getattr(chart.params, param["name"])
    svg = vl_convert.vegalite_to_svg(spec)
    return re.findall(r"; status: ([a-z ]+);", svg)  # the points' labels, in data order


def test_the_chart_is_drawn_once_and_vega_colours_the_cut_as_the_table_says():
    events = hard_cases()
    view = cl.explore(events, parcel_state, types=parcel_types, aggregate_id="p1")
    drawn = view.chart.spec
    assert vega_statuses(view.chart) == view.history["status"].to_list()
    cuts = [(1, 2), (2, 1), (2, 3), (3, 2), (0, 4), (3, 4)]  # (at stop, known_at stop)
    for a, k in cuts:
        view.known_at_slider.value = view.known_at_slider.options[k][1]
        view.at_slider.value = view.at_slider.options[a][1]
        assert view.chart.spec is drawn  # only the parameters moved
        assert vega_statuses(view.chart) == view.history["status"].to_list(), (a, k)
    # known before the late copy of the load: the first copy counts, which only the
    # overrides can say (drawn as a duplicate, with everything known)
    view.known_at_slider.value = view.known_at_slider.options[-2][1]
    view.at_slider.value = view.at_slider.options[-1][1]
    assert view.history["status"].to_list()[1:3] == ["applied", "not known yet"]
    assert view.chart.params.overrides == {"1": "applied"}
    assert vega_statuses(view.chart)[1:3] == ["applied", "not known yet"]


def test_both_sliders_answer_from_the_one_walk():
    events = hard_cases()
    view = cl.explore(events, parcel_state, types=parcel_types, aggregate_id="p1")
    walk = view._cuts
    answered = 0
    for _, known_at in view.known_at_slider.options:
        view.known_at_slider.value = known_at
        for _, at in view.at_slider.options:
            view.at_slider.value = at
            answered += walk.answer(at, known_at) is not None
    assert view._cuts is walk  # never walked again
    assert answered == len(view.known_at_slider.options) * len(view.at_slider.options)
