"""A read's raw batches, decoded in the bucket that answers (one pass), give the events the
read's ``.frame`` holds: the same columns, dtypes and rows as the general road (decode, hand
to Spark, take back), and a Kafka bucket counts the events whose record key is not their
aggregate id, so that a question is asked again the general way instead of answered wrong.
"""

from __future__ import annotations

import functools
import random

import polars as pl
import pyarrow as pa
import pytest

pytest.importorskip("pyspark")
pytest.importorskip("cassandra")

from concursus_lab.spark import cassandra, kafka
from concursus_lab.spark.arrow import batches_of, canonical, from_batches
from concursus_lab.spark.kafka_partitions import default_partitions
from concursus_lab.spark.one_pass import MISPLACED, NOT_WHOLE, keyed
from tests.unit.test_spark_cassandra_cells import ROWS, connector_batch
from tests.unit.test_spark_kafka_arrow import polls


def through_spark(frame: pl.DataFrame) -> pl.DataFrame:
    """What the general road's bucket sees: the frame as Spark hands it back."""
    return canonical(from_batches(batches_of(frame)))


def keyed_by_aggregate(batch: pa.RecordBatch, placed: bool = True) -> pa.RecordBatch:
    """``batch`` with each record keyed by its first event's aggregate id, as appended, and
    (``placed``) in the partition of 3 the default partitioner gives that key."""
    events = kafka.decode(batch).filter(pl.col("reason").is_null())
    ids = dict(zip(events["kafka_offset"], events["aggregate_id"], strict=True))
    keys = pa.array([ids.get(o, "").encode() for o in batch.column("offset").to_pylist()])
    batch = batch.set_column(0, "key", keys)
    if not placed:
        return batch
    where = pa.array(default_partitions(keys, 3).astype("int32"))
    return batch.set_column(batch.schema.get_field_index("partition"), "partition", where)


def one_pass(batches, as_read=True, aggregate_type=None):
    kept = functools.partial(kafka._kept, aggregate_type, None)
    return kafka._one_pass(kept, 3, batches, as_read)


@pytest.mark.parametrize("as_read", [True, False])
def test_kafka_records_keyed_by_aggregate_decode_to_the_read_s_events(as_read):
    _, batch = polls()
    batch = keyed_by_aggregate(batch.slice(0, 20))
    general = kafka.decode(batch).filter(pl.col("reason").is_null()).drop("raw", "reason")
    events, facts = one_pass([batch.slice(0, 7), batch.slice(7)], as_read)
    assert events.height == general.height > 5
    assert events.equals(through_spark(general))
    assert facts == {MISPLACED if as_read else NOT_WHOLE: 0}


def test_shuffled_records_keyed_otherwise_are_counted_not_whole():
    _, batch = polls()  # keys k0-1, ... or none: not the events' aggregate ids
    events, facts = one_pass([batch], as_read=False)
    assert facts[NOT_WHOLE] == events.height > 30


def test_records_as_read_in_other_partitions_than_their_aggregate_s_are_counted():
    _, batch = polls()
    events, facts = one_pass([keyed_by_aggregate(batch.slice(0, 20), placed=False)])
    assert 0 < facts[MISPLACED] < events.height


def test_a_kafka_bucket_keeps_only_the_read_s_aggregate_type():
    _, batch = polls()
    events, facts = one_pass([keyed_by_aggregate(batch)], aggregate_type="nothing")
    assert events.height == 0 and facts == {MISPLACED: 0}
    assert list(events.schema) == list(through_spark(events).schema)


def test_one_wrong_key_is_found_with_or_without_a_join():
    events = pl.DataFrame({"kafka_offset": [1, 2, 3], "aggregate_id": ["a", "b", "c"]})
    keys = pl.DataFrame({"kafka_offset": [1, 2, 3], "key": [b"a", b"x", None]})
    assert keyed(events, keys, ["kafka_offset"]) == 2  # in order: no join
    assert keyed(events.reverse(), keys, ["kafka_offset"]) == 2
    assert keyed(events.head(2), keys, ["kafka_offset"]) == 1
    assert keyed(events.clear(), keys, ["kafka_offset"]) == 0


@pytest.mark.parametrize("partitions", [1, 3, 7])
def test_keys_are_placed_as_kafka_s_default_partitioner_places_them(partitions):
    from kafka.partitioner.default import murmur2

    rng = random.Random(partitions)
    keys = [bytes(rng.randrange(256) for _ in range(rng.randrange(23))) for _ in range(800)]
    keys += [None] + [f"parcel-{i}".encode() for i in range(300)]
    want = [-1 if k is None else (murmur2(k) & 0x7FFFFFFF) % partitions for k in keys]
    column = pa.array(keys, pa.binary())
    assert default_partitions(column, partitions).tolist() == want
    assert default_partitions(column.slice(5, 400), partitions).tolist() == want[5:405]


def test_cassandra_rows_decode_to_the_read_s_events():
    batch = connector_batch(ROWS)
    general = cassandra.decode(batch)[0].drop("reason")
    events, facts = cassandra._one_pass([batch.slice(0, 30), batch.slice(30)], True)
    assert facts == {}
    assert events.height == general.height == len(ROWS) - 4  # rows 44 to 47 quarantined
    assert events.equals(through_spark(general))
