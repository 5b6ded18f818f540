"""A large frame in memory is answered by ``state_at`` in hash buckets of itself (``latest``: at
once) (issue 34: the working memory beside the frame is a bucket's), and the answer is exactly the
one folded at once: rows, their order, columns, dtypes, counts and states. The threshold is
forced low here so that hand-made frames cross it."""

from __future__ import annotations

import dataclasses
import re

import polars as pl
import pytest

import concursus_lab as cl
from concursus_lab.exceptions import SchemaError
from concursus_lab.sample import parcel_state, parcel_types
from concursus_lab.timetravel import buckets
from concursus_lab.timetravel.state_files import TAIL


@pytest.fixture(scope="module")
def history() -> pl.DataFrame:
    frame = cl.sample.parcels(400, seed=31)  # repeats, late and out-of-order deliveries
    broken = frame.head(3).with_columns(
        pl.lit("noSuchEvent").alias("name"), pl.lit("parcel-broken").alias("aggregate_id")
    )
    truck = frame.head(2).with_columns(pl.lit("truck").alias("aggregate_type"))
    return pl.concat([frame, broken, truck])


@pytest.fixture
def low(monkeypatch):
    """Frames of 1,000 rows or more in buckets of 300 rows: ``history`` in 5 or more."""
    monkeypatch.setattr(buckets, "AUTO_ROWS", 1000)
    monkeypatch.setattr(buckets, "ROWS_PER_BUCKET", 300)


def bar_total(err: str) -> int:
    """The bucket count a finished progress bar shows (``bucket n/n: ... rows``)."""
    done = re.findall(r"bucket (\d+)/(\d+):", err)
    assert done and done[-1][0] == done[-1][1], err
    return int(done[-1][1])


@dataclasses.dataclass
class Seen:
    status: str
    times: int


def unannotated(state, event):  # no return annotation: an empty bucket names no fields
    return Seen(type(event).__name__, 1 if state is None else state.times + 1)


@pytest.mark.parametrize(
    "reducer, question",
    [
        (parcel_state, {}),
        (parcel_state, {"at": "2026-03-06", "known_at": "2026-03-07", "duplicates": "first"}),
        (unannotated, {}),
    ],
)
def test_state_at_of_a_large_frame_is_folded_in_buckets_with_the_same_answer(
    history, low, capsys, reducer, question
):
    with pytest.MonkeyPatch.context() as high:
        high.setattr(buckets, "AUTO_ROWS", 10**9)
        expected = cl.state_at(history, reducer, types=parcel_types, progress=True, **question)
    assert capsys.readouterr().err == ""  # at once: no bar of buckets
    got = cl.state_at(history, reducer, types=parcel_types, progress=True, **question)
    assert bar_total(capsys.readouterr().err) == -(-history.height // 300)
    assert got.frame.schema == expected.frame.schema
    assert got.frame.equals(expected.frame)
    assert got.counts == expected.counts and expected.counts["undecodable"]
    assert list(got.states.items()) == list(expected.states.items())
    assert got.undecodable.schema == expected.undecodable.schema
    key = ["aggregate_id", "event_timestamp", "stream_id"]
    assert got.undecodable.sort(key).equals(expected.undecodable.sort(key))


def test_an_empty_bucket_adds_no_column(history):
    ids = history["aggregate_id"].unique().sort()[:4].to_list()
    few = history.filter(pl.col("aggregate_id").is_in(ids))
    expected = cl.state_at(few, unannotated, types=parcel_types)
    assert expected.frame.columns == ["aggregate_id", "status", "times", *TAIL]
    got = cl.state_at(few, unannotated, types=parcel_types, buckets=12, progress=False)
    assert got.frame.equals(expected.frame)  # 4 aggregates: 8 buckets or more hold none


def test_latest_of_a_large_frame_is_answered_at_once(history, low, capsys):
    """``latest`` keeps a frame in memory whole, however large (in buckets of itself it cost
    30-45% more CPU at 10M events for a 13% lower peak); ``buckets=`` still splits it."""
    expected = cl.latest(history, buckets=4, progress=True)
    assert bar_total(capsys.readouterr().err) == 4
    got = cl.latest(history, progress=True)
    assert capsys.readouterr().err == ""  # no bar: no buckets
    assert got.schema == expected.schema
    assert got.equals(expected)


def test_buckets_given_win_over_the_threshold(history, low, capsys):
    cl.state_at(history, parcel_state, types=parcel_types, buckets=2, progress=True)
    assert bar_total(capsys.readouterr().err) == 2
    cl.latest(history, buckets=3, progress=True)
    assert bar_total(capsys.readouterr().err) == 3


def test_a_large_frame_that_is_not_canonical_is_named_as_at_once(history, low):
    broken = history.drop("name")
    with pytest.raises(SchemaError, match="column `name` is missing"):
        cl.state_at(broken, parcel_state, types=parcel_types, progress=False)
    with pytest.raises(SchemaError, match="column `name` is missing"):
        cl.latest(broken, progress=False)
    trucks = history.filter(pl.col("aggregate_type") == "truck")
    trucks = pl.concat([trucks] * 600)  # over the threshold, no parcel event
    with pytest.raises(SchemaError, match=r"its aggregate types are 'truck' \(1,200 rows\)"):
        cl.state_at(trucks, parcel_state, types=parcel_types, progress=False)
