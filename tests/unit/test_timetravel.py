"""Time travel: each rule of DESIGN.md's semantics on a hand-made history worked out by hand,
then properties on random messy histories against a plain reference replay."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import polars as pl
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import concursus_lab as cl
from concursus_lab.exceptions import DecodeError, ReducerError, SchemaError
from concursus_lab.sample.parcels import (
    LoadedOntoTruck,
    ReceivedAtDepot,
    parcel_state,
    parcel_types,
)
from concursus_lab.timetravel.history import STATUSES

UTC = dt.UTC
T0 = dt.datetime(2026, 3, 1, tzinfo=UTC)
US = dt.timedelta(microseconds=1)

bulbs = cl.EventTypes("lightbulb")


@bulbs.initial
class Created:
    wattage: int


@bulbs.event
class ScrewedIn:
    location: str


@bulbs.event
class SwitchedOn: ...


@bulbs.event
class SwitchedOff: ...


@bulbs.terminal
class Blown: ...


def minutes(m: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=m)


def ev(cls, minute, *args, known=None, bulb="b1", stream=""):
    """An event at ``minute``, logged at ``known`` (default: the same minute)."""
    return cls(
        *args,
        aggregate_id=bulb,
        event_timestamp=minutes(minute),
        processing_timestamp=minutes(minute if known is None else known),
        stream_id=stream,
    )


def trace(state, event):
    """A reducer that keeps the names (and wattage) of the events it saw, in order."""
    label = type(event).__name__
    if isinstance(event, Created):
        label += f"({event.wattage})"
    return (*(state or ()), label)


def states(result: cl.results.StateAt) -> dict:
    return dict(result.states)


# ------------------------------------------------------------------------ the two axes


def test_at_bounds_event_time_exclusively():
    events = bulbs.encode([ev(Created, 0, 60), ev(SwitchedOn, 10), ev(SwitchedOff, 20)])
    at_20 = cl.state_at(events, trace, types=bulbs, at=minutes(20))
    assert states(at_20) == {"b1": ("Created(60)", "SwitchedOn")}
    assert at_20.counts["after_at"] == 1
    just_after = cl.state_at(events, trace, types=bulbs, at=minutes(20) + US)
    assert states(just_after) == {"b1": ("Created(60)", "SwitchedOn", "SwitchedOff")}
    at_creation = cl.state_at(events, trace, types=bulbs, at=minutes(0))
    assert at_creation.frame.height == 0 and at_creation.counts["after_at"] == 3


def test_known_at_bounds_processing_time_inclusively():
    events = bulbs.encode([ev(Created, 0, 60, known=1), ev(SwitchedOn, 10, known=30)])
    known = cl.state_at(events, trace, types=bulbs, known_at=minutes(30))
    assert states(known) == {"b1": ("Created(60)", "SwitchedOn")}
    before = cl.state_at(events, trace, types=bulbs, known_at=minutes(30) - US)
    assert states(before) == {"b1": ("Created(60)",)}
    assert before.counts["not_known_yet"] == 1


def test_both_axes_at_once():
    # the switch happened before `at` but was only logged later
    events = bulbs.encode([ev(Created, 0, 60), ev(SwitchedOn, 10, known=90)])
    assert states(
        cl.state_at(events, trace, types=bulbs, at=minutes(60), known_at=minutes(60))
    ) == {"b1": ("Created(60)",)}
    assert states(
        cl.state_at(events, trace, types=bulbs, at=minutes(60), known_at=minutes(90))
    ) == {"b1": ("Created(60)", "SwitchedOn")}


# ------------------------------------------------------------------------ causal order


def test_replay_is_initial_then_others_then_terminal_then_time_then_stream():
    events = bulbs.encode(
        [
            ev(Blown, 0),  # terminal: last, though it is the earliest
            ev(ScrewedIn, 5, "hall", stream="b"),
            ev(SwitchedOff, 5, stream="a"),
            ev(SwitchedOn, 5),  # stream "" sorts before "a" and "b"
            ev(SwitchedOn, 4, stream="z"),
            ev(Created, 50, 60),  # initial: first, though it is the latest
        ]
    )
    result = cl.state_at(events, trace, types=bulbs)
    assert states(result) == {
        "b1": ("Created(60)", "SwitchedOn", "SwitchedOn", "SwitchedOff", "ScrewedIn", "Blown")
    }
    assert result.frame["last_event_timestamp"].to_list() == [minutes(50)]


def test_history_lists_events_in_the_same_order():
    events = bulbs.encode(
        [ev(Blown, 0), ev(SwitchedOn, 5, stream="a"), ev(Created, 50, 60), ev(SwitchedOff, 5)]
    )
    replay = cl.history(events, "b1", types=bulbs)
    assert replay["name"].to_list() == ["created", "switchedOff", "switchedOn", "blown"]
    assert set(replay["status"]) == {"applied"}
    untyped = cl.history(events, "b1")  # kinds from the characteristics column
    assert untyped["name"].to_list() == replay["name"].to_list()


# ----------------------------------------------------------------------------- creation


def test_only_an_initial_event_creates_a_state():
    events = bulbs.encode(
        [
            ev(SwitchedOn, 0, bulb="b2"),
            ev(ScrewedIn, 1, "hall", bulb="b2"),
            ev(Created, 0, 60, bulb="b1"),
        ]
    )
    result = cl.state_at(events, trace, types=bulbs)
    assert states(result) == {"b1": ("Created(60)",)}
    assert result.counts["skipped"] == 2 and result.counts["applied"] == 1


def test_events_before_the_initial_one_are_replayed_after_it():
    # causal order puts the initial event first, whatever its time (as Concursus does)
    events = bulbs.encode([ev(SwitchedOn, 0), ev(Created, 10, 60)])
    assert states(cl.state_at(events, trace, types=bulbs)) == {"b1": ("Created(60)", "SwitchedOn")}


def test_further_initial_events_are_skipped():
    events = bulbs.encode([ev(Created, 0, 60), ev(SwitchedOn, 5), ev(Created, 10, 100)])
    result = cl.state_at(events, trace, types=bulbs)
    assert states(result) == {"b1": ("Created(60)", "SwitchedOn")}
    assert result.counts["skipped"] == 1
    earlier = bulbs.encode([ev(Created, 0, 60), ev(Created, -5, 100)])  # the earliest creates
    assert states(cl.state_at(earlier, trace, types=bulbs)) == {"b1": ("Created(100)",)}


def test_without_initial_types_the_reducer_sees_every_event_from_none():
    seen = []

    def reducer(state, event):
        seen.append(state)
        return (state or 0) + 1

    events = parcel_types.encode(
        [
            LoadedOntoTruck("LEW-1", aggregate_id="p1", event_timestamp=minutes(5)),
            ReceivedAtDepot("Lewisham", aggregate_id="p1", event_timestamp=minutes(0)),
        ]
    )
    assert not parcel_types.declares_initial
    result = cl.state_at(events, reducer, types=parcel_types)
    assert states(result) == {"p1": 2} and seen == [None, 1] and result.counts["skipped"] == 0


# --------------------------------------------------------------------------- duplicates


def _overwritten():
    """Created(60) logged at minute 1, then the same identity as Created(100) at minute 5;
    SwitchedOn delivered twice, at minutes 11 and 12."""
    return bulbs.encode(
        [
            ev(Created, 0, 60, known=1),
            ev(Created, 0, 100, known=5),
            ev(SwitchedOn, 10, known=11),
            ev(SwitchedOn, 10, known=12),
        ]
    )


def test_duplicates_last_processed_wins():
    with pytest.warns(cl.exceptions.ConflictingDeliveries, match="Created|created"):
        result = cl.state_at(_overwritten(), trace, types=bulbs)
    assert states(result) == {"b1": ("Created(100)", "SwitchedOn")}
    # the repeated SwitchedOn is a duplicate; Created(60) lost to a Created(100): conflicting
    assert result.duplicates == 1 and result.conflicting == 1


def test_duplicates_first_processed_wins():
    result = cl.state_at(_overwritten(), trace, types=bulbs, duplicates="first")
    assert states(result) == {"b1": ("Created(60)", "SwitchedOn")}


def test_duplicates_kept_are_all_replayed():
    result = cl.state_at(_overwritten(), trace, types=bulbs, duplicates="keep")
    # the second Created is an initial event on an existing state: skipped
    assert states(result) == {"b1": ("Created(60)", "SwitchedOn", "SwitchedOn")}
    assert result.counts["skipped"] == 1 and result.duplicates == 0


def test_duplicates_are_resolved_among_what_was_known():
    result = cl.state_at(_overwritten(), trace, types=bulbs, known_at=minutes(4))
    assert states(result) == {"b1": ("Created(60)",)} and result.duplicates == 0


def test_deliveries_logged_at_the_same_instant_go_by_row_order():
    frame = bulbs.encode([ev(Created, 0, 60, known=1), ev(Created, 0, 100, known=1)])
    assert states(cl.state_at(frame, trace, types=bulbs)) == {"b1": ("Created(100)",)}
    assert states(cl.state_at(frame, trace, types=bulbs, duplicates="first")) == {
        "b1": ("Created(60)",)
    }


# --------------------------------------------------------------------- undecodable rows


def _with_unknown() -> pl.DataFrame:
    events = bulbs.encode([ev(Created, 0, 60), ev(SwitchedOn, 1)])
    odd = events.head(1).with_columns(
        name=pl.lit("exploded"),
        parameters=pl.lit("{}"),
        characteristics=pl.lit(0, pl.Int32),
        event_timestamp=pl.lit(minutes(2)).dt.cast_time_unit("us"),
    )
    bad = events.tail(1).with_columns(
        parameters=pl.lit('{"how":"hard"}'),
        event_timestamp=pl.lit(minutes(3)).dt.cast_time_unit("us"),
    )
    return pl.concat([events, odd, bad])


def test_unknown_types_are_counted_and_returned_not_dropped():
    result = cl.state_at(_with_unknown(), trace, types=bulbs)
    assert states(result) == {"b1": ("Created(60)", "SwitchedOn")}
    assert result.counts["undecodable"] == 2
    assert result.undecodable["reason"].to_list() == [
        "unknown event type 'exploded' version '0'",
        "unexpected parameter 'how' for 'switchedOn'",
    ]
    assert "undecodable: 1 x unknown event type 'exploded' version '0'" in result.summary()
    c = result.counts
    assert c["read"] == sum(c[k] for k in STATUSES) == 4


def test_strict_raises_a_decode_error():
    with pytest.raises(DecodeError, match="2 event"):
        cl.state_at(_with_unknown(), trace, types=bulbs, strict=True)


def test_an_undecodable_initial_event_creates_nothing():
    events = bulbs.encode([ev(Created, 0, 60), ev(SwitchedOn, 1)]).with_columns(
        parameters=pl.when(pl.col("name") == "created")
        .then(pl.lit('{"wattage":"sixty"}'))
        .otherwise(pl.col("parameters"))
    )
    result = cl.state_at(events, trace, types=bulbs)
    assert result.frame.height == 0 and result.counts["skipped"] == 1


def test_other_aggregate_types_are_ignored_and_counted():
    other = parcel_types.encode([ReceivedAtDepot("X", aggregate_id="b1", event_timestamp=T0)])
    result = cl.state_at(pl.concat([bulbs.encode([ev(Created, 0, 60)]), other]), trace, types=bulbs)
    assert states(result) == {"b1": ("Created(60)",)}
    assert result.counts["other_aggregate_types"] == 1
    assert "1 rows of other aggregate types ignored" in result.summary()


# --------------------------------------------------------------------------- reducers


def test_a_raising_reducer_names_the_aggregate_and_the_event():
    def fragile(state, event):
        if isinstance(event, SwitchedOff):
            raise KeyError("no switch")
        return trace(state, event)

    events = bulbs.encode(
        [ev(Created, 0, 60), ev(SwitchedOff, 3, bulb="b1"), ev(Created, 0, 40, bulb="b0")]
    )
    with pytest.raises(ReducerError) as raised:
        cl.state_at(events, fragile, types=bulbs)
    error = raised.value
    assert error.aggregate_id == "b1" and isinstance(error.event, SwitchedOff)
    assert isinstance(error.__cause__, KeyError)
    assert "KeyError: 'no switch' on event 2 of 2 of aggregate 'b1': SwitchedOff(" in str(error)


def test_a_reducer_that_forgets_to_return_is_caught():
    def forgetful(state, event):
        if isinstance(event, Created):
            return {"wattage": event.wattage}
        state["on"] = True  # mutates, returns None

    events = bulbs.encode([ev(Created, 0, 60), ev(SwitchedOn, 3)])
    with pytest.raises(ReducerError, match="returned None for aggregate 'b1'"):
        cl.state_at(events, forgetful, types=bulbs)


def test_misuse_gets_one_clear_message():
    events = bulbs.encode([ev(Created, 0, 60)])
    with pytest.raises(SchemaError, match="must be the EventTypes"):
        cl.state_at(events, trace, types="lightbulb")
    with pytest.raises(SchemaError, match="`reducer` must be a function"):
        cl.state_at(events, "trace", types=bulbs)
    with pytest.raises(SchemaError, match="`duplicates` must be one of"):
        cl.state_at(events, trace, types=bulbs, duplicates="latest")
    with pytest.raises(SchemaError, match="`at` must be a time"):
        cl.state_at(events, trace, types=bulbs, at="yesterday")


# ------------------------------------------------------------------------- the result


@dataclasses.dataclass(frozen=True)
class Bulb:
    wattage: int
    on: bool = False
    aggregate_id: str = ""


def bulb(state: Bulb | None, event) -> Bulb:
    match event:
        case Created(wattage=w):
            return Bulb(w, aggregate_id=event.aggregate_id)
        case SwitchedOn():
            return dataclasses.replace(state, on=True)
    return state


def test_dataclass_states_are_flattened_into_columns():
    events = bulbs.encode([ev(Created, 0, 60), ev(SwitchedOn, 1), ev(Created, 0, 40, bulb="b0")])
    result = cl.state_at(events, bulb, types=bulbs)
    assert result.frame.columns == [
        "aggregate_id",
        "wattage",
        "on",
        "state_aggregate_id",
        "events_applied",
        "last_event_timestamp",
    ]
    assert result.frame.rows() == [
        ("b0", 40, False, "b0", 1, minutes(0)),
        ("b1", 60, True, "b1", 2, minutes(1)),
    ]


def test_other_states_sit_in_one_column():
    events = bulbs.encode([ev(Created, 0, 60), ev(SwitchedOn, 1)])
    result = cl.state_at(events, lambda s, e: {"n": (s or {"n": 0})["n"] + 1}, types=bulbs)
    assert result.frame.columns == [
        "aggregate_id",
        "state",
        "events_applied",
        "last_event_timestamp",
    ]
    assert result.frame["state"].to_list() == [{"n": 2}]


def test_the_result_prints_a_deterministic_summary():
    events = bulbs.encode(
        [
            ev(Created, 0, 60),
            ev(SwitchedOn, 10),
            ev(SwitchedOn, 10, known=20),
            ev(Blown, 30, known=12),
            ev(SwitchedOn, 1, bulb="b2"),
        ]
    )
    result = cl.state_at(events, trace, types=bulbs, at="2026-03-01 00:20", known_at=minutes(15))
    assert result.summary() == (
        "1 lightbulb states at 2026-03-01 00:20:00 UTC, as known at 2026-03-01 00:15:00 UTC\n"
        "5 deliveries: 2 applied, 1 skipped, 0 duplicate, 1 after `at`, 1 not known yet, "
        "0 undecodable"
    )
    assert repr(result).startswith(result.summary() + "\nshape: (1, 4)")
    assert "00:20:00 UTC" in result._repr_html_() and "<table" in result._repr_html_()
    assert len(result) == 1


def test_inputs_are_never_changed():
    events = _with_unknown()
    before = events.clone()
    cl.state_at(events, trace, types=bulbs, at=minutes(2), known_at=minutes(2))
    cl.history(events, "b1", types=bulbs)
    cl.restatements(events, trace, types=bulbs, at=None, known_at=(minutes(0), minutes(9)))
    assert events.equals(before)


# ------------------------------------------------------------ state_of, history, restatements


def test_state_of_one_aggregate():
    events = bulbs.encode([ev(Created, 0, 60), ev(SwitchedOn, 10), ev(Created, 0, 40, bulb="b0")])
    assert cl.state_of(events, trace, types=bulbs, aggregate_id="b1") == (
        "Created(60)",
        "SwitchedOn",
    )
    assert cl.state_of(events, trace, types=bulbs, aggregate_id="b1", at=minutes(0)) is None


def test_an_unknown_id_is_an_error_not_no_state_yet():
    """A typo must not read as "no state yet": state_of, history and trace share one rule."""
    events = bulbs.encode([ev(Created, 0, 60), ev(SwitchedOn, 10), ev(Created, 0, 40, bulb="b0")])
    near = r"'bl' has no lightbulb deliveries in `events` \(2 lightbulb aggregates\); did you mean"
    with pytest.raises(SchemaError, match=near):
        cl.state_of(events, trace, types=bulbs, aggregate_id="bl")
    with pytest.raises(SchemaError, match=near):
        cl.history(events, "bl", types=bulbs)
    with pytest.raises(SchemaError, match=near):
        cl.trace(events, trace, types=bulbs, aggregate_id="bl")
    with pytest.raises(SchemaError, match=r"'nope' has no deliveries .*some that have: 'b0', 'b1'"):
        cl.history(events, "nope")
    with pytest.raises(SchemaError, match=r"'b1' has no parcel deliveries .*\(0 parcel aggr"):
        cl.history(events, "b1", types=parcel_types)  # b1 is a lightbulb
    with pytest.raises(SchemaError, match="`aggregate_id` must be a string, got 1"):
        cl.history(events, 1)
    # known, but nothing before `at` or known by `known_at`: no state yet, not an error
    assert cl.state_of(events, trace, types=bulbs, aggregate_id="b1", known_at=T0 - US) is None
    assert cl.history(events, "b1", at=T0)["status"].to_list() == ["after_at"] * 2


def test_history_tells_what_replay_did_with_each_delivery():
    events = pl.concat(
        [
            bulbs.encode(
                [
                    ev(Created, 0, 60),  # applied
                    ev(Created, 7, 100),  # skipped: a state exists
                    ev(SwitchedOn, 5, known=6),  # duplicate: logged again at minute 9
                    ev(SwitchedOn, 5, known=9),  # applied
                    ev(SwitchedOff, 9, known=40),  # not known yet at minute 30
                    ev(Blown, 20),  # after `at`
                ]
            ),
            _with_unknown().filter(pl.col("name") == "exploded"),  # undecodable, minute 2
        ]
    )
    replay = cl.history(events, "b1", at=minutes(15), known_at=minutes(30), types=bulbs)
    assert replay.select("name", "status").rows() == [
        ("created", "applied"),
        ("created", "skipped"),
        ("exploded", "undecodable"),
        ("switchedOn", "duplicate"),
        ("switchedOn", "applied"),
        ("switchedOff", "not_known_yet"),
        ("blown", "after_at"),
    ]
    assert replay.columns == [*cl.SCHEMA, "status"]
    untyped = cl.history(events, "b1", at=minutes(15), known_at=minutes(30))
    assert untyped["status"].to_list().count("undecodable") == 0  # nothing to decode with


def test_history_needs_types_when_an_id_is_shared():
    shared = pl.concat(
        [
            bulbs.encode([ev(Created, 0, 60, bulb="x")]),
            parcel_types.encode([ReceivedAtDepot("A", aggregate_id="x", event_timestamp=T0)]),
        ]
    )
    with pytest.raises(SchemaError, match="pass `types=`"):
        cl.history(shared, "x")
    assert cl.history(shared, "x", types=parcel_types).height == 1


def test_restatements_show_what_a_late_event_changed():
    events = bulbs.encode(
        [
            ev(Created, 0, 60),
            ev(SwitchedOn, 10, known=100),  # b1: a late switch
            ev(Created, 0, 40, bulb="b2"),
            ev(SwitchedOn, 70, known=100, bulb="b2"),  # after `at`
            ev(Created, 0, 25, bulb="b3"),
            ev(Created, 0, 25, known=100, bulb="b3"),  # a repeat
        ]
    )
    changed = cl.restatements(
        events, trace, types=bulbs, at=minutes(60), known_at=(minutes(30), minutes(120))
    )
    assert changed.columns == ["aggregate_id", "state_before", "state_after", "late_events"]
    assert changed.rows() == [
        (
            "b1",
            ["Created(60)"],
            ["Created(60)", "SwitchedOn"],
            [
                {
                    "name": "switchedOn",
                    "event_timestamp": minutes(10),
                    "processing_timestamp": minutes(100),
                    "stream_id": "",
                }
            ],
        )
    ]


def test_restatements_of_dataclass_states_sit_side_by_side():
    events = bulbs.encode([ev(Created, 0, 60), ev(SwitchedOn, 10, known=100)])
    changed = cl.restatements(
        events, bulb, types=bulbs, at=None, known_at=(minutes(30), minutes(120))
    )
    assert changed.select("wattage_before", "wattage_after", "on_before", "on_after").row(0) == (
        60,
        60,
        False,
        True,
    )
    with pytest.raises(SchemaError, match="P1 <= P2"):
        cl.restatements(events, bulb, types=bulbs, at=None, known_at=(minutes(9), minutes(1)))
    with pytest.raises(SchemaError, match="pair"):
        cl.restatements(events, bulb, types=bulbs, at=None, known_at=minutes(9))


def test_types_of_another_aggregate_type_is_an_error_not_zero_states():
    events = bulbs.encode([ev(Created, 0, 60), ev(Created, 0, 40, bulb="b2")])
    wrong = (
        r"`events` has no parcel events: its aggregate types are 'lightbulb' \(2 rows\); pass "
        "`types=` the EventTypes of one of them"
    )
    with pytest.raises(SchemaError, match=wrong):
        cl.state_at(events, parcel_state, types=parcel_types)
    with pytest.raises(SchemaError, match=wrong):
        cl.restatements(events, parcel_state, types=parcel_types, known_at=(minutes(0), minutes(9)))
    quiet = events.head(0)  # no events at all is a quiet day, not a wrong question
    assert cl.state_at(quiet, parcel_state, types=parcel_types).frame.height == 0
    assert cl.restatements(
        quiet, parcel_state, types=parcel_types, known_at=(minutes(0), minutes(9))
    ).is_empty()


def test_a_quiet_day_has_the_columns_of_a_busy_one():
    """A result's shape never depends on whether it is empty: where no state shows its
    fields, the reducer's state class (its return annotation) does."""
    events = bulbs.encode(
        [ev(Created, 0, 60), ev(SwitchedOn, 10, known=100), ev(Created, 5, 40, bulb="b2", known=99)]
    )
    busy = cl.state_at(events, bulb, types=bulbs)
    quiet = cl.state_at(events, bulb, types=bulbs, at=minutes(0))
    assert quiet.frame.height == 0 and quiet.frame.schema == busy.frame.schema
    assert busy.frame.columns[:4] == ["aggregate_id", "wattage", "on", "state_aggregate_id"]
    late = (minutes(30), minutes(120))
    changed = cl.restatements(events, bulb, types=bulbs, at=None, known_at=late)
    assert changed["aggregate_id"].to_list() == ["b1", "b2"]
    none = cl.restatements(events, bulb, types=bulbs, at=None, known_at=(minutes(0), minutes(1)))
    assert none.height == 0 and none.schema == changed.schema
    new_only = cl.restatements(
        events.filter(pl.col("aggregate_id") == "b2"), bulb, types=bulbs, at=None, known_at=late
    )  # no state before the late delivery: every *_before is null, and typed
    assert new_only.schema == changed.schema
    assert new_only.row(0)[:3] == ("b2", None, 40)
    parcels = cl.sample.parcels(200, seed=7)
    full = cl.state_at(parcels, parcel_state, types=parcel_types)
    before_any = cl.state_at(parcels, parcel_state, types=parcel_types, at="2000-01-01")
    assert before_any.frame.height == 0 and before_any.frame.schema == full.frame.schema


