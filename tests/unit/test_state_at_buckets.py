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


def test_a_local_store_is_folded_with_every_delivery(history, tmp_path):
    store = cl.open(tmp_path / "store", create=True)
    store.append(history)
    expected = cl.state_at(
        store.events(duplicates="keep"), parcel_state, types=parcel_types, duplicates="first"
    )
    assert expected.duplicates
    got = cl.state_at(store, parcel_state, types=parcel_types, duplicates="first", buckets=4)
    same(got, expected)


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
