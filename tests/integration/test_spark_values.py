"""Spark's ``latest`` and ``index`` keep each parameter value's JSON kind as the local ones do
(issue 28, item 5), also when the buckets of whole aggregates see different kinds."""

from __future__ import annotations

import polars as pl
import pytest

import concursus_lab as cl
import concursus_lab.spark as cls  # needs the spark extra, which the test command installs
from tests.contract import event, frame

pytestmark = [
    pytest.mark.spark,
    pytest.mark.slow,
    pytest.mark.timeout(300),
    # pyspark 3.5 checks pandas' and pyarrow's versions with distutils' classes
    pytest.mark.filterwarnings("ignore:distutils Version classes:DeprecationWarning"),
]


@pytest.fixture(scope="module")
def spark():
    session = cls.session("local[2]", cassandra=None, memory="1g")
    yield session
    session.stop()


def _history(values: list[str]) -> pl.DataFrame:
    """One parcel per value of ``v`` (p00, p01, ...), beside a parameter ``w`` that only
    the first parcel has, and a ``z`` that is only ever null."""
    events = [event(f"p{i:02d}", 10, 20, parameters=f'{{"v":{v}}}') for i, v in enumerate(values)]
    events.append(event("p00", 11, 21, parameters='{"w":[1,{"b":2.50}],"z":null}'))
    return frame(*events)


HISTORIES = {
    # a handful of parcels: one or two buckets see both kinds
    "object and string": ['{"a":1}', '"{1}"'],
    "integer, float, string": ["1", "1.0", '"1"'],
    "objects and scalars": ['{"a":1}', "1", "true", '"[1, 2]"', "[1,2]"],
    "big integers": ["12345678901234567890123", "1", "-9223372036854775809"],
    # one string among many integers, one float among many integers: most buckets see
    # integers only, so they are asked again for the JSON texts
    "one string among integers": ['"7"'] + [str(i) for i in range(40)],
    "one float among integers": ["7.0"] + [str(i) for i in range(40)],
    # one kind everywhere: typed columns, no second pass
    "integers": [str(i) for i in range(40)],
    "strings": [f'"s{i}"' for i in range(40)],
}


@pytest.mark.parametrize("name", list(HISTORIES))
def test_latest_and_index_on_spark_keep_the_kinds_as_locally(spark, name):
    local = _history(HISTORIES[name])
    events = cls.from_polars(local, spark)
    expected = cl.latest(local)
    got = cls.latest(events, buckets=4).to_polars()
    assert got.schema == expected.schema
    assert got.equals(expected), f"\n{got}\n!=\n{expected}"
    for parameter in ("v", "w"):
        expected = cl.index(local, parameter)
        answer = cls.index(events, parameter, buckets=4)
        got = answer.to_polars()
        assert got.schema == expected.schema
        assert got.equals(expected), f"\n{got}\n!=\n{expected}"
        # the Spark DataFrame itself holds the same values (as Spark types them)
        rows = sorted((r["value"], list(r["aggregate_ids"])) for r in answer.frame.collect())
        assert rows == sorted(expected.rows())
