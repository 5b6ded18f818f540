"""cl.chaos and cl.bisect: order-dependent views are caught and shrunk; sound ones pass."""

from __future__ import annotations

import dataclasses

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

import concursus_lab as cl
from concursus_lab.exceptions import SchemaError
from concursus_lab.projections.chaos import redeliver
from concursus_lab.projections.diff import same_view
from concursus_lab.projections.shrink import ddmin
from concursus_lab.sample.parcels import Delivered, DeliveryFailed, LoadedOntoTruck, parcel_types


@pytest.fixture(scope="module")
def deliveries() -> pl.DataFrame:
    return cl.sample.parcels(300, seed=11)


def last_arrival(events: pl.DataFrame) -> pl.DataFrame:
    """Order-dependent: each parcel's status is the last message that *arrived*."""
    return events.group_by("aggregate_id").agg(pl.col("name").last().alias("status"))


def last_happened(events: pl.DataFrame) -> pl.DataFrame:
    """Not order-dependent: the last event that *happened*."""
    return (
        events.sort("event_timestamp", "stream_id")
        .group_by("aggregate_id")
        .agg(pl.col("name").last().alias("status"))
    )


@cl.projection(duplicates="keep", key="name")
def messages(events: pl.DataFrame) -> pl.DataFrame:
    """Repeat-dependent: counts deliveries, not events."""
    return events.group_by("name").agg(pl.len().alias("count"))


@dataclasses.dataclass(frozen=True)
class Load:
    on_board: int = 0
    delivered: int = 0


def load(state: Load, event) -> Load:
    match event:
        case LoadedOntoTruck():
            return dataclasses.replace(state, on_board=state.on_board + 1)
        case Delivered():
            return Load(state.on_board - 1, state.delivered + 1)
        case DeliveryFailed():
            return dataclasses.replace(state, on_board=state.on_board - 1)
    return state


# -------------------------------------------------------------------------------- chaos


@pytest.mark.parametrize("shuffle", ["within-lateness", "any"])
def test_an_order_dependent_view_is_caught_and_shrunk_to_a_few_events(deliveries, shuffle):
    found = cl.chaos(deliveries, last_arrival, runs=10, shuffle=shuffle, seed=3, key="aggregate_id")
    assert not found.stable
    assert found.minimal
    assert 2 <= found.counterexample.height <= 3
    assert found.counterexample["aggregate_id"].n_unique() == 1
    assert found.shrunk_from == deliveries.unique(cl.IDENTITY).height
    # the two deliveries it shows really do give the two views it shows
    first, second = found.redeliveries
    assert cl.project(first, last_arrival).equals(found.views["original"])
    assert cl.project(second, last_arrival).equals(found.views["redelivery"])
    assert found.diff.changed_columns() == {"status": 1}
    assert not same_view(found.views["original"], found.views["redelivery"])
    text = str(found)
    assert text.startswith(f"last_arrival: unstable: redelivery {found.failed_run} of 10")
    assert "minimal" in text


def test_repeated_deliveries_are_caught_and_shrunk_to_one_event(deliveries):
    found = cl.chaos(deliveries, messages, runs=5, seed=1)
    assert not found.stable
    assert found.counterexample.height == 1
    first, second = found.redeliveries
    assert sorted([first.height, second.height]) == [1, 2]
    assert found.diff.changed_columns() == {"count": 1}


@pytest.mark.parametrize("shuffle", ["within-lateness", "any"])
def test_sound_views_pass(deliveries, shuffle):
    for projection in (
        last_happened,
        cl.projection(messages.function, key="name"),  # the same count, one per event
        cl.fold(load, types=parcel_types, key="truckId", initial=Load()),
    ):
        found = cl.chaos(
            deliveries, projection, runs=8, shuffle=shuffle, duplicate_rate=0.05, seed=5
        )
        assert found.stable, str(found)
        assert found.counterexample.height == 0 and found.diff is None
    assert str(found) == (
        f"load: stable: the same view in all 8 redeliveries ({_how(shuffle)}, 5.0% repeated, "
        "seed 5)"
    )


def _how(shuffle: str) -> str:
    return (
        "shuffled within the observed lateness"
        if shuffle == "within-lateness"
        else "shuffled freely"
    )


def test_chaos_is_deterministic_for_a_seed(deliveries):
    one = cl.chaos(deliveries, last_arrival, runs=10, seed=7)
    two = cl.chaos(deliveries, last_arrival, runs=10, seed=7)
    assert str(one) == str(two)
    assert one.counterexample.equals(two.counterexample)
    assert all(a.equals(b) for a, b in zip(one.redeliveries, two.redeliveries, strict=True))


