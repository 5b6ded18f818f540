"""Processing time from time-based UUIDs, including Java Concursus's malformed ones."""

from __future__ import annotations

import datetime as dt
import uuid

import polars as pl
import pytest

import concursus_lab as cl
from concursus_lab.exceptions import SchemaError
from concursus_lab.frame.jhash import bucket, java_hash
from concursus_lab.frame.timeuuid import GREGORIAN_OFFSET

UTC = dt.UTC


def test_java_malformed_variant_is_read():
    java_id = "c4f74bc0-e9f0-11f1-ffff-ffffffffff65"
    assert uuid.UUID(java_id).version is None  # what makes it awkward
    expected_ms = (uuid.UUID(java_id).time - GREGORIAN_OFFSET) // 10_000
    got = cl.frame.processing_time(java_id)
    assert got == dt.datetime.fromtimestamp(expected_ms / 1000, tz=UTC)
    assert cl.frame.processing_time(java_id.upper()) == got


def test_python_uuid1_agrees_with_the_standard_library():
    ids = [uuid.uuid1() for _ in range(50)]
    got = cl.frame.processing_time(pl.Series([str(i) for i in ids]))
    for u, value in zip(ids, got, strict=True):
        ms = (u.time - GREGORIAN_OFFSET) // 10_000
        assert value == dt.datetime.fromtimestamp(ms / 1000, tz=UTC)


def test_anything_else_is_null():
    ids = pl.Series(
        [None, "", "not-a-uuid", str(uuid.uuid4()), "c4f74bc0-e9f0-11f1-ffff-ffffffffff6g"]
    )
    assert cl.frame.processing_time(ids).null_count() == 5
    assert cl.frame.processing_time(None) is None


def test_generated_ids_are_unique_rfc4122_v1_and_read_back_exactly():
    base = dt.datetime(2026, 3, 2, 12, 0, 0, 123000, tzinfo=UTC)
    times = pl.Series([base] * 5 + [base + dt.timedelta(milliseconds=1)]).cast(
        pl.Datetime("us", "UTC")
    )
    ids = cl.frame.time_uuids(times, seed=1)
    assert ids.n_unique() == 6
    for text in ids:
        u = uuid.UUID(text)
        assert u.version == 1 and u.variant == uuid.RFC_4122
    assert cl.frame.processing_time(ids).to_list() == times.to_list()
    # within one millisecond the ids still sort by generation order (sub-ms ticks)
    ticks = [uuid.UUID(t).time for t in ids[:5]]
    assert ticks == sorted(ticks) and len(set(ticks)) == 5


def test_the_same_seed_gives_the_same_ids():
    times = pl.Series([dt.datetime(2026, 1, 1, tzinfo=UTC)] * 3).cast(pl.Datetime("us", "UTC"))
    assert cl.frame.time_uuids(times, seed=4).equals(cl.frame.time_uuids(times, seed=4))
    assert not cl.frame.time_uuids(times, seed=4).equals(cl.frame.time_uuids(times, seed=5))


def test_java_string_hash_code():
    def java(text: str) -> int:
        h = 0
        for unit in memoryview(text.encode("utf-16-be")).cast("H"):
            h = (31 * h + int.from_bytes(unit.to_bytes(2, "little"), "big")) & 0xFFFFFFFF
        return h - (1 << 32) if h >= 1 << 31 else h

    values = ["id1", "", "parcel-0000001", "héllo", "😀", "a" * 40]
    assert java_hash(pl.Series(values)).to_list() == [java(v) for v in values]
    assert java_hash(pl.Series(["id1"])).item() == 104054  # as Java prints "id1".hashCode()
    assert bucket(pl.Series(["id1", "parcel-0000001"]), 8).to_list() == [
        abs(java("id1")) % 8,
        abs(java("parcel-0000001")) % 8,
    ]


def test_what_cannot_be_a_time_uuid_is_refused_never_made_up():
    """Nulls and times a version-1 UUID cannot hold were made into ids of other times."""
    at = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
    cases = [
        ([at], "`timestamps` must be a polars Series of times, got list"),
        (pl.Series([1, 2]), "`timestamps` must be a Datetime series, got Int64"),
        (pl.Series("t", [at, None]), "`timestamps` has 1 null.* row 1"),
        (pl.Series([dt.datetime(1500, 1, 1)]), "before 1582-10-15.* row 0: 1500-01-01"),
    ]
    for timestamps, message in cases:
        with pytest.raises(SchemaError, match=message):
            cl.frame.time_uuids(timestamps)
    one = pl.Series([at])
    with pytest.raises(SchemaError, match="`seed` must be a non-negative int or None, got 'x'"):
        cl.frame.time_uuids(one, seed="x")
    for node in (-1, 2**48, "a"):
        with pytest.raises(SchemaError, match=r"`node` must be an int in \[0, 2\*\*48\)"):
            cl.frame.time_uuids(one, node=node)
    assert cl.frame.processing_time(cl.frame.time_uuids(one, node=2**48 - 1)).item() == at
