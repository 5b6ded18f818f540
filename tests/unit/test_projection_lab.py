"""The projection lab driven through its traitlets, in the kernel: no browser."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

import concursus_lab as cl
from concursus_lab.exceptions import SchemaError
from concursus_lab.widgets._projection_lab import MAX_STOPS, thin
from tests.contract import at


def per_name(events: pl.DataFrame) -> pl.DataFrame:
    return events.group_by("name").agg(pl.len().alias("events")).sort("name")


V1 = cl.projection(per_name, duplicates="keep", key="name", name="v1")
V2 = cl.projection(per_name, key="name", name="v2")


@pytest.fixture
def lab():
    return cl.projection_lab(cl.sample.fixture("messy"), {"v1": V1, "v2": V2}, chaos_runs=5)


def test_the_lab_starts_with_everything_known(lab):
    assert lab.at == dt.datetime(2026, 3, 3, 17, 0, 0, 1, tzinfo=dt.UTC)
    assert lab.known_at == dt.datetime(2026, 3, 3, 17, 0, 1, tzinfo=dt.UTC)
    assert lab.views["v1"].rows() == [
        ("delivered", 4),
        ("deliveryFailed", 2),
        ("loadedOntoTruck", 6),
        ("receivedAtDepot", 5),
    ]
    found = lab.diffs["v1 -> v2"]
    assert found.changed.select("name", "events_v1", "events_v2").rows() == [
        ("delivered", 4, 3),
        ("loadedOntoTruck", 6, 5),
    ]
    lines = str(lab).splitlines()
    assert lines[0] == "Projection lab: 2 projections over 17 deliveries"
    assert lines[2] == "v1: 4 rows; v2: 4 rows"
    assert lines[3] == "v1 -> v2: 2 changed (events 2), 0 added, 0 removed, 2 unchanged"
    assert lines[4].startswith("chaos v1: unstable at redelivery 1 of 5: 1 event of 1 aggregate")
    assert lines[5] == "chaos v2: stable in 5 redeliveries"
    assert lab.tabs.titles == ("v1", "v2")
    assert "loadedOntoTruck" in lab._tables["v1"].value
    assert "events_v1" in lab.diff_view.value
    assert "the counterexample as delivered" in lab.chaos_view.value


def test_moving_known_at_recomputes_views_and_diff(lab):
    # at 10:45:01 on 2 March the repeated deliveries had not arrived yet: the views agree
    lab.known_at_slider.value = dt.datetime(2026, 3, 2, 10, 45, 1, tzinfo=dt.UTC)
    assert lab.diffs["v1 -> v2"].equal
    assert dict(lab.views["v1"].rows()) == {
        "delivered": 1,
        "deliveryFailed": 1,
        "loadedOntoTruck": 4,
        "receivedAtDepot": 4,
    }
    assert "known at 2026-03-02 10:45:01 UTC" in str(lab)
    assert "0 changed, 0 added, 0 removed, 4 unchanged" in lab.diff_view.value


def test_moving_at_bounds_event_time(lab):
    lab.at_slider.value = lab.at_slider.options[0][1]  # before the first event
    assert all(view.height == 0 for view in lab.views.values())
    assert str(lab).splitlines()[2] == "v1: 0 rows; v2: 0 rows"
    lab.at_slider.value = at(8 * 3600) + dt.timedelta(microseconds=1)  # parcel-A's receipt
    assert lab.views["v2"].rows() == [("receivedAtDepot", 1)]


def test_folds_and_several_versions_are_compared_to_the_first():
    from concursus_lab.sample.parcels import parcel_types

    count = cl.fold(lambda n, e: n + 1, types=parcel_types, key="truckId", initial=0)
    every = cl.fold(
        lambda n, e: n + 1, types=parcel_types, key="truckId", initial=0, duplicates="keep"
    )
    lab = cl.projection_lab(
        cl.sample.fixture("messy"), {"count": count, "every": every, "again": count}, chaos_runs=0
    )
    assert list(lab.diffs) == ["count -> every", "count -> again"]
    assert lab.diffs["count -> again"].equal
    assert lab.diffs["count -> every"].key == ("truckId",)
    assert lab.verdicts == {}
    assert "chaos" not in str(lab)


def test_long_histories_get_thinned_sliders():
    lab = cl.projection_lab(cl.sample.parcels(300, seed=2), {"v": V2}, chaos_runs=0)
    assert len(lab.at_slider.options) == MAX_STOPS
    assert (
        lab.views["v"]["events"].sum() == cl.sample.parcels(300, seed=2).unique(cl.IDENTITY).height
    )
    days = [dt.datetime(2026, 3, 1, tzinfo=dt.UTC) + dt.timedelta(days=d) for d in range(3)]
    assert thin(days, 10) == days


def test_the_lab_says_what_is_wrong():
    messy = cl.sample.fixture("messy")
    with pytest.raises(SchemaError, match="`projections` must be a dict"):
        cl.projection_lab(messy, [V1, V2])
    with pytest.raises(SchemaError, match="must be a function"):
        cl.projection_lab(messy, {"v1": "per_name"})
    with pytest.raises(SchemaError, match="nothing to project"):
        cl.projection_lab(cl.frame.empty(), {"v1": V1})
    with pytest.raises(SchemaError, match="`chaos_runs` must be an int"):
        cl.projection_lab(messy, {"v1": V1}, chaos_runs=-1)


def test_a_display_hook_never_raises(lab):
    bundle = lab._repr_mimebundle_()
    assert bundle["text/plain"].startswith("Projection lab:")


def test_a_projection_that_fails_at_some_bounds_is_reported_not_raised():
    def fragile(events: pl.DataFrame) -> pl.DataFrame:
        if events.height < 5:
            raise ValueError("too few events")
        return per_name(events)

    lab = cl.projection_lab(cl.sample.fixture("messy"), {"v": fragile}, chaos_runs=0)
    lab.known_at_slider.value = lab.known_at_slider.options[2][1]
    assert "could not project at these bounds: ProjectionError" in str(lab)
    assert "too few events" in lab.caption.value
    assert lab.views["v"].height == 4  # the last views are kept
    lab.known_at_slider.value = lab.known_at_slider.options[-1][1]
    assert "could not project" not in str(lab)
