"""A result's shape never depends on whether it is empty (DESIGN.md).

Each test folds hand-made events of a state class defined here, as a notebook user would,
and compares the columns of a busy answer with those of a quiet one (no events, or a cut
that leaves none). Where neither the reducer's annotation nor ``initial=`` says the state's
shape, a quiet answer warns, naming the reducer and what to do.
"""

from __future__ import annotations

import dataclasses
import typing
import warnings

import polars as pl
import pytest

import concursus_lab as cl
from concursus_lab.exceptions import UnknownStateShape
from tests.unit.test_timetravel import Created, SwitchedOn, bulbs  # the lightbulb types


@dataclasses.dataclass
class Bulb:
    wattage: int
    on: int


class BulbDict(typing.TypedDict):
    wattage: int
    on: int


class PlainBulb:
    wattage: int
    on: int

    def __init__(self, wattage: int, on: int) -> None:
        self.wattage, self.on = wattage, on


def as_dataclass(state, event) -> Bulb:
    if isinstance(event, Created):
        return Bulb(event.wattage, 0)
    return Bulb(state.wattage, state.on + 1)


def as_typed_dict(state, event) -> BulbDict:
    if isinstance(event, Created):
        return {"wattage": event.wattage, "on": 0}
    return {**state, "on": state["on"] + 1}


def as_count(state, event) -> int:
    return 0 if isinstance(event, Created) else state + 1


def as_watts(state, event) -> float:  # whole numbers, as a float column all the same
    return event.wattage if isinstance(event, Created) else state * 2


def as_plain(state, event) -> PlainBulb:
    if isinstance(event, Created):
        return PlainBulb(event.wattage, 0)
    return PlainBulb(state.wattage, state.on + 1)


def unannotated(state, event):
    return as_typed_dict(state, event)


EVENTS = bulbs.encode(
    [
        Created(60, aggregate_id="b1", event_timestamp="2026-03-01 10:00"),
        SwitchedOn(aggregate_id="b1", event_timestamp="2026-03-01 11:00"),
        Created(40, aggregate_id="b2", event_timestamp="2026-03-01 10:30"),
    ]
)
ANNOTATED = [as_dataclass, as_typed_dict, as_count, as_watts, as_plain]


