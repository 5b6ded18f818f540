"""The keys of Concursus's Hazelcast idempotency map, against bytes Java wrote.

The two vectors below are ``ObjectOutputStream.writeObject`` of Concursus's own
``SerializableEventIdentity`` (compiled from opencredo/concursus, run on Java 17): the same
identity with a millisecond ``Instant`` and an empty stream, and with nanoseconds and a
stream. The integration tests (tests/integration/test_hazelcast.py) go through a real member.
"""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from concursus_lab.sources.hazelcast.java_stream import JavaStreamError, read_object, write_object
from concursus_lab.sources.hazelcast.keys import IDENTITY_CLASS, IDENTITY_SUID, JavaKey

UTC = dt.UTC
_HEAD = (
    "aced000573720042636f6d2e6f70656e637265646f2e636f6e6375727375732e68617a656c636173742e6576"
    "656e74732e53657269616c697a61626c654576656e744964656e746974794f686ae2897caa400200044c000b"
    "61676772656761746549647400124c6a6176612f6c616e672f537472696e673b4c000d616767726567617465"
    "5479706571007e00014c000e6576656e7454696d657374616d707400134c6a6176612f74696d652f496e7374"
    "616e743b4c000873747265616d496471007e0001787074000e70617263656c2d3030303033323174000670617263"
    "656c7372000d6a6176612e74696d652e536572955d84ba1b2248b20c00007870770d02000000006b0d3e94"
)
#: parcel / parcel-0000321 / 2026-11-30T09:15:00.123Z / ""
JAVA_MILLIS = bytes.fromhex(_HEAD + "0754d4c078740000")
#: parcel / parcel-0000321 / 2026-11-30T09:15:00.123456789Z / "s1"
JAVA_NANOS = bytes.fromhex(_HEAD + "075bcd15787400027331")
AT = dt.datetime(2026, 11, 30, 9, 15, 0, 123_000, tzinfo=UTC)
#: "pa\U0001F4E6rcel" / "\u00e9" / 2026-11-30T09:15:00Z / "": Java's modified UTF-8 writes the
#: parcel emoji as two 3-byte surrogates (ed a0 bd, ed b3 a6), not as UTF-8's 4 bytes
JAVA_EMOJI = bytes.fromhex(
    "aced000573720042636f6d2e6f70656e637265646f2e636f6e6375727375732e68617a656c636173742e6576"
    "656e74732e53657269616c697a61626c654576656e744964656e746974794f686ae2897caa400200044c000b"
    "61676772656761746549647400124c6a6176612f6c616e672f537472696e673b4c000d616767726567617465"
    "5479706571007e00014c000e6576656e7454696d657374616d707400134c6a6176612f74696d652f496e7374"
    "616e743b4c000873747265616d496471007e00017870740002c3a974000c7061eda0bdedb3a67263656c7372"
    "000d6a6176612e74696d652e536572955d84ba1b2248b20c00007870770d02000000006b0d3e940000000078"
    "740000"
)


def test_java_s_bytes_read_as_the_event_identity():
    assert JavaKey(JAVA_MILLIS).identity() == {
        "aggregate_type": "parcel",
        "aggregate_id": "parcel-0000321",
        "event_timestamp": AT,
        "stream_id": "",
    }
    nanos = JavaKey(JAVA_NANOS).identity()
    # Python keeps microseconds: the 789 nanoseconds are dropped, never rounded up
    assert nanos["event_timestamp"] == AT.replace(microsecond=123_456)
    assert nanos["stream_id"] == "s1"


def test_a_key_made_here_is_java_s_byte_for_byte():
    assert JavaKey.of_identity("parcel", "parcel-0000321", AT, "").payload == JAVA_MILLIS
    emoji = JavaKey.of_identity("pa\U0001f4e6rcel", "\u00e9", AT.replace(microsecond=0), "")
    assert emoji.payload == JAVA_EMOJI
    assert JavaKey(JAVA_EMOJI).identity()["aggregate_type"] == "pa\U0001f4e6rcel"


@given(
    aggregate_type=st.text(min_size=1, max_size=20),
    aggregate_id=st.text(max_size=40),
    stream_id=st.text(max_size=10),
    micros=st.integers(min_value=-(10**15), max_value=10**16),
)
def test_any_identity_goes_round_trip(aggregate_type, aggregate_id, stream_id, micros):
    moment = dt.datetime(1970, 1, 1, tzinfo=UTC) + dt.timedelta(microseconds=micros)
    key = JavaKey.of_identity(aggregate_type, aggregate_id, moment, stream_id)
    assert key.identity() == {
        "aggregate_type": aggregate_type,
        "aggregate_id": aggregate_id,
        "event_timestamp": moment,
        "stream_id": stream_id,
    }


def test_a_string_field_equal_to_another_is_still_written_in_full():
    # Java shares a value only when it is the same String object; Concursus's are distinct
    stream = write_object("X", 1, {"a": "same", "b": "same"})
    assert stream.count(b"same") == 2
    assert read_object(stream).fields == {"a": "same", "b": "same"}


def test_back_references_resolve_to_what_they_name():
    # the vectors' field types are references (71 007e0001) to "Ljava/lang/String;"
    assert read_object(JAVA_MILLIS).class_name == IDENTITY_CLASS


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"\x00\x01\x02", "not a Java serialization stream"),
        (JAVA_MILLIS[:-5], "ends inside"),
        (JAVA_MILLIS + b"\x70", "1 bytes left"),
        (bytes.fromhex("aced0005750000"), "0x75"),  # an array
        (bytes.fromhex("aced000571007e0009"), "handle 9"),
    ],
)
def test_streams_that_are_not_read_here_say_what_they_hold(payload, message):
    with pytest.raises(JavaStreamError, match=message):
        JavaKey(payload).identity()


def test_an_object_of_another_class_is_named_in_the_error():
    other = write_object("com.example.OrderId", 7, {"value": "o-1"})
    with pytest.raises(JavaStreamError, match=r"com\.example\.OrderId, not Concursus's"):
        JavaKey(other).identity()
    same_name = write_object(IDENTITY_CLASS, IDENTITY_SUID, {"aggregateId": "x"})
    with pytest.raises(JavaStreamError, match="has fields"):
        JavaKey(same_name).identity()


def test_an_instant_needs_a_timezone():
    with pytest.raises(JavaStreamError, match="timezone-aware"):
        JavaKey.of_identity("parcel", "p", dt.datetime(2026, 1, 1), "")
