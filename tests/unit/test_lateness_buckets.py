"""lateness a hash bucket of whole aggregates at a time (a lazy frame, a local store, or a
frame with ``buckets=``) gives the in-memory profile exactly, percentiles included."""

from __future__ import annotations

import polars as pl
import pytest

import concursus_lab as cl
from concursus_lab.exceptions import SchemaError


@pytest.fixture(scope="module")
def history() -> pl.DataFrame:
    frame = cl.sample.parcels(800, seed=29)  # repeats, late, out-of-order, clock ahead
    partition = (pl.col("aggregate_id").str.slice(-1).cast(pl.Int64) % 3).alias("partition")
    return frame.with_columns(partition)


@pytest.mark.parametrize("by", [None, "name", "stream_id", ["name", "partition"]])
def test_buckets_give_the_in_memory_profile(history, by):
    expected = cl.lateness(history, by=by)
    assert expected["out_of_order"].sum() and expected["duplicates"].sum()
    assert expected["negative"].sum()
    for events, buckets in ((history, 3), (history.lazy(), 7), (history.lazy(), None)):
        got = cl.lateness(events, by=by, buckets=buckets, progress=False)
        assert got.equals(expected), (by, buckets, got, expected)


def test_small_groups_land_on_the_nearest_rank(history):
    few = history.head(7)  # ranks round((n - 1) * q) with n = 7: halves and near-halves
    expected = cl.lateness(few, by="name")
    assert cl.lateness(few.lazy(), by="name", buckets=2, progress=False).equals(expected)


def test_a_local_store_is_profiled_with_every_delivery(history, tmp_path):
    store = cl.open(tmp_path / "store", create=True)
    store.append(history.drop("partition"))
    expected = cl.lateness(store.events(duplicates="keep"), by="name")
    assert expected["duplicates"].sum()
    assert cl.lateness(store, by="name", buckets=4, progress=False).equals(expected)


def test_a_missing_key_is_named(history):
    with pytest.raises(SchemaError, match="streamid"):
        cl.lateness(history.lazy(), by="streamid", progress=False)
