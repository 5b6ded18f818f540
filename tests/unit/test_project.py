"""cl.project, cl.projection and cl.fold: known answers on hand-made histories."""

from __future__ import annotations

import dataclasses
import datetime as dt

import polars as pl
import pytest

import concursus_lab as cl
from concursus_lab.exceptions import DecodeError, ProjectionError, ReducerError, SchemaError
from concursus_lab.sample.parcels import (
    Delivered,
    DeliveryFailed,
    LoadedOntoTruck,
    ReceivedAtDepot,
    parcel_state,
    parcel_types,
)
from tests.contract import at, event, frame


def seen_by(function):
    """A projection that records the frame it was given."""
    given: list[pl.DataFrame] = []

    def recording(events: pl.DataFrame) -> pl.DataFrame:
        given.append(events)
        return function(events)

    return recording, given


def count(events: pl.DataFrame) -> pl.DataFrame:
    return events.select(pl.len().alias("events"))


@pytest.fixture(scope="module")
def history() -> pl.DataFrame:
    """Two parcels; p1's load delivered twice with different payloads, p2's receipt late."""
    return frame(
        event("p1", 10, 11),
        event("p1", 20, 21, name="loadedOntoTruck", parameters='{"truckId":"T1"}'),
        event("p2", 15, 500),  # arrives late
        event("p1", 20, 40, name="loadedOntoTruck", parameters='{"truckId":"T2"}'),
        event(
            "p1",
            30,
            31,
            name="delivered",
            parameters='{"destinationId":"d"}',
            characteristics=2,
            stream_id="driver-app",
        ),
    )


# ------------------------------------------------------------------- plain functions


def test_a_function_gets_one_delivery_per_event_in_arrival_order(history):
    recording, given = seen_by(count)
    assert cl.project(history, recording).item() == 4
    seen = given[0]
    assert seen["processing_timestamp"].is_sorted()
    assert seen["aggregate_id"].to_list() == ["p1", "p1", "p1", "p2"]
    loads = seen.filter(pl.col("name") == "loadedOntoTruck")
    assert loads["parameters"].to_list() == ['{"truckId":"T2"}']  # the last processed wins


def test_bounds_at_exclusive_known_at_inclusive(history):
    recording, given = seen_by(count)
    assert cl.project(history, recording, at=at(20)).item() == 2  # p1 receipt, p2 receipt
    assert cl.project(history, recording, known_at=at(21)).item() == 2
    assert cl.project(history, recording, known_at=at(20)).item() == 1
    # duplicates are resolved among what was known: at 21 s only the T1 load was
    assert given[1].filter(pl.col("name") == "loadedOntoTruck")["parameters"].item() == (
        '{"truckId":"T1"}'
    )


@pytest.mark.parametrize(
    ("duplicates", "expected"),
    [
        ("last", ['{"truckId":"T2"}']),
        ("first", ['{"truckId":"T1"}']),
        ("keep", ['{"truckId":"T1"}', '{"truckId":"T2"}']),
    ],
)
def test_a_projection_says_which_deliveries_it_wants(history, duplicates, expected):
    loads = cl.projection(
        lambda f: f.filter(pl.col("name") == "loadedOntoTruck").select("parameters"),
        duplicates=duplicates,
    )
    assert cl.project(history, loads)["parameters"].to_list() == expected


def test_projection_as_decorator_with_and_without_arguments(history):
    @cl.projection
    def plain(events: pl.DataFrame) -> pl.DataFrame:
        return count(events)

    @cl.projection(duplicates="keep", key="events", name="every delivery")
    def every(events: pl.DataFrame) -> pl.DataFrame:
        return count(events)

    assert repr(plain) == "Projection('plain', duplicates='last')"
    assert repr(every) == "Projection('every delivery', duplicates='keep', key=['events'])"
    assert plain(history).item() == 4
    assert every(history).item() == 5
    assert every(history, at=at(20)).item() == 2


def test_the_events_are_not_changed(history):
    before = history.clone()

    def rude(events: pl.DataFrame) -> pl.DataFrame:
        return events.with_columns(pl.lit("x").alias("name"))

    cl.project(history, rude)
    cl.project(history, cl.fold(parcel_state, types=parcel_types))
    assert history.equals(before)