# --------------------------------------------------------------- properties: messy histories

KINDS = [
    (Created, True),
    (ScrewedIn, True),
    (SwitchedOn, False),
    (SwitchedOff, False),
    (Blown, False),
]


@st.composite
def histories(draw) -> pl.DataFrame:
    """Deliveries for 3 bulbs over 12 minutes and two streams: out of order, late, repeated
    (sometimes with other content), every delivery at its own processing instant."""
    n = draw(st.integers(1, 25))
    events = []
    for i in range(n):
        cls, takes = draw(st.sampled_from(KINDS))
        args = ()
        if takes:
            args = (
                (draw(st.integers(1, 3)) * 20,)
                if cls is Created
                else (draw(st.sampled_from(["hall", "attic"])),)
            )
        minute = draw(st.integers(0, 12))
        lag = draw(st.integers(0, 40))
        events.append(
            cls(
                *args,
                aggregate_id=draw(st.sampled_from(["b1", "b2", "b3"])),
                event_timestamp=minutes(minute),
                stream_id=draw(st.sampled_from(["", "s"])),
                processing_timestamp=minutes(minute + lag) + i * US,
            )
        )
    frame = bulbs.encode(events)
    repeats = draw(st.lists(st.integers(0, n - 1), max_size=5))
    if repeats:
        again = frame[repeats].with_columns(
            pl.col("processing_timestamp")
            + pl.duration(minutes=draw(st.integers(0, 30)))
            + pl.int_range(pl.len()).cast(pl.Duration("us"))
            + pl.duration(microseconds=500)
        )
        frame = pl.concat([frame, again])
    return frame


