"""cl.threads: events of different aggregates linked by a shared parameter value."""

from __future__ import annotations

import polars as pl
import pytest

import concursus_lab as cl
from concursus_lab.exceptions import SchemaError
from tests.contract import event, frame


@pytest.fixture(scope="module")
def messy() -> pl.DataFrame:
    return cl.sample.fixture("messy")


def test_each_event_follows_its_aggregate_onto_the_truck_it_last_named(messy):
    linked = cl.threads(messy, via="truckId")
    assert linked.columns == [*messy.columns, "thread"]
    by_thread = {
        thread: rows.select("aggregate_id", "name").rows()
        for (thread,), rows in linked.group_by("thread", maintain_order=True)
    }
    assert by_thread == {
        "CAM-1": [
            ("parcel-C", "loadedOntoTruck"),
            ("parcel-C", "delivered"),
            ("parcel-C", "delivered"),
        ],  # a repeated delivery stays a repeat
        "CRO-4": [
            ("parcel-D", "loadedOntoTruck"),
            ("parcel-D", "loadedOntoTruck"),
            ("parcel-D", "deliveryFailed"),
        ],
        "HAC-2": [("parcel-B", "loadedOntoTruck"), ("parcel-B", "deliveryFailed")],
        "HAC-3": [("parcel-B", "loadedOntoTruck"), ("parcel-B", "delivered")],
        "LEW-1": [("parcel-A", "loadedOntoTruck"), ("parcel-A", "delivered")],
    }
    # receipts come before any truck: in no thread
    assert linked.filter(pl.col("name") == "receivedAtDepot").height == 0


def test_span_aggregate_puts_whole_histories_in_every_thread_they_named(messy):
    linked = cl.threads(messy, via="truckId", span="aggregate")
    counts = dict(linked.group_by("thread").len().rows())
    assert counts == {"CAM-1": 4, "CRO-4": 4, "HAC-2": 5, "HAC-3": 5, "LEW-1": 3}
    hac2 = linked.filter(thread="HAC-2")
    assert hac2["event_timestamp"].is_sorted()


def test_threads_by_depot_attribute_deliveries_to_the_receiving_depot(messy):
    depots = cl.threads(messy, via="depotId")
    delivered = depots.filter(pl.col("name") == "delivered").sort("aggregate_id")
    assert delivered.select("aggregate_id", "thread").rows() == [
        ("parcel-A", "Lewisham"),
        ("parcel-B", "Hackney"),
        ("parcel-C", "Camden"),
        ("parcel-C", "Camden"),
    ]


def test_causal_order_decides_what_came_before():
    # the load arrives before the receipt and is stamped earlier: it still names a truck
    events = frame(
        event("p", 20, 21, name="loadedOntoTruck", parameters='{"truckId":"T1"}'),
        event("p", 10, 30, parameters='{"depotId":"Lewisham","truckId":null}'),
        event("p", 30, 31, name="delivered", parameters="{}", characteristics=2),
        event("p", 5, 32, name="loadedOntoTruck", parameters='{"truckId":7}'),
    )
    linked = cl.threads(events, via="truckId")
    # 5 s: truck 7 (a number, as text); 10 s: null is absent, so still 7; 20 s: T1
    assert linked.select("thread", "name").rows() == [
        ("7", "loadedOntoTruck"),
        ("7", "receivedAtDepot"),
        ("T1", "loadedOntoTruck"),
        ("T1", "delivered"),
    ]


def test_as_aggregates_gives_the_timeline_one_row_per_thread(messy):
    trucks = cl.threads(messy, via="truckId", as_aggregates=True)
    assert set(trucks["aggregate_type"]) == {"truckId"}
    assert trucks.filter(aggregate_id="HAC-3")["member_id"].unique().to_list() == ["parcel-B"]
    summary = str(cl.timeline(trucks)).splitlines()[0]
    assert summary.startswith("Timeline: 12 events of 5 aggregates")


def test_the_events_are_not_changed_and_arguments_are_checked(messy):
    before = messy.clone()
    cl.threads(messy, via="truckId", span="aggregate", as_aggregates=True)
    assert messy.equals(before)
    with pytest.raises(SchemaError, match="`via` must be the name of a parameter"):
        cl.threads(messy, via="$.truckId")
    with pytest.raises(SchemaError, match="`span` must be one of"):
        cl.threads(messy, via="truckId", span="all")
    with pytest.raises(SchemaError, match="already has a `thread` column"):
        cl.threads(cl.threads(messy, via="truckId"), via="depotId")
    assert cl.threads(messy, via="nothing").height == 0