def test_lazy_and_pandas_views_are_converted(history):
    assert isinstance(cl.project(history, lambda f: f.lazy().select(pl.len())), pl.DataFrame)
    assert cl.project(history, lambda f: cl.frame.to_pandas(f)).height == 4


def test_a_function_that_raises_names_itself(history):
    def broken(events: pl.DataFrame) -> pl.DataFrame:
        raise KeyError("depot")

    with pytest.raises(ProjectionError, match=r"projection 'broken' raised KeyError.*4 events"):
        cl.project(history, broken)


def test_a_function_must_return_a_frame(history):
    with pytest.raises(ProjectionError, match="returned int, not a view frame"):
        cl.project(history, lambda f: 3)


def test_a_declared_key_must_be_in_the_view(history):
    with pytest.raises(ProjectionError, match=r"declares key=\['depot'\].*\['events'\]"):
        cl.project(history, cl.projection(count, key="depot"))


def test_arguments_are_checked(history):
    with pytest.raises(SchemaError, match=r"`duplicates` must be one of.*'all'"):
        cl.projection(count, duplicates="all")
    with pytest.raises(SchemaError, match="`projection` must be a function"):
        cl.project(history, "count")
    with pytest.raises(SchemaError, match="`at` must be a time"):
        cl.project(history, count, at="noon")
    with pytest.raises(SchemaError, match="`key` must be a column name"):
        cl.projection(count, key=[3])


# ---------------------------------------------------------------------------- folds


@dataclasses.dataclass(frozen=True)
class Trips:
    loads: int = 0
    delivered: int = 0
    failed: int = 0


def trips(state: Trips, event) -> Trips:
    match event:
        case LoadedOntoTruck():
            return dataclasses.replace(state, loads=state.loads + 1)
        case Delivered():
            return dataclasses.replace(state, delivered=state.delivered + 1)
        case DeliveryFailed():
            return dataclasses.replace(state, failed=state.failed + 1)
    return state


def test_a_fold_keyed_by_a_parameter_follows_each_parcel_onto_its_truck():
    messy = cl.sample.fixture("messy")
    view = cl.project(messy, cl.fold(trips, types=parcel_types, key="truckId", initial=Trips()))
    assert view.columns == [
        "truckId",
        "loads",
        "delivered",
        "failed",
        "events_applied",
        "last_event_timestamp",
    ]
    assert view.drop("last_event_timestamp").rows() == [
        ("CAM-1", 1, 1, 0, 2),
        ("CRO-4", 1, 0, 1, 2),
        ("HAC-2", 1, 0, 1, 2),  # parcel-B failed on HAC-2 ...
        ("HAC-3", 1, 1, 0, 2),  # ... and was delivered by HAC-3 the next day
        ("LEW-1", 1, 1, 0, 2),
    ]
    every = cl.fold(trips, types=parcel_types, key="truckId", initial=Trips(), duplicates="keep")
    counted = cl.project(messy, every).select("truckId", "loads", "delivered").rows()
    assert ("CAM-1", 1, 2) in counted and ("CRO-4", 2, 0) in counted


def test_a_fold_by_aggregate_gives_state_at_states():
    events = cl.sample.parcels(300, seed=4)
    bounds = {"at": "2026-03-09", "known_at": "2026-03-09 06:00"}
    view = cl.project(events, cl.fold(parcel_state, types=parcel_types), **bounds)
    expected = cl.state_at(events, parcel_state, types=parcel_types, **bounds).frame
    assert view.equals(expected)


def test_each_keys_events_are_folded_in_event_time_order_across_aggregates():
    events = parcel_types.encode(
        [
            LoadedOntoTruck(
                "T",
                aggregate_id="b",
                event_timestamp="2026-03-02 09:30",
                processing_timestamp="2026-03-02 12:00",
            ),
            LoadedOntoTruck("T", aggregate_id="a", event_timestamp="2026-03-02 09:00"),
            LoadedOntoTruck("T", aggregate_id="c", event_timestamp="2026-03-02 08:00"),
            # a terminal event stamped before the load it follows: causal order keeps it last
            Delivered("d", aggregate_id="c", event_timestamp="2026-03-02 07:00"),
        ]
    )

    def order(state, event):
        return (*state, f"{event.aggregate_id}:{type(event).__name__}")

    fold = cl.fold(order, types=parcel_types, key="truckId", initial=())
    assert cl.project(events, fold)["state"].to_list() == [
        ["c:LoadedOntoTruck", "c:Delivered", "a:LoadedOntoTruck", "b:LoadedOntoTruck"]
    ]
    # events of two aggregates at the same instant: a fixed order, whatever the arrival
    tie = events.with_columns(pl.lit(events["event_timestamp"][1]).alias("event_timestamp"))
    one = cl.project(tie, fold)["state"].to_list()
    two = cl.project(tie.reverse(), fold)["state"].to_list()
    assert one == two