def reference(frame: pl.DataFrame, reducer, types: cl.EventTypes, at, known_at, duplicates):
    """The replay DESIGN.md describes, written the plain way."""
    rows = [
        r
        for r in frame.iter_rows(named=True)
        if (known_at is None or r["processing_timestamp"] <= known_at)
        and (at is None or r["event_timestamp"] < at)
    ]
    if duplicates != "keep":
        chosen: dict = {}
        for index, r in sorted(
            enumerate(rows), key=lambda ir: (ir[1]["processing_timestamp"], ir[0])
        ):
            key = (r["aggregate_id"], r["event_timestamp"], r["stream_id"])
            if duplicates == "last" or key not in chosen:
                chosen[key] = (index, r)
        rows = [r for _, r in sorted(chosen.values(), key=lambda ir: ir[0])]
    by_aggregate: dict = {}
    for index, r in enumerate(rows):
        try:
            cls = types[(r["name"], r["version"])]
        except KeyError:
            continue
        kind = types.event_type(cls).kind
        rank = {"initial": 0, "event": 1, "terminal": 2}[kind]
        event = cls(
            **json.loads(r["parameters"]),
            aggregate_id=r["aggregate_id"],
            event_timestamp=r["event_timestamp"],
            processing_timestamp=r["processing_timestamp"],
            stream_id=r["stream_id"],
        )
        key = (rank, r["event_timestamp"], r["stream_id"], r["processing_timestamp"], index)
        by_aggregate.setdefault(r["aggregate_id"], []).append((key, kind, event))
    out = {}
    for aggregate, items in by_aggregate.items():
        state = None
        for _, kind, event in sorted(items, key=lambda item: item[0]):
            if types.declares_initial and (state is None) != (kind == "initial"):
                continue
            state = reducer(state, event)
        if state is not None:
            out[aggregate] = state
    return out


