"""Upcasting on Spark: a history over three versions folds to the newest version's states.

The history of ``tests/versions.py`` (``receivedAtDepot`` written in v0, v1 and v2: a field
renamed, a field added; an old ``transferred`` event split in two) is handed to a real Spark
(local[2]); each bucket calls the local functions, which upcast where rows are decoded, so
Spark's answers must equal the local answers over the same history written in the newest
version only. Every test has a timeout (SPARK.md, pitfall 8).
"""

from __future__ import annotations

import polars as pl
import pytest

import concursus_lab as cl
import concursus_lab.spark as cls  # needs the spark extra, which the test command installs
from tests.versions import declare, histories, where

pytestmark = [
    pytest.mark.spark,
    pytest.mark.slow,
    pytest.mark.timeout(300),
    pytest.mark.filterwarnings("ignore:distutils Version classes:DeprecationWarning"),
]

TYPES = declare()


@pytest.fixture(scope="module")
def spark():
    session = cls.session("local[2]", cassandra=None, memory="1g")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def written(spark):
    stored, newest = histories(parcels=80, seed=11)
    return stored, newest, cls.from_polars(stored, spark)


@pytest.mark.parametrize(
    ("at", "known_at"),
    [(None, None), ("2026-03-01 14:00", "2026-03-01 20:00")],
)
def test_state_at_on_spark_is_the_newest_version_s_states(written, at, known_at):
    stored, newest, on_spark = written
    got = cls.state_at(on_spark, where, types=TYPES, at=at, known_at=known_at, buckets=3)
    expected = cl.state_at(newest, where, types=TYPES, at=at, known_at=known_at)
    assert expected.frame.height > 20
    assert got.to_polars().sort("aggregate_id").equals(expected.frame.sort("aggregate_id"))
    local = cl.state_at(stored, where, types=TYPES, at=at, known_at=known_at)
    assert got.counts == local.counts
    assert got.counts["split"] > 0 and got.counts["upcast"] > got.counts["split"]


def test_a_keyed_fold_and_latest_on_spark_see_the_upcast_events(written):
    _, newest, on_spark = written

    def received(count, event):
        return count + (type(event).__name__ == "ReceivedAtDepot")

    per_depot = cl.fold(received, types=TYPES, key="depotId", initial=0)
    got = cls.project(on_spark, per_depot, buckets=3).to_polars()
    assert got.equals(cl.project(newest, per_depot))
    latest = cls.latest(on_spark, types=TYPES, buckets=3).to_polars()
    assert latest.equals(cl.latest(newest, types=TYPES))
    assert {"depotId", "priority", "truckId"} <= set(latest.columns)
    assert pl.Series(latest["priority"]).max() == 2