def test_a_small_test_budget_stops_shrinking_and_says_so(deliveries):
    found = cl.chaos(deliveries, last_arrival, runs=10, seed=7, max_tests=3)
    assert not found.stable and not found.minimal and found.tests <= 4
    assert "not fully shrunk: max_tests reached" in str(found)


def test_chaos_arguments_are_checked(deliveries):
    with pytest.raises(SchemaError, match="`shuffle` must be one of"):
        cl.chaos(deliveries, last_arrival, shuffle="random")
    with pytest.raises(SchemaError, match="`duplicate_rate` must be a share"):
        cl.chaos(deliveries, last_arrival, duplicate_rate=2)
    with pytest.raises(SchemaError, match="`runs` must be a positive int"):
        cl.chaos(deliveries, last_arrival, runs=0)


def test_the_events_are_not_changed(deliveries):
    before = deliveries.clone()
    cl.chaos(deliveries, last_arrival, runs=3, seed=1)
    cl.bisect(deliveries, last_arrival, last_happened, exact=False)
    assert deliveries.equals(before)


def test_a_redelivery_keeps_every_event_and_stays_within_the_lateness_seen(deliveries):
    distinct = deliveries.unique(cl.IDENTITY, keep="last", maintain_order=True)
    lateness = (
        distinct["processing_timestamp"].dt.epoch("us") - distinct["event_timestamp"].dt.epoch("us")
    ).to_numpy()
    again = redeliver(distinct, np.random.default_rng(0), "within-lateness", 0.1, lateness)
    assert again["processing_timestamp"].is_sorted()
    assert again.unique(cl.IDENTITY).height == distinct.height
    assert 0.05 * distinct.height < again.height - distinct.height < 0.15 * distinct.height
    first = again.unique(cl.IDENTITY, keep="first", maintain_order=True)
    new_lateness = first["processing_timestamp"].dt.epoch("us") - first["event_timestamp"].dt.epoch(
        "us"
    )
    assert new_lateness.min() >= lateness.min() - 1000
    assert new_lateness.max() <= lateness.max()
    assert cl.frame.processing_time(again["processing_id"]).equals(again["processing_timestamp"])
    shuffled = redeliver(distinct, np.random.default_rng(0), "any", 0.0, lateness)
    assert sorted(shuffled["processing_timestamp"].to_list()) == sorted(
        distinct["processing_timestamp"].to_list()
    )


@given(st.sets(st.integers(0, 40), min_size=1, max_size=4), st.integers(5, 60))
def test_ddmin_finds_exactly_the_units_that_matter(needed, size):
    units = list(range(max(size, max(needed) + 1)))
    kept, done = ddmin(units, lambda chosen: needed <= set(chosen), lambda: False)
    assert done and set(kept) == needed


# ------------------------------------------------------------------------------- bisect


def test_bisect_finds_the_first_repeated_delivery(deliveries):
    every = cl.projection(lambda f: f.group_by("name").len(), duplicates="keep", key="name")
    once = cl.projection(lambda f: f.group_by("name").len(), key="name")
    found = cl.bisect(deliveries, every, once, names=("v1", "v2"))
    arrival = deliveries.sort("processing_timestamp", maintain_order=True)
    repeated = arrival.select(pl.struct(cl.IDENTITY).is_first_distinct().not_()).to_series()
    first_repeat = int(repeated.arg_true()[0])
    assert found.exact and found.index == first_repeat
    assert found.event.row(0) == arrival.row(first_repeat)
    prefix = arrival.head(first_repeat + 1)
    assert same_view(found.views["v1"], cl.project(prefix, every), ["name"])
    assert found.diff.changed.height == 1
    quick = cl.bisect(deliveries, every, once, exact=False)
    assert quick.index == first_repeat and not quick.exact
    assert quick.evaluations < found.evaluations


def height(events: pl.DataFrame) -> pl.DataFrame:
    return events.select(pl.len().alias("n"))


def glitch_at(*sizes: int):
    """Agrees with ``height`` except on histories of these sizes, and from 10 on."""

    def glitchy(events: pl.DataFrame) -> pl.DataFrame:
        n = events.height
        return events.select(pl.lit(-1 if n in sizes or n >= 10 else n).alias("n"))

    return glitchy


def test_bisect_is_exact_when_disagreement_comes_and_goes():
    events = cl.sample.fixture("messy")  # 17 deliveries
    glitchy = glitch_at(3)  # disagree at 3, agree again 4..9, disagree from 10
    found = cl.bisect(events, height, glitchy, names=("a", "b"))
    assert found.exact and found.index == 2
    quick = cl.bisect(events, height, glitchy, exact=False)
    assert quick.index == 9 and not quick.exact  # a real transition, but not the first
    assert "earlier prefixes not all checked" in str(quick)


