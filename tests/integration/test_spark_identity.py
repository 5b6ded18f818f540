"""Identity on Spark: the same winner as locally, conflicts counted and warned on the driver.

Issue 28.6: two deliveries of one identity processed at the same instant, in a frame whose
rows are not in offset order, went to the later row locally and to the lower offset on
Spark. One rule now decides both (``frame/identity.py``): processing time, then Kafka's
(partition, offset) when the frame has them, then row.
"""

from __future__ import annotations

import polars as pl
import pytest

import concursus_lab as cl
import concursus_lab.spark as cls  # needs the spark extra, which the test command installs
from concursus_lab.exceptions import ConflictingDeliveries
from tests.unit.test_identity import (
    Created,
    Paid,
    created_and_paid,
    ev,
    names,
    offsets_out_of_order,
    orders,
)

pytestmark = [
    pytest.mark.spark,
    pytest.mark.slow,
    pytest.mark.timeout(300),
    pytest.mark.filterwarnings("ignore:distutils Version classes:DeprecationWarning"),
]


def amount(state, event):
    return {"name": type(event).__name__, "amount": event.amount}


@pytest.fixture(scope="module")
def spark(cassandra_address):
    session = cls.session("local[2]", cassandra=cassandra_address, memory="1g")
    yield session
    session.stop()


def _both(frame: pl.DataFrame, spark, reducer=amount, **options):
    """(local StateAt, Spark's frame collected, Spark's StateAt, the warnings Spark gave) of
    a frame whose deliveries conflict."""
    with pytest.warns(ConflictingDeliveries):
        local = cl.state_at(frame, reducer, types=orders, **options)
    with pytest.warns(ConflictingDeliveries) as caught:
        remote = cls.state_at(cls.from_polars(frame, spark), reducer, types=orders, **options)
        got = remote.to_polars()
    return local, got, remote, caught


@pytest.mark.parametrize("duplicates", ["last", "first"])
@pytest.mark.parametrize("kafka", [True, False], ids=["offsets", "rows"])
def test_local_and_spark_pick_the_same_delivery_of_a_tie(spark, duplicates, kafka):
    frame = offsets_out_of_order()
    if not kafka:
        frame = frame.drop("kafka_partition", "kafka_offset")
    local, got, _, _ = _both(frame, spark, duplicates=duplicates)
    assert got.equals(local.frame), f"{got}\n!=\n{local.frame}"
    # by offset the later delivery (amount 2) is last; by row, the later row (amount 1)
    expected = {("last", True): 2, ("first", True): 1, ("last", False): 1, ("first", False): 2}
    assert got["state"].struct.field("amount").to_list() == [expected[duplicates, kafka]]


def test_spark_counts_and_warns_of_conflicts_on_the_driver(spark):
    local, _, remote, caught = _both(created_and_paid(), spark, reducer=names)
    assert remote.counts == local.counts and remote.counts["conflicting"] == 1
    ours = [w for w in caught if issubclass(w.category, ConflictingDeliveries)]
    assert len(ours) == 1 and ours[0].filename == __file__
    assert "order 'o1'" in str(ours[0].message)


def test_a_sequence_reaches_spark(spark):
    frame = orders.encode(
        [ev(Created, 1), ev(Paid, 1, minute=0, stream="b"), ev(Paid, 2, minute=0, stream="a")]
    ).with_columns(sequence=pl.Series([1, 2, 3], dtype=pl.Int64))
    local = cl.state_at(frame, names, types=orders)
    remote = cls.state_at(cls.from_polars(frame, spark), names, types=orders)
    assert remote.to_polars().equals(local.frame)
    assert remote.counts == local.counts and local.counts["applied"] == 3


def ids(frame):
    """A view a polars frame and a Spark DataFrame both answer: the aggregates' ids."""
    return frame.select("aggregate_id")


BY_ORDER = cl.fold(names, types=orders, key="aggregate_id")

#: A question each way: (locally, on Spark); each resolves duplicates.
QUESTIONS = {
    "latest": (cl.latest, lambda events: cls.latest(events, buckets=4)),
    "lateness": (cl.lateness, lambda events: cls.lateness(events, buckets=4)),
    "fold": (
        lambda events: cl.project(events, BY_ORDER),
        lambda events: cls.project(events, BY_ORDER, buckets=4),
    ),
    "view": (
        lambda events: cl.project(events, ids),
        lambda events: cls.project(events, ids, buckets=4),
    ),
}


@pytest.mark.parametrize("question", list(QUESTIONS))
def test_every_spark_question_that_resolves_duplicates_warns_once_as_locally(spark, question):
    # two orders' conflicts, in whichever buckets they land: one warning adds them up
    frame = pl.concat(
        [created_and_paid(), created_and_paid().with_columns(aggregate_id=pl.lit("o2"))]
    )
    locally, on_spark = QUESTIONS[question]
    with pytest.warns(ConflictingDeliveries) as local:
        expected = locally(frame)
    with pytest.warns(ConflictingDeliveries) as caught:
        got = on_spark(cls.from_polars(frame, spark)).to_polars()
    ours = [w for w in caught if issubclass(w.category, ConflictingDeliveries)]
    assert len(ours) == 1 and ours[0].filename == __file__
    assert str(ours[0].message) == str(local[0].message)
    assert "2 identities" in str(ours[0].message)
    key = expected.columns[0]
    assert got.sort(key).equals(expected.sort(key)), f"{got}\n!=\n{expected}"