def test_events_before_any_key_are_not_folded_and_later_keys_move_the_aggregate():
    events = parcel_types.encode(
        [
            ReceivedAtDepot("Lewisham", aggregate_id="p", event_timestamp="2026-03-02 08:00"),
            LoadedOntoTruck("T1", aggregate_id="p", event_timestamp="2026-03-02 09:00"),
            DeliveryFailed(aggregate_id="p", event_timestamp="2026-03-02 10:00"),
            LoadedOntoTruck("T2", aggregate_id="p", event_timestamp="2026-03-03 09:00"),
            Delivered("d", aggregate_id="p", event_timestamp="2026-03-03 10:00"),
        ]
    )
    fold = cl.fold(lambda n, e: n + 1, types=parcel_types, key="truckId", initial=0)
    assert cl.project(events, fold).select("truckId", "state").rows() == [("T1", 2), ("T2", 2)]


def test_a_mutable_initial_state_is_copied_for_each_key():
    def tally(state: dict, event) -> dict:
        state["events"] += 1  # mutates: a pure reducer would not, but it must not leak
        return state

    messy = cl.sample.fixture("messy")
    fold = cl.fold(tally, types=parcel_types, key="truckId", initial={"events": 0})
    view = cl.project(messy, fold)
    assert view["state"].struct.field("events").to_list() == [2, 2, 2, 2, 2]


def test_creation_rules_apply_before_keying():
    # as in state_at: initial events replay first, so b1's early switch counts once b1 is
    # installed; the second installation is skipped; b2 is never installed
    bulbs = cl.EventTypes("lightbulb")

    @bulbs.initial
    class Installed:
        room: str

    @bulbs.event
    class SwitchedOn:
        room: str

    events = bulbs.encode(
        [
            SwitchedOn("hall", aggregate_id="b1", event_timestamp="2026-03-01 08:00"),
            Installed("hall", aggregate_id="b1", event_timestamp="2026-03-01 09:00"),
            SwitchedOn("hall", aggregate_id="b1", event_timestamp="2026-03-01 10:00"),
            Installed("hall", aggregate_id="b1", event_timestamp="2026-03-01 11:00"),  # repeated
            SwitchedOn("attic", aggregate_id="b2", event_timestamp="2026-03-01 10:00"),  # never
        ]
    )
    fold = cl.fold(lambda n, e: n + 1, types=bulbs, key="room", initial=0)
    assert cl.project(events, fold).select("room", "state").rows() == [("hall", 3)]
    expected = cl.state_at(events, lambda n, e: (n or 0) + 1, types=bulbs).frame
    assert expected["state"].to_list() == [3]


def test_undecodable_events_are_counted_in_a_warning_or_raise_when_strict():
    messy = cl.sample.fixture("messy")
    typo = messy.head(1).with_columns(pl.lit("recievedAtDepot").alias("name"))
    events = pl.concat([messy, typo])
    fold = cl.fold(trips, types=parcel_types, key="truckId", initial=Trips())
    with pytest.warns(UserWarning, match=r"1 parcel event\(s\) could not be decoded.*recieved"):
        view = cl.project(events, fold)
    assert view.height == 5
    assert fold.undecodable(events)["reason"].str.contains("did you mean").all()
    strict = cl.fold(trips, types=parcel_types, key="truckId", initial=Trips(), strict=True)
    with pytest.raises(DecodeError, match="could not be decoded"):
        cl.project(events, strict)


