"""Upcasters: older versions of events reach every fold as the declared ones (issue 33)."""

from __future__ import annotations

import polars as pl
import pytest

import concursus_lab as cl
from concursus_lab.common.time import to_utc
from concursus_lab.exceptions import SchemaError, UpcastError
from tests.versions import declare, histories, where

CUTS = [
    (None, None),
    ("2026-03-01 09:00", None),
    (None, "2026-03-01 12:00"),
    ("2026-03-01 14:00", "2026-03-01 20:00"),
]


@pytest.fixture(scope="module")
def types():
    return declare()


@pytest.fixture(scope="module")
def written():
    stored, newest = histories()
    assert set(stored["version"]) == {"0", "1", "2"} and "transferred" in set(stored["name"])
    return stored, newest


def _within(frame: pl.DataFrame, at, known_at) -> pl.DataFrame:
    if at is not None:
        frame = frame.filter(pl.col("event_timestamp") < to_utc(at, "at"))
    if known_at is not None:
        frame = frame.filter(pl.col("processing_timestamp") <= to_utc(known_at, "known_at"))
    return frame


@pytest.mark.parametrize(("at", "known_at"), CUTS)
def test_three_versions_and_a_split_fold_to_the_states_of_the_newest(types, written, at, known_at):
    stored, newest = written
    got = cl.state_at(stored, where, types=types, at=at, known_at=known_at)
    expected = cl.state_at(newest, where, types=types, at=at, known_at=known_at)
    assert got.frame.height > 10
    assert got.frame.equals(expected.frame)
    for name in ("applied", "skipped", "duplicate", "undecodable"):
        assert got.counts[name] == expected.counts[name]
    # counts of deliveries count stored rows; a split one adds its second part's event
    within = _within(stored, at, known_at)
    assert got.counts["split"] == within.filter(name="transferred").height > 0
    assert (
        got.counts["upcast"]
        == within.filter(pl.col("version") != "2")
        .filter(pl.col("name") != "loadedOntoTruck", pl.col("name") != "delivered")
        .unique(cl.IDENTITY)
        .height
    )
    assert got.counts["read"] + got.counts["split"] == expected.counts["read"]
    assert (expected.counts["upcast"], expected.counts["split"]) == (0, 0)
    assert "upcast from older versions; splits made" in got.summary()


def test_state_of_and_every_other_way_in_agree(types, written):
    stored, newest = written
    ids = stored["aggregate_id"].unique().sort().to_list()[:8]
    for aggregate_id in ids:
        assert cl.state_of(stored, where, types=types, aggregate_id=aggregate_id) == cl.state_of(
            newest, where, types=types, aggregate_id=aggregate_id
        )
    known = ("2026-03-01 06:00", "2026-03-02")
    got = cl.restatements(stored, where, types=types, known_at=known)
    expected = cl.restatements(newest, where, types=types, known_at=known)
    assert got.height > 0
    assert got.drop("late_events").equals(expected.drop("late_events"))
    events = [(type(e).__name__, e.aggregate_id) for e in types.decode(stored).events]
    assert sorted(events) == sorted(
        (type(e).__name__, e.aggregate_id) for e in types.decode(newest).events
    )


def test_project_latest_and_index_see_the_upcast_events(types, written):
    stored, newest = written

    def received(count, event):
        return count + (type(event).__name__ == "ReceivedAtDepot")

    per_depot = cl.fold(received, types=types, key="depotId", initial=0)
    assert cl.project(stored, per_depot).equals(cl.project(newest, per_depot))
    latest = cl.latest(stored, types=types)
    assert latest.equals(cl.latest(newest, types=types))
    assert {"depotId", "priority", "truckId"} <= set(latest.columns)
    assert "depot" in cl.latest(stored).columns  # as stored, without types
    by_depot = cl.index(stored, "depotId", types=[types], known_at="2026-03-01 12:00")
    assert by_depot.equals(cl.index(newest, "depotId", known_at="2026-03-01 12:00"))


