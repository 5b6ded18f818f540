"""state_at a hash bucket of whole aggregates at a time (a lazy frame, a local store, or a
frame with ``buckets=``) gives the in-memory answer: states, frame, counts, undecodable."""

from __future__ import annotations

import polars as pl
import pytest

import concursus_lab as cl
from concursus_lab.exceptions import SchemaError
from concursus_lab.sample import parcel_state, parcel_types


@pytest.fixture(scope="module")
def history() -> pl.DataFrame:
    frame = cl.sample.parcels(1500, seed=21)  # repeats, late and out-of-order deliveries
    broken = frame.head(3).with_columns(
        pl.lit("noSuchEvent").alias("name"), pl.lit("parcel-broken").alias("aggregate_id")
    )
    truck = frame.head(2).with_columns(pl.lit("truck").alias("aggregate_type"))
    return pl.concat([frame, broken, truck])


def same(got: cl.StateAt, expected: cl.StateAt) -> None:
    assert got.frame.equals(expected.frame)
    assert got.counts == expected.counts
    assert got.states == expected.states
    key = ["aggregate_id", "event_timestamp", "stream_id"]
    assert got.undecodable.sort(key).equals(expected.undecodable.sort(key))


@pytest.mark.parametrize("question", [{}, {"at": "2026-03-06", "known_at": "2026-03-07"}])
def test_buckets_of_a_frame_or_a_lazy_frame_answer_as_the_whole(history, question):
    expected = cl.state_at(history, parcel_state, types=parcel_types, **question)
    assert expected.counts["undecodable"] and expected.counts["other_aggregate_types"]
    for events, buckets in ((history, 3), (history.lazy(), 5), (history.lazy(), None)):
        got = cl.state_at(
            events, parcel_state, types=parcel_types, buckets=buckets, progress=False, **question
        )
        same(got, expected)


@pytest.fixture(scope="module")
def store(history, tmp_path_factory):
    store = cl.open(tmp_path_factory.mktemp("buckets") / "store", create=True)  # 8 buckets
    store.append(history.head(3000))
    store.append(history.tail(history.height - 3000))  # two files of a kind per bucket
    return store


@pytest.mark.parametrize("buckets", [4, 3, 16])  # the store's 8, grouped; not a divisor; more
def test_a_local_store_is_folded_with_every_delivery(store, buckets):
    expected = cl.state_at(
        store.events(duplicates="keep"), parcel_state, types=parcel_types, duplicates="first"
    )
    assert expected.duplicates
    got = cl.state_at(store, parcel_state, types=parcel_types, duplicates="first", buckets=buckets)
    same(got, expected)


def test_a_store_part_is_its_own_buckets_whole_aggregates(store):
    everything = store.events(duplicates="keep")
    parts = [store.scan_part(b, 3).collect() for b in range(3)]
    assert sum(p.height for p in parts) == everything.height
    seen = [set(p["aggregate_id"]) for p in parts]
    assert not (seen[0] & seen[1]) and not (seen[0] & seen[2]) and not (seen[1] & seen[2])
    key = ["aggregate_id", "event_timestamp", "processing_timestamp", "name", "stream_id"]
    assert pl.concat(parts).sort(key).equals(everything.sort(key))


def test_a_bucket_without_the_type_is_no_error_but_a_history_without_it_is(history):
    one = history.filter(pl.col("aggregate_id") == history["aggregate_id"][0])
    got = cl.state_at(one.lazy(), parcel_state, types=parcel_types, buckets=8, progress=False)
    assert got.frame.height == 1
    trucks = history.filter(pl.col("aggregate_type") == "truck")
    with pytest.raises(SchemaError, match="no parcel events"):
        cl.state_at(trucks.lazy(), parcel_state, types=parcel_types, progress=False)


def test_what_cannot_be_read_in_buckets_says_what_to_do(history):
    with pytest.raises(SchemaError, match="`buckets` must be a positive int"):
        cl.state_at(history, parcel_state, types=parcel_types, buckets=0)
    with pytest.raises(SchemaError, match=r"\.events\(\)"):
        cl.state_at(history.to_dicts(), parcel_state, types=parcel_types)
    with pytest.raises(SchemaError, match=r"cl\.from_pandas\(df\)"):
        cl.state_at(history.head(5).to_pandas(), parcel_state, types=parcel_types)
