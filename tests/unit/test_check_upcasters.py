"""concursus_lab.testing.check_upcasters: what each upcaster did to a stored history, and
which events still fail to decode after the chain."""

from __future__ import annotations

import polars as pl
import pytest

import concursus_lab as cl
from concursus_lab import testing
from tests.versions import declare, histories


def test_each_upcaster_s_counts_and_examples_over_the_three_version_history():
    stored, _ = histories(parcels=60, seed=7)
    report = testing.check_upcasters(stored, declare(), examples=2)
    assert report.ok and report.failures.height == 0 and report.errors == ()
    report.assert_ok()
    steps = {r["name"] + " v" + r["version"]: r for r in report.steps.iter_rows(named=True)}
    count = dict(stored.group_by(pl.format("{} v{}", "name", "version")).len().iter_rows())
    v0, v1, split = (
        steps["receivedAtDepot v0"],
        steps["receivedAtDepot v1"],
        steps["transferred v0"],
    )
    assert (v0["starts"], v0["events_in"], v0["events_out"]) == (count["receivedAtDepot v0"],) * 3
    assert v1["starts"] == count["receivedAtDepot v1"]
    assert v1["events_in"] == count["receivedAtDepot v1"] + count["receivedAtDepot v0"]  # a chain
    assert split["events_out"] == 2 * count["transferred v0"]
    n = count["transferred v0"]
    assert split["made"] == f"{n} receivedAtDepot v2, {n} loadedOntoTruck v0"
    assert [r["decoded_after"] for r in steps.values()] == [r["starts"] for r in steps.values()]
    example = report.examples.filter(pl.col("upcaster").str.starts_with("transferred")).row(0)
    before, after = example[2], example[3]
    assert before.startswith('{"toDepot":') and len(after) == 2
    assert after[1] == '{"truckId":' + before.split('"truck":')[1]
    assert report.examples.height == 6  # two per upcaster
    text = report.summary()
    assert text.startswith(f"Upcasters over {stored.height} stored events: 3 upcasters")
    assert '      e.g. {"depot":"D0"} -> {"depotId":"D0"}' in text


def test_events_that_fail_to_decode_after_the_chain_are_named_and_fail_the_assertion():
    stored, _ = histories(parcels=60, seed=7)
    wrong = declare(received_v0={"rename": {"depot": "depotName"}})  # not what v1 calls it
    report = testing.check_upcasters(stored, wrong)
    v0 = stored.filter(name="receivedAtDepot", version="0").height
    assert not report.ok and report.failures.height == v0
    assert report.failures["stored"].struct.field("version").unique().to_list() == ["0"]
    reason = report.failures["reason"][0]
    assert "unexpected parameter 'depotName'" in reason and "after upcasting" in reason
    row = report.steps.filter(name="receivedAtDepot", version="0").row(0, named=True)
    assert (row["decoded_after"], row["failed_after"]) == (0, v0)
    with pytest.raises(AssertionError, match=f"! {v0} x unexpected parameter 'depotName'"):
        report.assert_ok()


def test_an_upcaster_that_raises_is_reported_with_the_event_it_raised_on():
    stored, _ = histories(parcels=20, seed=5)

    def refuse(params: dict) -> dict:
        if params["depot"] == "D3":
            raise ValueError("no such depot")
        return {"depotId": params["depot"]}

    report = testing.check_upcasters(stored, declare(received_v0={"each": refuse}))
    assert not report.ok and len(report.errors) == 1
    error = report.errors[0]
    assert isinstance(error, cl.exceptions.UpcastError) and error.aggregate_id is not None
    assert '"depot":"D3"' in error.event["parameters"]
    assert report.steps["decoded_after"].null_count() == report.steps.height
    assert "! raised: the upcaster receivedAtDepot v0 -> v1" in report.summary()
    assert "no such depot" in report.summary()


def test_types_without_upcasters_and_other_arguments():
    events = cl.sample.parcels(5, seed=1)
    report = testing.check_upcasters(events, [cl.sample.parcel_types])
    assert report.ok and report.steps.height == 0 and report.failures.height == 0
    assert report.events == events.height
    with pytest.raises(cl.exceptions.SchemaError, match="must be an EventTypes"):
        testing.check_upcasters(events, "parcel")


def test_a_split_event_whose_parts_both_fail_counts_once_per_stored_event():
    stored, _ = histories(parcels=40, seed=9)
    both = declare(  # ints, not texts
        transferred={"each": lambda p: [{"depotId": 1, "priority": 1}, {"truckId": 2}]}
    )
    report = testing.check_upcasters(stored, both)
    n = stored.filter(name="transferred").height
    assert report.failures.height == 2 * n
    assert report.failures["stored"].struct.field("part").sort().to_list() == [0] * n + [1] * n
    row = report.steps.filter(name="transferred").row(0, named=True)
    assert (row["starts"], row["decoded_after"], row["failed_after"]) == (n, 0, n)