TIMES = st.none() | st.integers(0, 60).map(minutes)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    frame=histories(),
    at=TIMES,
    known_at=TIMES,
    duplicates=st.sampled_from(["last", "first", "keep"]),
)
def test_state_at_agrees_with_a_plain_replay(frame, at, known_at, duplicates):
    result = cl.state_at(frame, trace, types=bulbs, at=at, known_at=known_at, duplicates=duplicates)
    assert states(result) == reference(frame, trace, bulbs, at, known_at, duplicates)
    c = result.counts
    assert c["read"] == sum(c[k] for k in STATUSES)
    applied = result.frame.select("aggregate_id", "events_applied").rows()
    assert all(count == len(states(result)[a]) for a, count in applied)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=histories(), at=TIMES, known_at=TIMES, data=st.data())
def test_state_at_does_not_depend_on_row_order(frame, at, known_at, data):
    # Two deliveries of one identity that say different things at the same processing time,
    # with no Kafka offsets between them, are ordered by row: the documented last tie-break
    # (frame/identity.py; tests/unit/test_identity.py pins it). Every other history must not
    # depend on row order.
    tied = frame.group_by([*cl.IDENTITY, "processing_timestamp"]).agg(
        pl.struct("name", "version", "parameters").n_unique().alias("said")
    )
    assume(tied.filter(pl.col("said") > 1).is_empty())
    order = data.draw(st.permutations(list(range(frame.height))))
    shuffled = frame[list(order)]
    first = cl.state_at(frame, trace, types=bulbs, at=at, known_at=known_at)
    second = cl.state_at(shuffled, trace, types=bulbs, at=at, known_at=known_at)
    assert first.frame.equals(second.frame)
    assert first.counts == second.counts


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    frame=histories(),
    at=TIMES,
    known_at=TIMES,
    duplicates=st.sampled_from(["last", "first"]),
    data=st.data(),
)
def test_repeating_deliveries_changes_nothing(frame, at, known_at, duplicates, data):
    """Delivering events again, exactly as they were, at any later time, changes no state.

    (Deliveries of one identity with other content are overwrites, not repeats: the
    history starts with one delivery per identity.)"""
    frame = frame.unique(subset=list(cl.IDENTITY), keep="last", maintain_order=True)
    again = data.draw(st.lists(st.integers(0, frame.height - 1), max_size=8))
    lag = data.draw(st.integers(0, 90))
    repeated = pl.concat(
        [
            frame,
            frame[again].with_columns(
                pl.col("processing_timestamp") + pl.duration(minutes=lag, microseconds=1)
            ),
        ]
    )
    first = cl.state_at(frame, trace, types=bulbs, at=at, known_at=known_at, duplicates=duplicates)
    second = cl.state_at(
        repeated, trace, types=bulbs, at=at, known_at=known_at, duplicates=duplicates
    )
    assert states(first) == states(second)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=histories(), at=TIMES, known_at=TIMES)
