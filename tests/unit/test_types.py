"""Typed events: declaring, encoding and decoding, and every reason a row can't be read."""

from __future__ import annotations

import dataclasses
import datetime as dt
import pickle
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import concursus_lab as cl
from concursus_lab.exceptions import DecodeError, SchemaError
from concursus_lab.sample.parcels import Delivered, ReceivedAtDepot, parcel_types

UTC = dt.UTC
T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

person = cl.EventTypes("person")


@person.initial(aliases=["born", ("created", "-1")])
class Created:
    name: str
    age: int | None = None


@person.event(name="movedHouse", version="2")
class Moved:
    address: str
    since: dt.date
    rooms: list[int]
    tags: dict
    note: Any = None


@person.event
class Weighed:
    kilos: float
    measured: dt.datetime
    exact: bool


@person.terminal
class Died: ...


def _frame(rows: list[tuple[str, str, str]], aggregate_type: str = "person") -> pl.DataFrame:
    """A canonical frame of (name, version, parameters) rows for aggregate p1."""
    n = len(rows)
    return pl.DataFrame(
        {
            "aggregate_type": [aggregate_type] * n,
            "aggregate_id": ["p1"] * n,
            "event_timestamp": [T0 + dt.timedelta(minutes=i) for i in range(n)],
            "stream_id": [""] * n,
            "processing_id": [None] * n,
            "processing_timestamp": [T0 + dt.timedelta(minutes=i, seconds=1) for i in range(n)],
            "name": [r[0] for r in rows],
            "version": [r[1] for r in rows],
            "parameters": [r[2] for r in rows],
            "characteristics": [0] * n,
        },
        schema=cl.SCHEMA,
    )


# ------------------------------------------------------------------------- declarations


def test_looking_up_an_unknown_event_type_is_a_concursus_lab_error():
    with pytest.raises(cl.exceptions.UnknownEventType) as info:
        parcel_types["deliverd"]
    assert isinstance(info.value, SchemaError) and isinstance(info.value, KeyError)
    assert str(info.value) == (
        "parcel types: unknown event type 'deliverd' version '0'; did you mean 'delivered' or "
        "'deliveryFailed'?"
    )
    with pytest.raises(SchemaError, match=r"unknown version '9' of 'delivered' \(declared: '0'\)"):
        parcel_types["delivered", "9"]
    for key in (1, ("delivered",), None):
        with pytest.raises(SchemaError, match=r"an event name or a \(name, version\) pair"):
            parcel_types[key]
    assert parcel_types["delivered", 0] is Delivered


def test_names_versions_and_kinds_follow_the_declaration():
    declared = {(t.name, t.version): (t.kind, t.cls) for t in person}
    assert declared == {
        ("created", "0"): ("initial", Created),
        ("movedHouse", "2"): ("event", Moved),
        ("weighed", "0"): ("event", Weighed),
        ("died", "0"): ("terminal", Died),
    }
    assert person["born"] is Created and person[("created", "-1")] is Created
    assert person.declares_initial


def test_classes_are_frozen_dataclasses_with_metadata_kept_apart():
    event = Created("Arthur", aggregate_id="p1", event_timestamp=T0, stream_id="s")
    assert dataclasses.is_dataclass(event)
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.name = "Ford"  # type: ignore[misc]
    assert [p.name for p in person.event_type(Created).parameters] == ["name", "age"]
    assert Created.__match_args__ == ("name", "age")
    match event:
        case Created(name, age):
            assert (name, age) == ("Arthur", None)
    assert (event.aggregate_id, event.event_timestamp, event.stream_id) == ("p1", T0, "s")
    assert event.processing_timestamp is None


