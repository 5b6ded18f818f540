"""cl.trace: hand-worked histories, step by step, and a property that ties it to state_of."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import NamedTuple

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import concursus_lab as cl
from concursus_lab.exceptions import BreakpointError, ReducerError, SchemaError
from concursus_lab.sample import parcel_state, parcel_types
from concursus_lab.timetravel.changes import Change, changes

bulbs = cl.EventTypes("lightbulb")


@bulbs.initial
class Created:
    wattage: int


@bulbs.event
class SwitchedOn: ...


@bulbs.terminal
class Blown: ...


@dataclasses.dataclass(frozen=True)
class Bulb:
    wattage: int
    switches: int = 0
    blown: bool = False


def bulb(state: Bulb | None, event) -> Bulb:
    match event:
        case Created(wattage=w):
            return Bulb(w)
        case SwitchedOn():
            return dataclasses.replace(state, switches=state.switches + 1)
        case Blown():
            return dataclasses.replace(state, blown=True)
    raise TypeError(event)


def t(minute: int) -> str:
    return f"2026-03-01 10:{minute:02d}"


def ev(cls, *args, minute: int, known: int | None = None, stream: str = "", id: str = "b1"):
    return cls(
        *args,
        aggregate_id=id,
        event_timestamp=t(minute),
        processing_timestamp=t(minute if known is None else known),
        stream_id=stream,
    )


def hand_worked() -> pl.DataFrame:
    """b1: a switch before it exists, its creation, a second creation, a switch delivered
    twice, a late switch, a blow that sorts last though it happened first, and b2."""
    return bulbs.encode(
        [
            ev(SwitchedOn, minute=1),  # before the bulb exists: skipped
            ev(Created, 60, minute=2),
            ev(Created, 100, minute=3),  # a second initial event: skipped
            ev(SwitchedOn, minute=4, known=5),
            ev(SwitchedOn, minute=4, known=9),  # the same event again, later: it wins
            ev(Blown, minute=0, known=20),  # terminal: replayed last; logged late
            ev(SwitchedOn, minute=30, known=31),  # happens after `at` below
            ev(Created, 40, minute=2, id="b2"),
        ]
    )


def test_each_step_says_what_became_of_the_delivery_and_what_it_changed():
    steps = cl.trace(hand_worked(), bulb, types=bulbs, aggregate_id="b1")
    rows = [(s.name, s.status, [c.field for c in s.changes]) for s in steps]
    assert rows == [
        ("created", "applied", ["wattage", "switches", "blown"]),
        ("created", "skipped", []),
        ("switchedOn", "applied", ["switches"]),  # minute 1: after creation in causal order
        ("switchedOn", "duplicate", []),
        ("switchedOn", "applied", ["switches"]),
        ("switchedOn", "applied", ["switches"]),
        ("blown", "applied", ["blown"]),
    ]
    assert steps[0].changes[0] == Change("wattage", None, 60)
    assert steps[0].before is None and steps[0].after == Bulb(60)
    assert steps[2].before == Bulb(60) and steps[2].after == Bulb(60, 1)
    assert steps[3].before == steps[3].after == Bulb(60, 1)
    assert steps[3].processing_timestamp < steps[4].processing_timestamp  # the last one won
    assert steps.state == Bulb(60, 3, True)
    assert steps.state == cl.state_of(hand_worked(), bulb, types=bulbs, aggregate_id="b1")
    assert steps.stopped is None and steps.error is None and steps.deliveries == 7


def test_creation_rules_skip_events_before_creation_when_initials_are_declared():
    events = bulbs.encode([ev(SwitchedOn, minute=1), ev(Blown, minute=2)])  # never created
    steps = cl.trace(events, bulb, types=bulbs, aggregate_id="b1")
    assert [s.status for s in steps] == ["skipped", "skipped"]
    assert steps.state is None


def test_without_initial_types_the_reducer_sees_every_event_from_none():
    messy = cl.sample.fixture("messy")
    steps = cl.trace(messy, parcel_state, types=parcel_types, aggregate_id="parcel-B")
    assert [s.name for s in steps][:2] == ["receivedAtDepot", "loadedOntoTruck"]
    assert steps[0].before is None
    assert [c.field for c in steps[2].changes] == ["status"]


def test_duplicates_first_and_keep():
    first = cl.trace(hand_worked(), bulb, types=bulbs, aggregate_id="b1", duplicates="first")
    assert [s.status for s in first][3:5] == ["applied", "duplicate"]
    keep = cl.trace(hand_worked(), bulb, types=bulbs, aggregate_id="b1", duplicates="keep")
    assert [s.status for s in keep][3:5] == ["applied", "applied"]
    assert keep.state.switches == 4


def test_both_axes_mark_what_had_not_happened_and_what_was_not_known():
    steps = cl.trace(hand_worked(), bulb, types=bulbs, aggregate_id="b1", at=t(30), known_at=t(10))
    assert [s.status for s in steps] == [
        "applied",
        "skipped",
        "applied",
        "duplicate",
        "applied",
        "not_known_yet",  # minute 30: also after `at`, but not known is tested first
        "not_known_yet",  # the blow was logged at minute 20
    ]
    by_name = {(s.name, s.event_timestamp.minute): s.status for s in steps}
    assert by_name[("switchedOn", 30)] == "not_known_yet"  # not known is tested first
    assert by_name[("blown", 0)] == "not_known_yet"
    assert steps.state == Bulb(60, 2)
    only_at = cl.trace(hand_worked(), bulb, types=bulbs, aggregate_id="b1", at=t(30))
    assert {(s.name, s.event_timestamp.minute): s.status for s in only_at}[
        ("switchedOn", 30)
    ] == "after_at"
    assert only_at.state == Bulb(60, 2, True)


def test_undecodable_deliveries_carry_their_reason():
    events = pl.concat(
        [
            hand_worked().head(2),
            hand_worked().head(1).with_columns(name=pl.lit("switchedOff")),
        ]
    )
    steps = cl.trace(events, bulb, types=bulbs, aggregate_id="b1")
    bad = [s for s in steps if s.status == "undecodable"]
    assert len(bad) == 1 and "unknown event type 'switchedOff'" in bad[0].reason
    assert "unknown event type 'switchedOff'" in str(steps)


def test_changes_for_every_kind_of_state():
    class Point(NamedTuple):
        x: int
        y: int

    assert changes(Point(1, 2), Point(1, 3)) == (Change("y", 2, 3),)
    assert changes({"a": 1, "b": 2}, {"a": 1, "c": 3}) == (
        Change("c", None, 3),
        Change("b", 2, None),
    )
    assert changes(1, 1) == ()
    assert changes(None, "on") == (Change("state", None, "on"),)
    assert changes(("on", 1), ("off", 1)) == (Change("state", ("on", 1), ("off", 1)),)
    attrs = pytest.importorskip("attrs")

    @attrs.frozen
    class Lamp:
        watts: int
        lit: bool

    assert changes(Lamp(60, False), Lamp(60, True)) == (Change("lit", False, True),)


def test_a_breakpoint_stops_at_the_first_event_after_which_it_holds():
    seen = []

    def when_switched_twice(state, event):
        seen.append(type(event).__name__)
        return state.switches == 2

    steps = cl.trace(
        hand_worked(), bulb, types=bulbs, aggregate_id="b1", stop_when=when_switched_twice
    )
    assert steps.stopped == "breakpoint"
    assert steps.stopped_at.number == 5 and steps.state == Bulb(60, 2)
    assert len(steps) == 5 and steps.deliveries == 7
    assert seen == ["Created", "SwitchedOn", "SwitchedOn"]  # only applied events are asked
    assert "stopped at step 5 by the breakpoint (2 not replayed)" in str(steps)
    whole = cl.trace(hand_worked(), bulb, types=bulbs, aggregate_id="b1")
    assert whole.find(lambda state, event: state.switches == 2).number == 5
    assert whole.find(lambda state, event: isinstance(event, Blown), after=5).number == 7
    assert whole.find(lambda state, event: False) is None


def test_a_breakpoint_that_raises_or_is_not_a_function_is_a_clear_error():
    with pytest.raises(BreakpointError, match=r"raised AttributeError: .* after step 1"):
        cl.trace(
            hand_worked(),
            bulb,
            types=bulbs,
            aggregate_id="b1",
            stop_when=lambda state, event: state.status,
        )
    with pytest.raises(SchemaError, match=r"`stop_when` must be a function .* got 'failed'"):
        cl.trace(hand_worked(), bulb, types=bulbs, aggregate_id="b1", stop_when="failed")
    with pytest.raises(SchemaError, match="`aggregate_id` must be a string, got 7"):
        cl.trace(hand_worked(), bulb, types=bulbs, aggregate_id=7)
    with pytest.raises(SchemaError, match=r"'b3' has no lightbulb .*did you mean 'b2', 'b1'"):
        cl.trace(hand_worked(), bulb, types=bulbs, aggregate_id="b3")
    with pytest.raises(SchemaError, match="`duplicates` must be one of"):
        cl.trace(hand_worked(), bulb, types=bulbs, aggregate_id="b1", duplicates="latest")
    with pytest.raises(SchemaError, match="EventTypes"):
        cl.trace(hand_worked(), bulb, types="lightbulb", aggregate_id="b1")


def test_changed_keeps_the_steps_that_changed_a_field():
    steps = cl.trace(hand_worked(), bulb, types=bulbs, aggregate_id="b1")
    switched = steps.changed("switches")
    assert [s.number for s in switched] == [1, 3, 5, 6]
    assert "4 of them changed 'switches'" in str(switched)
    assert len(steps) == 7  # a new trace; this one is unchanged
    with pytest.raises(SchemaError, match=r"'switchs' is not a field .*did you mean 'switches'"):
        steps.changed("switchs")


def test_a_reducer_that_raises_stops_the_trace_with_the_state_before_and_the_error():
    def fragile(state, event):
        if isinstance(event, Blown):
            raise ValueError("a bulb cannot blow twice")
        return bulb(state, event)

    steps = cl.trace(hand_worked(), fragile, types=bulbs, aggregate_id="b1")
    assert steps.stopped == "error"
    last = steps.stopped_at
    assert last.status == "raised" and last.name == "blown"
    assert last.before == Bulb(60, 3) and steps.state == Bulb(60, 3)
    assert isinstance(steps.error, ReducerError)
    assert isinstance(steps.error.__cause__, ValueError)
    with pytest.raises(ReducerError) as raised:  # the very error state_of raises
        cl.state_of(hand_worked(), fragile, types=bulbs, aggregate_id="b1")
    assert str(steps.error) == str(raised.value)
    text = str(steps)
    assert "stopped at step 7: the reducer raised ValueError: a bulb cannot blow twice" in text
    assert "state before: Bulb(wattage=60, switches=3, blown=False)" in text


def test_a_reducer_that_returns_none_is_named():
    steps = cl.trace(hand_worked(), lambda state, event: None, types=bulbs, aggregate_id="b1")
    assert steps.stopped == "error" and "returned None" in str(steps.error)


def test_printed_a_trace_is_a_short_deterministic_log():
    text = str(cl.trace(hand_worked(), bulb, types=bulbs, aggregate_id="b1", known_at=t(10)))
    lines = text.splitlines()
    assert lines[0] == (
        "Trace of lightbulb 'b1' at any time, as known at 2026-03-01 10:10:00 UTC: "
        "7 deliveries (3 applied, 1 skipped, 1 duplicate, 2 not_known_yet)"
    )
    assert " ".join(lines[1].split()) == (
        "1 applied created 2026-03-01 10:02:00 known 2026-03-01 10:02:00 "
        "wattage: None -> 60, switches: None -> 0, blown: None -> False"
    )
    assert lines[-1] == "state: Bulb(wattage=60, switches=2, blown=False)"


def test_the_frame_holds_every_step():
    frame = cl.trace(hand_worked(), bulb, types=bulbs, aggregate_id="b1").frame
    assert frame.columns[:3] == ["step", "status", "name"]
    assert frame["changed"].to_list()[2] == ["switches"]
    assert frame["changes"].to_list()[2] == [{"field": "switches", "before": "0", "after": "1"}]


def test_compare_shows_where_two_cuts_part_and_the_late_deliveries():
    def known(at):
        return cl.trace(hand_worked(), bulb, types=bulbs, aggregate_id="b1", known_at=at)

    comparison = known(t(10)).compare(known(t(25)))
    assert comparison.parted_at == 7
    assert comparison.differences.select("name", "left", "right").rows() == [
        ("blown", "not_known_yet", "applied")
    ]
    assert comparison.state_changes == (Change("blown", False, True),)
    text = str(comparison)
    assert "The replays part at step 7 (blown at 2026-03-01 10:00:00)" in text
    assert "not known yet -> applied" in text
    same = known(t(25)).compare(known(None))
    assert same.parted_at == 6 and same.differences.height == 1  # minute 30 arrives
    assert same.state_changes[0].field == "switches"


def test_compare_lists_only_deliveries_one_side_counted():
    """Not known yet on one side and after `at` on the other: neither replay counted it."""
    left = cl.trace(hand_worked(), bulb, types=bulbs, aggregate_id="b1", known_at=t(10))
    right = cl.trace(hand_worked(), bulb, types=bulbs, aggregate_id="b1", at=t(25))
    # minute 30, logged at 31 (the blow, terminal, replays after it)
    assert (left[-2].status, right[-2].status) == ("not_known_yet", "after_at")
    comparison = left.compare(right)
    assert comparison.differences.select("name", "left", "right").rows() == [
        ("blown", "not_known_yet", "applied")
    ]
    assert "1 delivery counted differently:" in str(comparison)


def test_compare_duplicates_choices_and_bad_pairs():
    last = cl.trace(hand_worked(), bulb, types=bulbs, aggregate_id="b1")
    keep = cl.trace(hand_worked(), bulb, types=bulbs, aggregate_id="b1", duplicates="keep")
    comparison = last.compare(keep)
    assert comparison.parted_at == 4
    assert comparison.differences["left"].to_list() == ["duplicate"]
    other = cl.trace(hand_worked(), bulb, types=bulbs, aggregate_id="b2")
    with pytest.raises(SchemaError, match="different aggregates"):
        last.compare(other)
    with pytest.raises(SchemaError, match=r"must be a trace"):
        last.compare("b2")
    with pytest.raises(SchemaError, match=r"not ones filtered"):
        last.changed("switches").compare(keep)


# ------------------------------------------------------------------ the property

untyped = cl.EventTypes("lightbulb")
untyped.event(name="created")(type("Made", (), {"__annotations__": {"wattage": int}}))
untyped.event(name="switchedOn")(type("On", (), {}))
untyped.terminal(name="blown")(type("Gone", (), {}))


def count(state, event):
    """Works for both declarations: counts events by class name, and the last wattage."""
    state = dict(state or {})
    name = type(event).__name__
    state[name] = state.get(name, 0) + 1
    if hasattr(event, "wattage"):
        state["wattage"] = event.wattage
    return state


NAMES = ("created", "switchedOn", "blown", "broken")
KINDS = {"created": 1, "switchedOn": 0, "blown": 2, "broken": 0}


@st.composite
def histories(draw):
    n = draw(st.integers(1, 12))
    base = dt.datetime(2026, 3, 1, 10, tzinfo=dt.UTC)
    rows, names = [], {}
    for _ in range(n):
        minute = draw(st.integers(0, 6))  # few distinct instants: repeats are common
        stream = draw(st.sampled_from(["", "s"]))
        # a repeat is the same event delivered again (its payload may differ)
        name = names.setdefault((minute, stream), draw(st.sampled_from(NAMES)))
        wattage = draw(st.sampled_from([40, 60]))
        rows.append(
            {
                "aggregate_type": "lightbulb",
                "aggregate_id": "b1",
                "event_timestamp": base + dt.timedelta(minutes=minute),
                "stream_id": stream,
                "processing_id": None,
                "processing_timestamp": base
                + dt.timedelta(minutes=minute + draw(st.integers(-1, 8))),
                "name": name,
                "version": "0",
                "parameters": f'{{"wattage":{wattage}}}' if name == "created" else "{}",
                "characteristics": KINDS[name],
            }
        )
    events = pl.DataFrame(rows, schema=cl.SCHEMA)
    bound = st.one_of(st.none(), st.integers(0, 14).map(lambda m: base + dt.timedelta(minutes=m)))
    return events, draw(bound), draw(bound), draw(st.sampled_from(["last", "first", "keep"]))


@settings(max_examples=150, deadline=None)
@given(histories(), st.sampled_from([bulbs, untyped]))
def test_every_steps_state_is_state_of_the_deliveries_up_to_it(history, types):
    events, at, known_at, duplicates = history
    reducer = count
    options = {"at": at, "known_at": known_at, "duplicates": duplicates}
    steps = cl.trace(events, reducer, types=types, aggregate_id="b1", **options)
    ordered = cl.history(events, "b1", types=types, **options).drop("status")
    assert len(steps) == ordered.height
    for k, step in enumerate(steps, start=1):
        if step.status in ("duplicate", "conflicting") and duplicates == "last":
            assert step.after == step.before  # the delivery that wins comes later
            continue
        expected = cl.state_of(ordered.head(k), reducer, types=types, aggregate_id="b1", **options)
        assert step.after == expected, (k, step)
    assert steps.state == cl.state_of(events, reducer, types=types, aggregate_id="b1", **options)


def test_a_filtered_trace_keeps_the_outcome_of_the_whole_replay():
    stopped = cl.trace(
        hand_worked(),
        bulb,
        types=bulbs,
        aggregate_id="b1",
        stop_when=lambda state, event: state.switches == 3,
    )
    wattage = stopped.changed("wattage")
    assert [s.number for s in wattage] == [1]
    assert wattage.state == stopped.state == Bulb(60, 3)
    assert wattage.stopped_at.number == 6
    assert "stopped at step 6 by the breakpoint (1 not replayed)" in str(wattage)


def test_in_a_notebook_a_trace_is_a_table_of_its_steps():
    page = cl.trace(hand_worked(), bulb, types=bulbs, aggregate_id="b1")._repr_html_()
    assert page.count("<tr") == 8  # a head and seven steps
    assert "<b>switches</b> 0 → 1" in page
    assert '<tr class="cl-dim"><td>2</td><td>skipped</td>' in page
    assert page.endswith("<p>state: Bulb(wattage=60, switches=3, blown=True)</p>")

    def fragile(state, event):
        if isinstance(event, Blown):
            raise ValueError("no")
        return bulb(state, event)

    page = cl.trace(hand_worked(), fragile, types=bulbs, aggregate_id="b1")._repr_html_()
    assert '<tr class="cl-raised"><td>7</td>' in page
    assert "the reducer raised ValueError: no<br>state before:" in page