def test_bisect_checks_every_prefix_before_saying_they_agree():
    events = cl.sample.fixture("messy")

    def glitchy(events: pl.DataFrame) -> pl.DataFrame:  # disagree at 3 only
        return events.select(pl.lit(-1 if events.height == 3 else events.height).alias("n"))

    assert cl.bisect(events, height, glitchy).index == 2
    quick = cl.bisect(events, height, glitchy, exact=False)
    assert quick.agree and str(quick).startswith("height and glitchy agree at every prefix the")
    same = cl.bisect(events, height, height)
    assert same.agree and same.exact and same.evaluations == 18


def test_bisect_reports_views_that_differ_from_the_start():
    events = cl.sample.fixture("messy")
    found = cl.bisect(events, height, lambda f: f.select(pl.len().alias("m")))
    assert found.index == -1 and found.event.height == 0
    assert str(found).startswith("a and b disagree on an empty history")


def test_bisect_compares_folds_by_their_key():
    events = cl.sample.fixture("messy")
    keep = cl.fold(load, types=parcel_types, key="truckId", initial=Load(), duplicates="keep")
    last = cl.fold(load, types=parcel_types, key="truckId", initial=Load())
    found = cl.bisect(events, last, keep, names=("last", "keep"))
    assert found.diff.key == ("truckId",)
    assert found.event["name"].item() == "delivered"  # parcel-C's repeated delivery
    assert found.diff.changed.select("truckId", "differs").rows() == [
        ("CAM-1", ["on_board", "delivered", "events_applied"])
    ]


def test_bisect_compares_the_columns_both_versions_share(deliveries):
    """A v2 that adds a column, the commonest thing a v2 does, is compared with v1 on the
    columns both have, as cl.diff compares them; the new column is named, not a difference."""
    v1 = cl.projection(lambda f: f.group_by("name").len(), key="name")

    def v2_view(f: pl.DataFrame) -> pl.DataFrame:
        return f.group_by("name").agg(pl.len(), pl.col("aggregate_id").n_unique().alias("ids"))

    v2 = cl.projection(v2_view, key="name")
    same = cl.bisect(deliveries, v1, v2, names=("v1", "v2"))
    assert same.agree and same.exact
    assert str(same).endswith("; columns only in v2: ids, not compared")
    counts_repeats = cl.projection(v2_view, key="name", duplicates="keep")
    found = cl.bisect(deliveries, v1, counts_repeats, names=("v1", "v2"))
    arrival = deliveries.sort("processing_timestamp", maintain_order=True)
    repeated = arrival.select(pl.struct(cl.IDENTITY).is_first_distinct().not_()).to_series()
    assert found.exact and found.index == int(repeated.arg_true()[0])
    assert found.diff.changed["differs"].to_list() == [["len"]]
    # whole rows (no key): the rows are compared on the shared columns too
    whole = cl.bisect(
        deliveries,
        lambda f: f.group_by("name").len(),
        lambda f: v2_view(f).select("ids", "name", "len"),
    )
    assert whole.agree and whole.diff.unchanged == whole.views["a"].height
    assert same_view(same.views["v1"], same.views["v2"])
    assert same_view(same.views["v1"], same.views["v2"], ["name"])
    assert not same_view(same.views["v1"], same.views["v2"].select("ids"))  # nothing shared


def first_arrival_column(events: pl.DataFrame) -> pl.DataFrame:
    """Order-dependent in its *columns*: the name of the first event to arrive becomes a
    column (rows and shared columns stay the same whatever the order)."""
    first = events.sort("processing_timestamp")["name"][0]
    return events.group_by("aggregate_id").len("events").with_columns(pl.lit(True).alias(first))


def test_a_view_whose_columns_change_with_the_delivery_order_is_caught(deliveries):
    # the columns both views share are equal, so comparing on shared columns alone called
    # this projection stable; a redelivery that changes the view's column set is a change
    found = cl.chaos(deliveries, first_arrival_column, runs=20, seed=3)
    assert not found.stable
    original, redelivered = found.views["original"], found.views["redelivery"]
    assert set(original.columns) != set(redelivered.columns)


def test_same_view_can_require_the_same_columns():
    a = pl.DataFrame({"k": [1, 2], "x": [1, 1]})
    b = a.with_columns(y=pl.lit(0))
    assert same_view(a, b)  # the rule of diff and bisect: the columns both have
    assert not same_view(a, b, same_columns=True)
    assert not same_view(a, b, key=["k"], same_columns=True)
    assert same_view(a, b.select("x", "k"), same_columns=True)  # order of columns is free