def test_times_given_by_hand_become_aware_utc():
    naive = Created("A", aggregate_id="p1", event_timestamp="2026-03-01 12:00")
    assert naive.event_timestamp == T0 and naive.event_timestamp.tzinfo is not None
    paris = dt.timezone(dt.timedelta(hours=1))
    shifted = Created(
        "A", aggregate_id="p1", event_timestamp=dt.datetime(2026, 3, 1, 13, 0, tzinfo=paris)
    )
    assert shifted.event_timestamp == T0 and shifted.event_timestamp.utcoffset() == dt.timedelta(0)


def test_repr_is_short_and_evaluates_back():
    event = Created("Arthur", 42, aggregate_id="p1", event_timestamp=T0)
    assert repr(event) == (
        "Created(name='Arthur', age=42, aggregate_id='p1', "
        "event_timestamp='2026-03-01 12:00:00+00:00')"
    )
    assert eval(repr(event)) == event
    assert repr(person).splitlines()[0] == "EventTypes('person')"
    assert "initial   created" in repr(person)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"aggregate_id": str}, "carried by every event"),
        ({"when": complex}, "unsupported parameter type"),
    ],
)
def test_bad_declarations_say_what_to_do(body, message):
    types = cl.EventTypes("x")
    cls = type("Bad", (), {"__annotations__": body})
    with pytest.raises(TypeError, match=message):
        types.event(cls)


def test_a_type_declared_twice_is_refused():
    types = cl.EventTypes("x")

    @types.event
    class Happened: ...

    with pytest.raises(SchemaError, match="declared twice"):

        @types.event(name="happened")
        class Other: ...


def test_a_class_is_declared_once():
    with pytest.raises(SchemaError, match="already declared, as 'created' of 'person'"):
        cl.EventTypes("robot").initial(Created)


def test_a_dataclass_is_refused_with_the_fix():
    types = cl.EventTypes("x")
    with pytest.raises(TypeError, match="remove @dataclass"):

        @types.event
        @dataclasses.dataclass
        class Happened:
            a: int


# ---------------------------------------------------------------------------- encoding


def test_encode_writes_canonical_rows():
    events = [
        Created("Arthur", aggregate_id="p1", event_timestamp=T0),
        Moved(
            "Cottington",
            dt.date(1968, 5, 28),
            [2, 3],
            {"b": 1, "a": [1]},
            aggregate_id="p1",
            event_timestamp=T0 + dt.timedelta(hours=1),
            processing_timestamp=T0 + dt.timedelta(hours=2),
            stream_id="app",
        ),
        Died(aggregate_id="p1", event_timestamp=T0 + dt.timedelta(days=1)),
    ]
    frame = person.encode(events)
    assert cl.frame.validate(frame) is not None
    assert frame["characteristics"].to_list() == [1, 0, 2]
    assert frame["name"].to_list() == ["created", "movedHouse", "died"]
    assert frame["version"].to_list() == ["0", "2", "0"]
    assert frame["parameters"].to_list() == [
        '{"age":null,"name":"Arthur"}',
        '{"address":"Cottington","note":null,"rooms":[2,3],"since":[1968,5,28],'
        '"tags":{"a":[1],"b":1}}',
        "{}",
    ]
    # not logged yet: taken as logged at its event time
    assert frame["processing_timestamp"][0] == T0
    assert frame["processing_timestamp"][1] == T0 + dt.timedelta(hours=2)
    assert cl.frame.processing_time(frame["processing_id"])[1] == T0 + dt.timedelta(hours=2)


def test_encode_refuses_what_could_not_be_decoded():
    with pytest.raises(SchemaError, match=r"'age' should be int \| None, got '42'"):
        person.encode([Created("A", "42", aggregate_id="p1", event_timestamp=T0)])
    with pytest.raises(SchemaError, match="needs an `aggregate_id`"):
        person.encode([Created("A", event_timestamp=T0)])
    with pytest.raises(SchemaError, match="not an event type of 'person'"):
        person.encode([ReceivedAtDepot("Lewisham", aggregate_id="p", event_timestamp=T0)])