def test_history_statuses_agree_with_state_at(frame, at, known_at):
    result = cl.state_at(frame, trace, types=bulbs, at=at, known_at=known_at)
    for aggregate in frame["aggregate_id"].unique():
        replay = cl.history(frame, aggregate, at=at, known_at=known_at, types=bulbs)
        applied = replay.filter(pl.col("status") == "applied")
        state = result.states.get(aggregate)
        assert applied.height == (len(state) if state else 0)


# ------------------------------------------------------------------ two processes


def test_two_workers_give_the_same_answer():
    events = cl.sample.parcels(400, seed=3)
    from concursus_lab.sample.parcels import parcel_state

    one = cl.state_at(events, parcel_state, types=parcel_types, workers=1)
    two = cl.state_at(events, parcel_state, types=parcel_types, workers=2)
    assert one.frame.equals(two.frame) and one.states == two.states


def test_two_workers_report_errors_from_either_half():
    events = bulbs.encode(
        [ev(Created, 0, 60, bulb=f"b{i}") for i in range(6)]
        + [ev(SwitchedOff, 1, bulb="b0"), ev(SwitchedOff, 1, bulb="b5")]
    )

    def fragile(state, event):
        if isinstance(event, SwitchedOff):
            raise ValueError("boom")
        return trace(state, event)

    with pytest.raises(ReducerError, match=r"of aggregate 'b[05]'") as raised:
        cl.state_at(events, fragile, types=bulbs, workers=2)
    assert isinstance(raised.value.__cause__, ValueError)
    for failing, fine in (("b0", "b5"), ("b5", "b0")):  # one in each half, whatever the order
        one_fails = events.filter(
            ~((pl.col("aggregate_id") == fine) & (pl.col("name") == "switchedOff"))
        )
        with pytest.raises(ReducerError, match=f"of aggregate '{failing}'"):
            cl.state_at(one_fails, fragile, types=bulbs, workers=2)


