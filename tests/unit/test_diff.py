"""cl.diff: added, removed, changed (with the columns named), on known views."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

import concursus_lab as cl
from concursus_lab.exceptions import SchemaError
from concursus_lab.projections.diff import same_view

DAY1, DAY2 = dt.date(2026, 3, 2), dt.date(2026, 3, 3)


@pytest.fixture
def old() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "truck": ["T1", "T1", "T2", "T3"],
            "day": [DAY1, DAY2, DAY1, DAY1],
            "attempts": [4, 2, 3, 1],
            "delivered": [3, 2, 3, 0],
            "rate": [0.75, 1.0, 1.0, 0.0],
        }
    )


@pytest.fixture
def new(old) -> pl.DataFrame:
    changed = old.with_columns(
        attempts=pl.when(pl.col("truck") == "T1")
        .then(pl.col("attempts") - 1)
        .otherwise("attempts"),
        rate=pl.when((pl.col("truck") == "T1") & (pl.col("day") == DAY1))
        .then(1.0)
        .otherwise("rate"),
    )
    extra = pl.DataFrame(
        {"truck": ["T4"], "day": [DAY2], "attempts": [2], "delivered": [1], "rate": [0.5]}
    )
    return pl.concat([changed.filter(pl.col("truck") != "T3"), extra]).reverse()


def test_known_answer(old, new):
    found = cl.diff(old, new, key=["truck", "day"], names=("v1", "v2"))
    assert str(found) == (
        "v1 -> v2: 2 changed (attempts 2, rate 1), 1 added, 1 removed, 1 unchanged"
    )
    assert found.changed.columns == [
        "truck",
        "day",
        "differs",
        "attempts_v1",
        "attempts_v2",
        "delivered_v1",
        "delivered_v2",
        "rate_v1",
        "rate_v2",
    ]
    assert found.changed.select("truck", "day", "differs").rows() == [
        ("T1", DAY1, ["attempts", "rate"]),
        ("T1", DAY2, ["attempts"]),
    ]
    assert found.added.rows() == [("T4", DAY2, 2, 1, 0.5)]
    assert found.removed.rows() == [("T3", DAY1, 1, 0, 0.0)]
    assert found.changed_columns() == {"attempts": 2, "rate": 1}
    assert not found.equal
    assert found._repr_markdown_().startswith("```\nv1 -> v2")


def test_row_order_is_not_a_difference_and_inputs_are_kept(old):
    before = old.clone()
    found = cl.diff(old, old.reverse(), key=["truck", "day"])
    assert found.equal and found.unchanged == 4
    assert old.equals(before)


def test_floats_within_tolerance_nulls_and_nans_are_equal():
    a = pl.DataFrame({"k": [1, 2, 3, 4], "x": [0.1 + 0.2, None, float("nan"), 1.0]})
    b = pl.DataFrame({"k": [1, 2, 3, 4], "x": [0.3, None, float("nan"), 1.0 + 1e-6]})
    found = cl.diff(a, b, key="k")
    assert found.changed["k"].to_list() == [4]
    assert cl.diff(a, b, key="k", rtol=1e-3).equal


def test_columns_only_on_one_side_are_reported(old):
    other = old.drop("rate").with_columns(pl.lit(1).alias("trips"))
    found = cl.diff(old, other, key=["truck", "day"])
    assert found.only_in_a == ("rate",) and found.only_in_b == ("trips",)
    assert not found.equal
    assert str(found).endswith("(columns only in a: rate; columns only in b: trips)")


def test_key_types_that_differ_are_aligned(old):
    other = old.with_columns(pl.col("attempts").cast(pl.UInt32))
    assert cl.diff(old, other, key=["truck", "day"]).equal
    assert cl.diff(
        old.select("attempts", "rate"), other.select("attempts", "rate"), key="attempts"
    ).equal


def test_whole_rows_without_a_key_are_multisets(old):
    doubled = pl.concat([old, old.head(1)])
    found = cl.diff(old, doubled)
    assert found.key == () and found.added.rows() == old.head(1).rows()
    assert found.removed.height == 0 and found.changed.height == 0
    assert str(found) == "a -> b: 0 changed, 1 added, 0 removed, 4 unchanged"


def test_whole_rows_are_compared_on_the_columns_both_views_have(old):
    """Columns only one view has are reported, not compared: with a key or without."""
    wider = old.with_columns(pl.lit(1).alias("trips")).reverse()
    for key in (None, ["truck", "day"]):
        found = cl.diff(old, wider, key=key, names=("v1", "v2"))
        assert (found.added.height, found.removed.height, found.changed.height) == (0, 0, 0)
        assert found.unchanged == 4 and found.only_in_b == ("trips",)
        assert found.same_rows and not found.equal
        assert str(found).endswith("4 unchanged (columns only in v2: trips)")
    narrower = wider.with_columns(pl.col("rate") * 2).drop("attempts")
    fewer = cl.diff(old, narrower)
    assert fewer.removed.columns == old.columns and fewer.added.columns == narrower.columns
    assert fewer.removed.height == fewer.added.height == 3  # T3's rate is 0.0 either way
    assert not cl.diff(old.select("truck"), wider.select("trips")).same_rows  # nothing shared


def test_a_key_that_repeats_or_is_missing_is_refused(old):
    with pytest.raises(
        SchemaError,
        match=r"`key` \['truck'\] does not identify the rows of "
        r"`view_a`: 'T1' is on 2 rows",
    ):
        cl.diff(old, old, key="truck")
    with pytest.raises(SchemaError, match=r"'trucks' \(did you mean 'truck'\?\)"):
        cl.diff(old, old, key="trucks")
    with pytest.raises(SchemaError, match="`view_b` must be a view frame"):
        cl.diff(old, {"truck": []}, key="truck")
    with pytest.raises(SchemaError, match="`names` must be two different names"):
        cl.diff(old, old, names=("v", "v"))


ROWS = st.lists(
    st.tuples(st.integers(0, 5), st.integers(-3, 3)), max_size=8, unique_by=lambda t: t[0]
)


@given(ROWS, ROWS)
def test_counts_add_up(rows_a, rows_b):
    schema = {"k": pl.Int64, "v": pl.Int64}
    a, b = (
        pl.DataFrame(rows_a, schema=schema, orient="row"),
        pl.DataFrame(rows_b, schema=schema, orient="row"),
    )
    found = cl.diff(a, b, key="k")
    assert found.unchanged + found.changed.height + found.removed.height == a.height
    assert found.unchanged + found.changed.height + found.added.height == b.height
    assert found.equal == same_view(a, b) == (sorted(rows_a) == sorted(rows_b))