def quiet(function, *args, **kwargs):
    """``function(...)``, failing on any warning: an annotated reducer's quiet answer says
    nothing more than a busy one."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return function(*args, **kwargs)


@pytest.mark.parametrize("reducer", ANNOTATED, ids=lambda r: r.__name__)
def test_state_at_of_no_events_has_the_columns_of_a_busy_answer(reducer):
    busy = quiet(cl.state_at, EVENTS, reducer, types=bulbs).frame
    assert busy.height == 2
    for empty in (
        quiet(cl.state_at, EVENTS.clear(), reducer, types=bulbs).frame,
        quiet(cl.state_at, EVENTS, reducer, types=bulbs, at="2026-03-01 09:00").frame,
        quiet(cl.state_at, EVENTS.lazy(), reducer, types=bulbs, at="2000-01-01").frame,
    ):
        assert empty.height == 0
        assert empty.schema == busy.schema


@pytest.mark.parametrize("reducer", ANNOTATED, ids=lambda r: r.__name__)
def test_project_of_no_events_has_the_columns_of_a_busy_answer(reducer):
    fold = cl.fold(reducer, types=bulbs)
    busy = quiet(cl.project, EVENTS, fold)
    assert busy.height == 2
    empty = quiet(cl.project, EVENTS, fold, at="2026-03-01 09:00")
    assert empty.height == 0 and empty.schema == busy.schema


def test_the_state_types_columns_are_what_a_notebook_user_expects():
    columns = {
        reducer.__name__: dict(cl.state_at(EVENTS, reducer, types=bulbs).frame.schema)
        for reducer in ANNOTATED
    }
    assert columns["as_dataclass"]["wattage"] == pl.Int64
    assert columns["as_typed_dict"]["state"] == pl.Struct({"on": pl.Int64, "wattage": pl.Int64})
    assert columns["as_count"]["state"] == pl.Int64
    assert columns["as_watts"]["state"] == pl.Float64  # the annotation's, not the values'
    assert columns["as_plain"]["state"] == pl.Object
    assert cl.state_at(EVENTS, as_watts, types=bulbs).frame["state"].to_list() == [120.0, 40.0]


def test_initial_says_the_shape_of_an_unannotated_fold():
    def switches(count, event):
        return count + isinstance(event, SwitchedOn)

    fold = cl.fold(switches, types=bulbs, initial=0)
    busy = quiet(cl.project, EVENTS, fold)
    empty = quiet(cl.project, EVENTS.clear(), fold)
    assert busy["state"].to_list() == [1, 0]
    assert empty.height == 0 and empty.schema == busy.schema

    def record(state, event):
        return Bulb(state.wattage, state.on + isinstance(event, SwitchedOn))

    fold = cl.fold(record, types=bulbs, initial=Bulb(0, 0))
    busy = quiet(cl.project, EVENTS, fold)
    assert quiet(cl.project, EVENTS.clear(), fold).schema == busy.schema


def test_a_quiet_answer_whose_shape_nobody_said_warns_naming_the_reducer():
    busy = quiet(cl.state_at, EVENTS, unannotated, types=bulbs)  # the states show it
    assert busy.frame["state"].dtype == pl.Struct({"on": pl.Int64, "wattage": pl.Int64})
    said = r"unannotated.s states.*Annotate unannotated.s return type.*-> MyState"
    with pytest.warns(UnknownStateShape, match=said):
        empty = cl.state_at(EVENTS.clear(), unannotated, types=bulbs)
    assert empty.frame.columns == [
        "aggregate_id",
        "state",
        "events_applied",
        "last_event_timestamp",
    ]
    with pytest.warns(UnknownStateShape, match=r"unannotated.*initial="):
        cl.project(EVENTS.clear(), cl.fold(unannotated, types=bulbs))


def test_buckets_with_no_state_add_no_column(tmp_path):
    """A bucket of a bucketed fold that holds no aggregate has no state to show its fields:
    its placeholder column is not the answer's (it was: a null ``state`` column beside the
    fields)."""

    def dataclass_unannotated(state, event):
        return as_dataclass(state, event)

    whole = cl.state_at(EVENTS, dataclass_unannotated, types=bulbs).frame
    bucketed = cl.state_at(EVENTS.lazy(), dataclass_unannotated, types=bulbs, buckets=8).frame
    assert bucketed.schema == whole.schema
    assert bucketed.equals(whole)
    files = cl.state_at(EVENTS, dataclass_unannotated, types=bulbs, buckets=8, into=tmp_path / "s")
    assert len(files.files) == 8  # a file a bucket, some of them empty
    assert files.frame.equals(whole) and files.scan().collect().schema == whole.schema


# ------------------------------------------------------------ what was left out is said


def broken() -> pl.DataFrame:
    """EVENTS and three that cannot be decoded: two of an unknown type, one of a bad value."""
    switched = EVENTS.filter(pl.col("name") == "switchedOn").with_columns(name=pl.lit("exploded"))
    unknown = [
        switched.with_columns(pl.col("event_timestamp").dt.offset_by(f"{m}m")) for m in (1, 2)
    ]
    bad_value = EVENTS.head(1).with_columns(
        aggregate_id=pl.lit("b3"), parameters=pl.lit('{"wattage":"sixty"}')
    )
    return pl.concat([EVENTS, *unknown, bad_value])


@pytest.mark.parametrize("buckets", [None, 4], ids=["at once", "in buckets"])
def test_state_at_warns_once_of_what_it_could_not_decode(buckets, tmp_path):
    events = broken().lazy() if buckets else broken()
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        result = cl.state_at(events, as_dataclass, types=bulbs, buckets=buckets)
    assert [w.category for w in said] == [cl.exceptions.UndecodableEvents]  # once per call
    assert result.counts["undecodable"] == 3 == result.undecodable.height
    message = str(said[0].message)
    assert "3 lightbulb events could not be decoded" in message
    assert "`.undecodable`" in message and "2 x unknown event type 'exploded'" in message
    assert "strict=True" in message
    assert said[0].filename == __file__  # it points at the caller's line
    with pytest.warns(cl.exceptions.UndecodableEvents, match="3 lightbulb events"):
        cl.state_at(broken(), as_dataclass, types=bulbs, into=tmp_path / "states")
    quiet(cl.state_at, EVENTS, as_dataclass, types=bulbs)  # nothing left out: nothing said


def test_describe_of_no_events_has_a_lateness_profile_of_its_columns():
    busy, empty = cl.describe(EVENTS), cl.describe(EVENTS.clear())
    assert empty.lateness.height == 0  # no profile to show, but its columns
    assert empty.lateness.schema == busy.lateness.schema


@pytest.mark.parametrize("reducer", ANNOTATED, ids=lambda r: r.__name__)
def test_restatements_with_none_have_the_columns_of_some(reducer):
    logged = EVENTS.with_columns(processing_timestamp=pl.col("event_timestamp"))
    some = quiet(
        cl.restatements, logged, reducer, types=bulbs, known_at=("2026-03-01 10:15", "2026-03-02")
    )
    none = quiet(
        cl.restatements, logged, reducer, types=bulbs, known_at=("2026-03-02", "2026-03-03")
    )
    assert some.height == 2 and none.height == 0
    assert none.schema == some.schema


def test_a_state_type_never_cuts_a_value():
    def halves(state, event) -> int:  # annotated int, returns floats: shown as they are
        return 30.5 if isinstance(event, Created) else state + 1

    assert cl.state_at(EVENTS, halves, types=bulbs).frame["state"].to_list() == [31.5, 30.5]


@pytest.mark.parametrize("initial", [[], {}, {"on": None}], ids=repr)
def test_an_initial_that_shows_no_shape_says_so(initial):
    def switches(state, event):
        return [*state, "on"] if isinstance(state, list) else {**state, "on": 1}

    fold = cl.fold(switches, types=bulbs, initial=initial)
    with pytest.warns(UnknownStateShape, match="initial="):
        cl.project(EVENTS.clear(), fold)