@pytest.mark.parametrize(
    "shape_of",
    [
        lambda i: ("on", i),  # the same shape everywhere: columns come from both processes
        lambda i: ("on", i) if i else {"n": i},  # one aggregate differs: one half's shape
        lambda i: None if i % 2 else ("on", i),  # no state for some (no initial declared)
        lambda i: i if i < 3 else str(i),  # plain values of two types
    ],
)
def test_two_workers_agree_whatever_the_shapes_of_the_states(shape_of):
    loose = cl.EventTypes("switch")  # no initial type: a reducer may leave None

    @loose.event
    class Flipped: ...

    events = loose.encode(
        [Flipped(aggregate_id=f"s{i}", event_timestamp=minutes(i)) for i in range(8)]
    )

    def reducer(state, event):
        return shape_of(int(event.aggregate_id[1:]))

    one = cl.state_at(events, reducer, types=loose, workers=1)
    two = cl.state_at(events, reducer, types=loose, workers=2)
    assert one.frame.to_dicts() == two.frame.to_dicts()
    assert one.frame.schema == two.frame.schema and one.states == two.states
    expected = {f"s{i}": shape_of(i) for i in range(8) if shape_of(i) is not None}
    assert one.states == expected and list(one.states) == sorted(expected)


def test_two_workers_with_states_that_cannot_be_pickled():
    class Local:  # a class defined in a function cannot be pickled
        def __init__(self, n):
            self.n = n

        def __eq__(self, other):
            return isinstance(other, Local) and other.n == self.n

    events = bulbs.encode([ev(Created, 0, 60, bulb=f"b{i}") for i in range(6)])
    result = cl.state_at(events, lambda s, e: Local(1), types=bulbs, workers=2)
    assert sorted(result.states) == [f"b{i}" for i in range(6)]
    assert all(s == Local(1) for s in result.states.values())
    with pytest.raises(SchemaError, match="`workers`"):
        cl.state_at(events, trace, types=bulbs, workers=0)