def test_a_reducer_error_names_the_key_and_the_event():
    def fragile(state, event):
        if isinstance(event, Delivered):
            raise ValueError("no destination")
        return state

    fold = cl.fold(fragile, types=parcel_types, key="truckId", initial=0)
    with pytest.raises(
        ReducerError,
        match=r"ValueError: no destination on event 2 of 2 of "
        r"truckId='CAM-1'.*Delivered",
    ):
        cl.project(cl.sample.fixture("messy"), fold)


def test_a_key_whose_state_is_none_has_no_row_and_clashing_fields_are_renamed():
    @dataclasses.dataclass(frozen=True)
    class Named:
        truckId: str
        events_applied: int

    def named(state, event):
        if event.aggregate_id == "parcel-A":
            return None
        return Named(getattr(event, "truckId", "?"), 0)

    fold = cl.fold(named, types=parcel_types, key="truckId")
    view = cl.project(cl.sample.fixture("messy"), fold)
    assert "LEW-1" not in view["truckId"].to_list()  # parcel-A's truck
    assert view.columns[:3] == ["truckId", "state_truckId", "state_events_applied"]


def test_fold_arguments_are_checked():
    with pytest.raises(
        SchemaError,
        match=r"`key` must be 'aggregate_id' or a parameter.*"
        r"did you mean 'truckId'",
    ):
        cl.fold(trips, types=parcel_types, key="truckID")
    with pytest.raises(SchemaError, match="`types` must be the EventTypes"):
        cl.fold(trips, types="parcel")
    with pytest.raises(SchemaError, match="`reducer` must be a function"):
        cl.fold("trips", types=parcel_types)
    listed = cl.EventTypes("basket")

    @listed.event
    class Filled:
        items: list[str]

    with pytest.raises(SchemaError, match=r"`key` 'items' is declared list\[str\]"):
        cl.fold(trips, types=listed, key="items")


def test_an_empty_history_gives_an_empty_view():
    view = cl.project(cl.frame.empty(), cl.fold(trips, types=parcel_types, key="truckId"))
    assert view.height == 0 and view.columns[0] == "truckId"
    assert cl.project(cl.frame.empty(), count).item() == 0


def test_an_empty_view_has_the_columns_of_a_full_one():
    # a result's shape never depends on whether it is empty: the state class the reducer
    # names (-> Trips) gives the columns when no key has a state yet
    fold = cl.fold(trips, types=parcel_types, key="truckId", initial=Trips())
    messy = cl.sample.fixture("messy")
    full = cl.project(messy, fold)
    before = cl.project(messy, fold, at=messy["event_timestamp"].min())
    empty = cl.project(cl.frame.empty(), fold)
    for view in (before, empty):
        assert view.height == 0
        assert view.schema == full.schema, f"{view.schema} != {full.schema}"


def test_a_fold_is_callable_like_project():
    messy = cl.sample.fixture("messy")
    fold = cl.fold(trips, types=parcel_types, key="truckId", initial=Trips())
    assert fold(messy, at="2026-03-02 12:00").equals(cl.project(messy, fold, at="2026-03-02 12:00"))
    assert repr(fold) == "Fold('trips', types='parcel', key='truckId', duplicates='last')"


def test_keys_of_other_types_keep_their_type():
    shop = cl.EventTypes("shop")

    @shop.event
    class Sold:
        day: dt.date
        till: int
        price: float

    events = shop.encode(
        [
            Sold(dt.date(2026, 3, 1), 2, 1.5, aggregate_id="a", event_timestamp="2026-03-01 10:00"),
            Sold(dt.date(2026, 3, 1), 1, 2.5, aggregate_id="b", event_timestamp="2026-03-01 11:00"),
            Sold(dt.date(2026, 3, 2), 1, 3.0, aggregate_id="a", event_timestamp="2026-03-02 10:00"),
        ]
    )

    def takings(total: float, sale) -> float:
        return total + sale.price

    by_day = cl.project(events, cl.fold(takings, types=shop, key="day", initial=0.0))
    assert by_day.select("day", "state").rows() == [
        (dt.date(2026, 3, 1), 4.0),
        (dt.date(2026, 3, 2), 3.0),
    ]
    by_till = cl.project(events, cl.fold(takings, types=shop, key="till", initial=0.0))
    assert by_till.select("till", "state").rows() == [(1, 5.5), (2, 1.5)]
