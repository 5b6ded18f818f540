"""cl.testing: the helpers users put in their own CI must catch what they promise to."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given, settings

import concursus_lab as cl
from concursus_lab.sample import parcel_state, parcel_types
from concursus_lab.testing import assert_events_equal, assert_states_equal, redeliveries


@pytest.fixture(scope="module")
def history() -> pl.DataFrame:
    return cl.sample.fixture("messy").unique(cl.IDENTITY, keep="last", maintain_order=True)


def test_events_compare_regardless_of_order_but_not_of_content(history):
    assert_events_equal(history, history.reverse())
    changed = history.with_columns(
        pl.when(pl.int_range(pl.len()) == 0)
        .then(pl.lit('{"depotId":"Nowhere"}'))
        .otherwise(pl.col("parameters"))
        .alias("parameters")
    )
    with pytest.raises(AssertionError, match="1 only on the left, 1 only on the right"):
        assert_events_equal(history, changed)


def test_states_compare_by_aggregate(history):
    a = cl.state_at(history, parcel_state, types=parcel_types)
    assert_states_equal(a, cl.state_at(history.reverse(), parcel_state, types=parcel_types))
    earlier = cl.state_at(history, parcel_state, types=parcel_types, at="2026-03-02 12:00")
    with pytest.raises(AssertionError, match="states differ"):
        assert_states_equal(a, earlier)
    with pytest.raises(TypeError, match="state_at result"):
        assert_states_equal(a, 42)


def test_redeliveries_keep_every_row_and_repeat_some(history):
    seen = []

    @settings(max_examples=30, deadline=None)
    @given(redeliveries(history, max_repeats=3))
    def collect(frame):
        assert frame.height >= history.height
        assert frame.unique(cl.IDENTITY).height == history.height
        repeats = frame.height - history.height
        assert repeats <= 3
        assert frame["processing_id"].n_unique() == frame.height
        seen.append(repeats)

    collect()
    assert max(seen) > 0


def test_redeliveries_catch_a_view_that_trusts_arrival_order(history):
    def last_arrived_name(frame: pl.DataFrame) -> dict:
        """Wrong on purpose: the last event to *arrive* per parcel, not the latest."""
        return dict(
            frame.group_by("aggregate_id", maintain_order=True).agg(pl.col("name").last()).rows()
        )

    expected = last_arrived_name(history)

    @settings(max_examples=50, deadline=None)
    @given(redeliveries(history))
    def check(frame):
        assert last_arrived_name(frame) == expected

    with pytest.raises(AssertionError):
        check()