# ------------------------------------------------------------ hashing never merges aggregates


def test_aggregates_sharing_a_hash_are_still_told_apart(monkeypatch):
    import concursus_lab.frame.order as order_module
    from concursus_lab.frame import keys as _order

    events = cl.sample.parcels(50, seed=5)
    from concursus_lab.sample.parcels import parcel_state

    expected = cl.state_at(events, parcel_state, types=parcel_types)
    expected_latest = cl.latest(events)

    def colliding(frame):
        h, h2, ts, pts = _order.row_keys(frame)
        return h * 0, h2, ts, pts  # every aggregate shares the first hash

    monkeypatch.setattr(order_module, "row_keys", colliding)  # every replay's keys
    monkeypatch.setattr(_order, "NUMPY_SORT_BYTES", 0)  # and sort ids with polars
    again = cl.state_at(events, parcel_state, types=parcel_types)
    assert again.frame.equals(expected.frame) and again.states == expected.states
    assert cl.latest(events).equals(expected_latest)


IDS = st.lists(
    st.builds(
        str.__add__,
        st.sampled_from(["", "parcel-", "parcel-00", "é"]),  # shared prefixes, multibyte
        st.text(st.characters(codec="utf-8"), max_size=11),  # NULs, long and empty values
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(ids=IDS, types=st.lists(st.sampled_from(["a", "ab", "a\x00", ""]), min_size=30))
def test_ids_sort_as_polars_sorts_them(ids, types):
    from concursus_lab.frame.keys import string_order

    series = pl.Series(ids, dtype=pl.String)
    order = string_order(series)
    assert series.gather(order).to_list() == series.sort().to_list()
    stable = pl.int_range(pl.len()).sort_by("s", maintain_order=True)
    assert order.tolist() == pl.DataFrame({"s": series}).select(stable).to_series().to_list()
    pairs = pl.DataFrame({"t": types[: len(ids)], "i": ids})  # two columns, stable on ties
    expected = pairs.with_row_index().sort("t", "i", maintain_order=True)["index"].to_list()
    assert string_order(pairs["t"], pairs["i"]).tolist() == expected
    with_nul = pl.Series(["a\x00", "a", "b"])
    assert with_nul.gather(string_order(with_nul)).to_list() == ["a", "a\x00", "b"]
