"""States as columns: each shape by hand, then the property the two-process fold relies on:
extracting two parts and merging them gives exactly the columns of the whole."""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from concursus_lab.timetravel.state_columns import extract, merge, state_columns, to_columns


@dataclasses.dataclass(frozen=True)
class Parcel:
    status: str
    attempts: int
    aggregate_id: str = "clash"  # a field named like a result column


class Where(NamedTuple):
    status: str
    place: str | None


def test_a_dataclass_is_flattened_and_a_reserved_name_prefixed():
    columns = state_columns([Parcel("on truck", 1), None, Parcel("delivered", 2)])
    assert list(columns) == ["status", "attempts", "state_aggregate_id"]
    assert columns["status"].to_list() == ["on truck", None, "delivered"]
    assert columns["attempts"].dtype == pl.Int64


def test_a_named_tuple_is_flattened():
    columns = state_columns([Where("at depot", "Lewisham"), Where("failed", None)])
    assert columns["place"].to_list() == ["Lewisham", None]


def test_tuples_of_one_length_become_one_list_column():
    column = state_columns([("at depot", "Lewisham"), ("on truck", None)])["state"]
    assert column.dtype == pl.List(pl.String)
    assert column.to_list() == [["at depot", "Lewisham"], ["on truck", None]]
    assert state_columns([[1, 2.5], [3, 4]])["state"].dtype == pl.List(pl.Float64)
    assert state_columns([(None,), (None,)])["state"].to_list() == [[None], [None]]


def test_anything_else_is_one_state_column():
    assert state_columns([{"n": 1}, None])["state"].to_list() == [{"n": 1}, None]
    assert state_columns([(1, 2), (3,)])["state"].dtype == pl.List(pl.Int64)
    mixed = state_columns([Parcel("a", 1), Where("b", None)])["state"]
    assert mixed.dtype == pl.Object and mixed.to_list()[1] == Where("b", None)
    assert state_columns([None, None])["state"].to_list() == [None, None]


STATES = st.one_of(
    st.none(),
    st.builds(Parcel, st.sampled_from(["a", "b"]), st.integers(0, 3)),
    st.builds(Where, st.sampled_from(["a", "b"]), st.none() | st.just("x")),
    st.tuples(st.sampled_from(["a", "b"]), st.none() | st.just("x")),
    st.tuples(st.integers(0, 3), st.integers(0, 3) | st.floats(0, 1)),
    st.tuples(st.integers(0, 3)),
    st.integers(0, 3),
    st.text(max_size=3),
)


def _same(one: dict[str, pl.Series], two: dict[str, pl.Series]) -> bool:
    if list(one) != list(two):
        return False
    return all(one[k].dtype == two[k].dtype and one[k].to_list() == two[k].to_list() for k in one)


@settings(max_examples=300, deadline=None)
@given(first=st.lists(STATES, max_size=6), second=st.lists(STATES, max_size=6))
def test_merging_two_extractions_gives_the_columns_of_the_whole(first, second):
    merged = merge(extract(first), extract(second))
    whole = state_columns(first + second)
    if merged is not None:
        assert _same(to_columns(merged), whole)
    else:  # only a difference of shape refuses a merge
        assert extract(first).shape != extract(second).shape
