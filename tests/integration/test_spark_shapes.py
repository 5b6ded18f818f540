"""Every state shape that works locally comes back from Spark as the local frame, or is refused.

A reducer's state becomes columns by one rule (``timetravel/state_columns.py``): a dataclass's
fields, one List column for tuples or lists of one length, a Struct for dicts, a plain column
for a value (an Enum member, a number), an Object column for anything polars has no type for.
On Spark each bucket of aggregates makes its own columns, the driver joins them, and the
Spark DataFrame (``.frame``) must hold them in types Spark has: each case here checks both
``.to_polars()`` (exactly the local frame) and ``.frame`` (counted and collected by Spark).
States of different kinds (a dataclass here, a dict there) are one Object column of Python
objects locally, which Spark cannot carry: they are refused, naming what was found.
"""

from __future__ import annotations

import dataclasses
import enum

import polars as pl
import pytest

import concursus_lab as cl
import concursus_lab.spark as cls
from concursus_lab.exceptions import SchemaError
from concursus_lab.sample import (
    Delivered,
    DeliveryFailed,
    LoadedOntoTruck,
    ReceivedAtDepot,
    parcel_state,
    parcel_types,
)

pytestmark = [
    pytest.mark.spark,
    pytest.mark.slow,
    pytest.mark.timeout(300),
    pytest.mark.filterwarnings("ignore:distutils Version classes:DeprecationWarning"),
]


class Phase(enum.Enum):
    WAITING = "waiting"
    MOVING = "moving"
    DONE = "done"


def phase(state, event):
    """An Enum member as the state."""
    match event:
        case LoadedOntoTruck():
            return Phase.MOVING
        case Delivered():
            return Phase.DONE
    return Phase.WAITING


def pair(state, event):
    """A tuple of a name and a count (polars: one List column of strings)."""
    count = 0 if state is None else int(state[1])
    return (type(event).__name__, count + 1)


def listed(state, event):
    """A list of the trucks a parcel was loaded onto, None before the first."""
    trucks = [] if state is None else list(state)
    if isinstance(event, LoadedOntoTruck):
        trucks.append(event.truckId)
    return trucks


def keyed(state, event):
    """A dict whose keys, and their order, depend on the parcel's history."""
    state = dict(state or {})
    match event:
        case ReceivedAtDepot(depotId=depot):
            state["depot"] = depot
        case LoadedOntoTruck(truckId=truck):
            state["truck"] = {"id": truck, "loads": state.get("truck", {}).get("loads", 0) + 1}
        case DeliveryFailed():
            state["failures"] = state.get("failures", 0) + 1
        case Delivered(destinationId=destination):
            state["destination"] = destination
    return state


def rotated(state, event):
    """A dict whose keys come in an order that differs from parcel to parcel."""
    names = ["depot", "truck", "events"]
    turn = int(event.aggregate_id[-1], 16) % 3
    state = dict(state or {})
    state["events"] = state.get("events", 0) + 1
    state.setdefault("depot", getattr(event, "depotId", None))
    state.setdefault("truck", getattr(event, "truckId", None))
    return {name: state[name] for name in names[turn:] + names[:turn]}


@dataclasses.dataclass(frozen=True)
class Seen:
    events: int


def mixed(state, event):
    """A dataclass for some parcels, a dict for the others: no one column type fits."""
    if event.aggregate_id[-1] in "02468AC":
        return {"events": 1}
    return Seen(1)


SHAPES = {"enum": phase, "tuple": pair, "list": listed, "dict": keyed, "dict_order": rotated}


@pytest.fixture(scope="module")
def spark():
    session = cls.session("local[2]", cassandra=None, memory="1g")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def history():
    return pl.concat([cl.sample.fixture("parcels"), cl.sample.parcels(80, seed=5)])


@pytest.fixture(scope="module")
def events(spark, history):
    frame = cls.from_polars(history, spark)
    frame.cache()
    yield frame
    frame.unpersist()


def _same(got: pl.DataFrame, expected: pl.DataFrame, what: str) -> None:
    assert got.schema == expected.schema, f"{what}: {got.schema} != {expected.schema}"
    assert got.equals(expected), f"{what}:\n{got}\n!=\n{expected}"


@pytest.mark.parametrize("shape", list(SHAPES))
def test_a_state_of_each_shape_comes_back_as_the_local_frame(events, history, shape):
    reducer = SHAPES[shape]
    expected = cl.state_at(history, reducer, types=parcel_types).frame
    assert expected.height > 40 and expected.schema["state"] != pl.Object
    got = cls.state_at(events, reducer, types=parcel_types)
    _same(got.to_polars(), expected, f"{shape} states")
    assert got.frame.count() == expected.height
    carried = cls.to_polars(got.frame).sort("aggregate_id")
    assert carried.columns == expected.columns
    assert carried.height == expected.height


@pytest.mark.parametrize("shape", list(SHAPES))
def test_a_fold_of_each_shape_comes_back_as_the_local_view(events, history, shape):
    fold = cl.fold(SHAPES[shape], types=parcel_types, key="aggregate_id")
    expected = cl.project(history, fold)
    got = cls.project(events, fold)
    _same(got.to_polars(), expected, f"a fold of {shape} states")
    assert got.frame.count() == expected.height


def test_dict_states_are_one_struct_with_sorted_keys(history):
    """The rule that makes buckets agree: keys in name order at every depth, whatever
    order the reducer wrote them in and whichever states come first."""
    frame = cl.state_at(history, keyed, types=parcel_types).frame
    state = frame.schema["state"]
    assert [f.name for f in state.fields] == ["depot", "destination", "failures", "truck"]
    truck = next(f.dtype for f in state.fields if f.name == "truck")
    assert [f.name for f in truck.fields] == ["id", "loads"]


@pytest.mark.parametrize(
    ("buckets", "aggregates", "found"),
    [
        (1, None, "Seen, dict"),  # in one bucket: a column of Python objects
        (8, None, "Seen, dict|a `state` of dicts; fields events"),
        (64, ["parcel-0000001", "parcel-0000002"], "a `state` of dicts; fields events"),  # apart
    ],
)
def test_states_of_different_kinds_are_refused_with_what_was_found(
    spark, history, buckets, aggregates, found
):
    if aggregates:
        history = history.filter(pl.col("aggregate_id").is_in(aggregates))
        assert history["aggregate_id"].n_unique() == 2
    local = cl.state_at(history, mixed, types=parcel_types).frame
    assert local.schema["state"] == pl.Object  # locally: Python objects
    events = cls.from_polars(history, spark)
    pattern = rf"(?s)(states|view).*({found}).*Spark cannot carry.*states of one class"
    with pytest.raises(SchemaError, match=pattern):
        cls.state_at(events, mixed, types=parcel_types, buckets=buckets)
    fold = cl.fold(mixed, types=parcel_types, key="aggregate_id")
    with pytest.raises(SchemaError, match=pattern):
        cls.project(events, fold, buckets=buckets)


@pytest.mark.parametrize("by", [None, "stream_id"])
def test_lateness_of_no_events_is_the_local_answer(spark, by):
    nothing = cl.sample.fixture("messy").clear()
    expected = cl.lateness(nothing, by=by)
    _same(cls.lateness(cls.from_polars(nothing, spark), by=by).to_polars(), expected, "lateness")


def test_the_sample_reducer_still_gives_its_fields(events, history):
    expected = cl.state_at(history, parcel_state, types=parcel_types).frame
    _same(cls.state_at(events, parcel_state, types=parcel_types).to_polars(), expected, "parcels")