def test_encode_then_decode_gives_the_same_instances():
    events = [
        Created("Arthur", 42, aggregate_id="p1", event_timestamp=T0),
        Weighed(
            70.5,
            T0 - dt.timedelta(days=1),
            True,
            aggregate_id="p1",
            event_timestamp=T0 + dt.timedelta(minutes=1),
            stream_id="scale",
        ),
        Moved(
            "X",
            dt.date(2000, 1, 2),
            [],
            {},
            note={"any": ["thing"]},
            aggregate_id="p1",
            event_timestamp=T0 + dt.timedelta(minutes=2),
        ),
    ]
    decoded = person.decode(person.encode(events))
    assert decoded.events == [
        dataclasses.replace(e, processing_timestamp=e.processing_timestamp or e.event_timestamp)
        for e in events
    ]
    assert decoded.undecodable.height == 0


@settings(max_examples=60, deadline=None)
@given(
    name=st.text(max_size=12),
    age=st.none() | st.integers(-(2**62), 2**62),
    kilos=st.floats(allow_nan=False, allow_infinity=False, width=64),
    exact=st.booleans(),
)
def test_round_trip_of_any_values(name, age, kilos, exact):
    events = [
        Created(name, age, aggregate_id="p1", event_timestamp=T0),
        Weighed(kilos, T0, exact, aggregate_id="p1", event_timestamp=T0),
    ]
    decoded = person.decode(person.encode(events)).events
    assert (decoded[0].name, decoded[0].age) == (name, age)
    assert (decoded[1].kilos, decoded[1].exact) == (kilos, exact)


# ---------------------------------------------------------------------------- decoding


def test_java_shapes_of_dates_and_instants_decode():
    frame = _frame(
        [
            ("movedHouse", "2", '{"address":"a","rooms":[1],"since":[1968,5,28],"tags":{}}'),
            ("movedHouse", "2", '{"address":"b","rooms":[],"since":"1968-05-28","tags":{}}'),
            ("weighed", "0", '{"exact":false,"kilos":70,"measured":1459420277.981000000}'),
            ("weighed", "0", '{"exact":true,"kilos":1.5,"measured":"2016-03-31T10:31:17.981Z"}'),
        ]
    )
    first, second, third, fourth = person.decode(frame).events
    assert first.since == second.since == dt.date(1968, 5, 28)
    assert third.kilos == 70.0 and isinstance(third.kilos, float)
    expected = dt.datetime(2016, 3, 31, 10, 31, 17, 981000, tzinfo=UTC)
    assert third.measured == expected == fourth.measured


def test_optional_and_defaulted_parameters_may_be_missing():
    frame = _frame(
        [
            ("created", "0", '{"name":"A"}'),
            ("born", "0", '{"age":null,"name":"B"}'),
            ("created", "-1", '{"age":3,"name":"C"}'),
        ]
    )
    events = person.decode(frame).events
    assert [(e.name, e.age) for e in events] == [("A", None), ("B", None), ("C", 3)]
    assert all(type(e) is Created for e in events)