def test_history_and_trace_show_each_event_as_stored_and_as_upcast(types, written):
    stored, _ = written
    split = stored.filter(name="transferred").row(0, named=True)
    pid = split["aggregate_id"]
    rows = cl.history(stored, pid, types=types)
    parts = rows.filter(pl.col("event_timestamp") == split["event_timestamp"])
    assert parts.select("name", "status").rows() == [
        ("receivedAtDepot", "applied"),
        ("loadedOntoTruck", "applied"),
    ]
    assert [s["part"] for s in parts["stored"]] == [0, 1]
    assert {s["name"] for s in parts["stored"]} == {"transferred"}
    assert parts["parameters"].to_list()[1] == '{"truckId":"' + _truck(split) + '"}'
    steps = cl.trace(stored, where, types=types, aggregate_id=pid)
    lines = [step.line() for step in steps if step.stored and step.stored["name"] == "transferred"]
    assert len(lines) == 2
    assert "(upcast from transferred v0)" in lines[0]
    assert "(upcast from transferred v0, part 2)" in lines[1]
    assert steps.state == cl.state_of(stored, where, types=types, aggregate_id=pid)
    assert steps.frame["stored"].null_count() < steps.frame.height


def _truck(row: dict) -> str:
    import json

    return json.loads(row["parameters"])["truck"]


# --------------------------------------------------------------------------- declaration


def _bulbs() -> tuple[cl.EventTypes, type]:
    bulbs = cl.EventTypes("bulb")

    @bulbs.initial(version="3")
    class Made:
        watts: int

    return bulbs, Made


def test_a_gap_in_the_chain_is_refused_where_it_is_declared():
    bulbs, made = _bulbs()
    with pytest.raises(SchemaError, match=r"a gap in the chain: made v1 -> v2 .*made v2, which is"):
        bulbs.upcast(("made", "1"), to=("made", "2"), rename={"w": "watts"})
    assert "versions of 'made' it knows: '3'" in _error(bulbs, ("made", "1"), ("made", "2"))
    bulbs.upcast(("made", "2"), to=made)  # from the newest step back: accepted
    bulbs.upcast(("made", "1"), to=("made", "2"), rename={"w": "watts"})
    assert [u.source for u in bulbs.upcasters] == [("made", "2"), ("made", "1")]


def test_a_cycle_is_refused_and_named():
    bulbs, made = _bulbs()
    bulbs.upcast(("made", "2"), to=made)
    bulbs.upcast(("made", "1"), to=("made", "2"))
    with pytest.raises(SchemaError, match=r"a cycle: made v2 -> made v1 -> made v2"):
        bulbs.upcast(("made", "2"), to=("made", "1"))
    with pytest.raises(SchemaError, match=r"a cycle: made v3 -> made v1 -> made v2 -> made v3"):
        bulbs.upcast(("made", "3"), to=("made", "1"))


def test_two_upcasters_for_one_version_and_other_mistakes_are_refused():
    bulbs, made = _bulbs()
    bulbs.upcast(("made", "2"), to=made)
    with pytest.raises(SchemaError, match=r"two upcasters for made v2: made v2 -> v3 and"):
        bulbs.upcast(("made", "2"), to=made, add={"watts": 60})
    with pytest.raises(SchemaError, match="is declared \\(Made\\): it decodes as it is"):
        bulbs.upcast(("made", "3"), to=("made", "2"))
    with pytest.raises(SchemaError, match="needs a function that makes each part"):
        bulbs.upcast("old", to=[made, ("made", "2")])
    with pytest.raises(SchemaError, match="says how in more than one way"):
        bulbs.upcast("old", to=made, rename={"a": "b"}, each=lambda p: p)
    with pytest.raises(SchemaError, match="not a JSON value"):
        bulbs.upcast("old", to=made, add={"when": object()})
    with pytest.raises(SchemaError, match=r"is upcast .*so no class can also declare it"):

        @bulbs.event(name="made", version="2")
        class Again:
            pass


