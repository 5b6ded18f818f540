"""latest a hash bucket of whole aggregates at a time (a lazy frame, a local store, or a frame
with ``buckets=``) gives the in-memory answer, each column typed over every bucket."""

from __future__ import annotations

import polars as pl
import pytest

import concursus_lab as cl
from concursus_lab.frame.keys import bucket_of
from concursus_lab.sample import parcel_types


@pytest.fixture(scope="module")
def history() -> pl.DataFrame:
    frame = cl.sample.parcels(600, seed=23)  # repeats, late and out-of-order deliveries
    # a parameter whose values are integers for some parcels and texts for others: one
    # frame shows it as JSON texts, and so must every bucket, whichever kinds it saw
    first = bucket_of(2) == 0  # with buckets=2, each bucket sees one kind only
    mixed = pl.when(first).then(pl.lit('{"x":1}')).otherwise(pl.lit('{"x":"a"}'))
    frame = frame.with_columns(
        pl.when(pl.col("name") == "deliveryFailed")
        .then(mixed)
        .otherwise(pl.col("parameters"))
        .alias("parameters")
    )
    truck = frame.head(2).with_columns(pl.lit("truck").alias("aggregate_type"))
    return pl.concat([frame, truck])


@pytest.mark.parametrize(
    "question", [{}, {"at": "2026-03-06", "known_at": "2026-03-07", "duplicates": "first"}]
)
def test_buckets_of_a_frame_or_a_lazy_frame_answer_as_the_whole(history, question):
    expected = cl.latest(history, **question)
    assert expected.schema["x"] == pl.String and {"1", '"a"'} <= set(expected["x"])
    cases = ((history, 2), (history, 7), (history.lazy(), 2), (history.lazy(), None))
    for events, buckets in cases:
        got = cl.latest(events, buckets=buckets, progress=False, **question)
        assert got.equals(expected), (buckets, got, expected)


def test_one_kind_per_bucket_is_typed_as_the_whole(history):
    ints = history.filter(pl.col("parameters") != '{"x":"a"}')
    expected = cl.latest(ints)
    assert expected.schema["x"] == pl.Int64
    assert cl.latest(ints.lazy(), buckets=16, progress=False).equals(expected)


def test_a_local_store_and_upcasting_types(history, tmp_path):
    store = cl.open(tmp_path / "store", create=True)
    store.append(history)
    events = store.events(duplicates="keep")
    expected = cl.latest(events, types=parcel_types)
    assert cl.latest(store, buckets=3, types=parcel_types, progress=False).equals(expected)