def test_every_reason_a_row_cannot_be_decoded_is_reported():
    frame = _frame(
        [
            ("creatd", "0", '{"name":"A"}'),
            ("created", "7", '{"name":"A"}'),
            ("created", "0", '{"age":1}'),
            ("created", "0", '{"name":"A","nmae":"B"}'),
            ("created", "0", '{"age":"1","name":"A"}'),
            ("weighed", "0", '{"exact":1,"kilos":1.0,"measured":"2016-03-31"}'),
            ("movedHouse", "2", '{"address":"a","rooms":[1,"2"],"since":"1968-02-03","tags":{}}'),
            ("movedHouse", "2", '{"address":"a","rooms":[1],"since":"1968-02-30","tags":{}}'),
            ("created", "0", "not json"),
            ("created", "0", "[1, 2]"),
            ("created", "0", '{"name":"fine"}'),
        ]
    )
    decoded = person.decode(frame)
    assert [e.name for e in decoded.events] == ["fine"]
    assert decoded.undecodable["reason"].to_list() == [
        "unknown event type 'creatd' version '0'; did you mean 'created'?",
        "unknown version '7' of 'created' (declared: '-1', '0')",
        "missing parameter 'name' (str) for 'created'",
        "unexpected parameter 'nmae' (did you mean 'name'?) for 'created'",
        "parameter 'age' should be int | None, got '1' (str)",
        "parameter 'exact' should be bool, got 1 (int)",
        "parameter 'rooms' has an item of the wrong type: 'rooms' should be int, got '2' (str)",
        "parameter 'since' should be a date such as \"1968-05-28\" or [1968, 5, 28], got "
        "'1968-02-30'",
        "parameters are not valid JSON: 'not json'",
        "parameters are not a JSON object: '[1, 2]'",
    ]
    assert decoded.undecodable.columns == [*cl.SCHEMA, "reason"]
    assert repr(decoded).startswith("Decoded 'person': 1 events, 10 undecodable")


def test_strict_decoding_raises_with_the_first_reasons():
    frame = _frame(
        [
            ("creatd", "0", "{}"),
            ("created", "0", "{}"),
            ("created", "0", "{}"),
            ("created", "0", "{}"),
        ]
    )
    with pytest.raises(DecodeError) as raised:
        person.decode(frame, strict=True)
    message = str(raised.value)
    assert message.startswith("4 event(s) of 'person' could not be decoded:")
    assert "did you mean 'created'?" in message and "... and 1 more" in message


def test_other_aggregate_types_are_counted_not_decoded():
    frame = pl.concat(
        [
            _frame([("created", "0", '{"name":"A"}')]),
            _frame([("created", "0", "{}")], aggregate_type="robot"),
        ]
    )
    decoded = person.decode(frame)
    assert len(decoded) == 1 and decoded.other_aggregate_types == 1


def test_canonical_and_hand_written_texts_decode_alike():
    texts = [
        '{"age":1,"name":"A"}',
        '{"name": "A", "age": 1}',
        '{"age":1.0,"name":"A"}',
        '{"age":1,"name":"\\u0041"}',
    ]
    decoded = person.decode(_frame([("created", "0", t) for t in texts]))
    assert [(e.name, e.age) for e in decoded.events] == [("A", 1), ("A", 1), ("A", 1)]
    assert decoded.undecodable["reason"].to_list() == [
        "parameter 'age' should be int | None, got 1.0 (float)"
    ]


def test_decoded_instances_are_ordinary_values():
    frame = parcel_types.encode(
        [
            ReceivedAtDepot("Lewisham", aggregate_id="p", event_timestamp=T0, stream_id="s"),
            Delivered("d", aggregate_id="p", event_timestamp=T0),
        ]
    )
    event = parcel_types.decode(frame).events[0]
    by_hand = ReceivedAtDepot(
        "Lewisham", aggregate_id="p", event_timestamp=T0, processing_timestamp=T0, stream_id="s"
    )
    assert event == by_hand and hash(event) == hash(by_hand)
    assert pickle.loads(pickle.dumps(event)) == event
    assert dataclasses.replace(event, depotId="Camden").depotId == "Camden"
    assert dataclasses.asdict(event)["event_timestamp"] == T0


def test_a_class_with_its_own_post_init_gets_it_called():
    types = cl.EventTypes("x")
    seen = []

    @types.event
    class Happened:
        n: int

        def __post_init__(self):
            seen.append(self.n)

    frame = types.encode([Happened(1, aggregate_id="a", event_timestamp=T0)])
    assert types.decode(frame).events[0].n == 1
    assert seen == [1, 1]


def test_decode_does_not_change_its_input():
    frame = _frame([("created", "0", '{"name":"A"}'), ("nope", "0", "{}")])
    before = frame.clone()
    person.decode(frame)
    assert frame.equals(before)