def _error(types, source, to) -> str:
    with pytest.raises(SchemaError) as caught:
        types.upcast(source, to=to)
    return str(caught.value)


# ------------------------------------------------------------------------------ applying


def _one(name: str, version: str, parameters: str, aggregate_id: str = "b1") -> pl.DataFrame:
    bulbs, made = _bulbs()
    frame = bulbs.encode([made(60, aggregate_id=aggregate_id, event_timestamp="2026-03-01")])
    return frame.with_columns(
        name=pl.lit(name), version=pl.lit(version), parameters=pl.lit(parameters)
    )


def _bulb(state, event):
    return event.watts


def test_an_upcaster_that_raises_names_the_event_and_the_aggregate():
    bulbs, made = _bulbs()

    def watts(p: pl.DataFrame) -> pl.DataFrame:
        if (p["w"] < 0).any():
            raise ValueError("negative watts")
        return p.select(watts="w")

    bulbs.upcast(("made", "2"), to=made, columns=watts)
    events = pl.concat([_one("made", "2", '{"w":40}', "b1"), _one("made", "2", '{"w":-1}', "b9")])
    with pytest.raises(UpcastError) as caught:
        cl.state_at(events, _bulb, types=bulbs)
    message = str(caught.value)
    assert (
        "the upcaster made v2 -> v3 (watts, columnar) raised ValueError: negative watts" in message
    )
    assert "on bulb 'b9''s event made v2 at 2026-03-01 00:00:00 UTC" in message
    assert '{"w":-1}' in message
    assert caught.value.aggregate_id == "b9"
    assert isinstance(caught.value.__cause__, ValueError)


def test_a_per_event_upcaster_that_raises_or_returns_nonsense_is_named():
    bulbs, made = _bulbs()
    bulbs.upcast(("made", "2"), to=made, each=lambda p: {"watts": int(p["w"])})
    with pytest.raises(UpcastError, match=r"raised ValueError.*bulb 'b1''s event made v2"):
        cl.state_at(_one("made", "2", '{"w":"many"}'), _bulb, types=bulbs)
    bulbs, made = _bulbs()
    bulbs.upcast(("made", "2"), to=made, each=lambda p: [p])
    with pytest.raises(UpcastError, match="it must return a dict of the new parameters"):
        cl.state_at(_one("made", "2", '{"watts":1}'), _bulb, types=bulbs)
    bulbs, made = _bulbs()
    bulbs.upcast(("made", "2"), to=made, columns=lambda p: p.head(0))
    with pytest.raises(UpcastError, match="it must return a polars frame of 1 rows"):
        cl.state_at(_one("made", "2", '{"watts":1}'), _bulb, types=bulbs)


def test_a_columnar_upcaster_that_is_not_row_by_row_is_told_so():
    bulbs, made = _bulbs()

    def needs_two(p: pl.DataFrame) -> pl.DataFrame:
        if p.height < 2:
            raise ValueError("too few")
        return p

    bulbs.upcast(("made", "2"), to=made, columns=needs_two)
    events = pl.concat([_one("made", "2", '{"watts":1}', f"b{i}") for i in range(3)])
    cl.state_at(events, _bulb, types=bulbs)  # three at once: fine
    bulbs2, made2 = _bulbs()

    def fails_together(p: pl.DataFrame) -> pl.DataFrame:
        if p.height > 1:
            raise ValueError("together")
        return p

    bulbs2.upcast(("made", "2"), to=made2, columns=fails_together)
    with pytest.raises(UpcastError, match="on none of them alone: a columnar upcaster must work"):
        cl.state_at(events, _bulb, types=bulbs2)


def test_what_does_not_decode_after_upcasting_is_quarantined_saying_so():
    bulbs, made = _bulbs()
    bulbs.upcast(("made", "2"), to=made, rename={"w": "wats"})  # a typo
    result = cl.state_at(_one("made", "2", '{"w":40}'), _bulb, types=bulbs)
    assert result.counts["undecodable"] == 1
    reason = result.undecodable["reason"][0]
    assert reason.startswith("unexpected parameter 'wats' (did you mean 'watts'?)")
    assert reason.endswith("(after upcasting from 'made' v2)")


def test_a_key_whose_kind_varies_is_given_as_one_frame_per_shape_exactly():
    bulbs, made = _bulbs()
    calls = []

    def seen(p: pl.DataFrame) -> pl.DataFrame:
        calls.append((dict(p.schema), p["w"].to_list()))
        return p.select(watts=pl.col("w").cast(pl.Int64) if p["w"].dtype == pl.String else "w")

    bulbs.upcast(("made", "2"), to=made, columns=seen)
    texts = ['{"w":40}', '{"w":"60"}', '{"w":12345678901234567890}', '{"w":7}']
    events = pl.concat([_one("made", "2", t, f"b{i}") for i, t in enumerate(texts)])
    result = cl.state_at(events, _bulb, types=bulbs)
    assert calls == [
        ({"w": pl.Int64}, [40, 7]),
        ({"w": pl.String}, ["60"]),
        ({"w": pl.UInt64}, [12345678901234567890]),  # beyond 64 signed bits, every digit
    ]
    assert result.states == {"b0": 40, "b1": 60, "b2": 12345678901234567890, "b3": 7}


def test_versions_may_be_any_text_and_an_event_may_be_renamed():
    bulbs, made = _bulbs()
    bulbs.upcast(("Made", "17"), to=made, rename={"w": "watts"})  # an Avro writer schema id
    bulbs.upcast(("bulbMade", "0"), to=("Made", "17"))  # the event's older name
    events = pl.concat([_one("bulbMade", "0", '{"w":40}'), _one("Made", "17", '{"w":25}', "b2")])
    assert cl.state_at(events, _bulb, types=bulbs).states == {"b1": 40, "b2": 25}


def test_a_split_event_delivered_twice_is_resolved_before_it_is_split():
    types = declare()
    stored, _ = histories(parcels=5, seed=3)
    split = stored.filter(name="transferred").head(1)
    again = split.with_columns(pl.col("processing_timestamp") + pl.duration(minutes=1))
    changed = split.with_columns(
        pl.col("processing_timestamp") + pl.duration(minutes=2),
        parameters=pl.lit('{"toDepot":"D9","truck":"T9"}'),
    )
    with pytest.warns(cl.exceptions.ConflictingDeliveries):
        result = cl.state_at(pl.concat([stored, again, changed]), where, types=types)
    base = cl.state_at(stored, where, types=types)
    # the last delivery wins (it says D9 and T9): the two before it lost to a different one
    assert result.counts["duplicate"] == base.counts["duplicate"]
    assert result.counts["conflicting"] == base.counts["conflicting"] + 2
    assert result.counts["split"] == base.counts["split"]
    pid = split["aggregate_id"][0]
    history = cl.history(pl.concat([stored, again, changed]), pid, types=types)
    parts = history.filter(pl.col("stored").struct.field("name") == "transferred")
    assert parts["status"].to_list() == ["conflicting"] * 4 + ["applied"] * 2
    assert parts["parameters"].to_list()[-2:] == [
        '{"depotId":"D9","priority":1}',
        '{"truckId":"T9"}',
    ]


def test_without_upcasters_nothing_changes_shape(written):
    stored, _ = written
    plain = cl.history(stored, "p000", types=cl.sample.parcel_types)
    assert "stored" not in plain.columns
    assert "stored" in cl.history(stored, "p000", types=declare()).columns


def test_a_live_fold_refuses_types_with_a_split_naming_it():
    with pytest.raises(cl.exceptions.SchemaError, match="split one event into several") as error:
        cl.live.states(where, types=declare())
    assert "transferred" in str(error.value)
