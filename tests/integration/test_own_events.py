"""The same orders in six shapes give one history (issue 30's "done when").

A shop's order export (``cl.sample.orders_export``: naive London times to the minute,
re-exports, one corrected row) is kept as its teams would keep it: a pandas frame, a CSV, a
Parquet file, an NDJSON file, a Cassandra table of the team's own layout (typed times, one row
per order and event number: a re-export overwrites) and a Kafka topic of JSON records (every
delivery kept). Each is read through its own mapping; the canonical frames (every duplicate
resolved, after sorting) and the states at a time on both axes must be equal.
"""

from __future__ import annotations

import uuid

import orjson
import polars as pl
import pytest

import concursus_lab as cl
from concursus_lab.sample import ORDERS
from tests.integration.test_own_cassandra import ORDERS as TABLE_ORDERS
from tests.integration.test_own_cassandra import _plain_session, write_orders

pytestmark = [pytest.mark.cassandra, pytest.mark.kafka]

KEY = ["aggregate_id", "sequence"]


@pytest.fixture(scope="module")
def export() -> pl.DataFrame:
    return cl.sample.orders_export(150, seed=30)


@pytest.fixture(scope="module")
def files(export, tmp_path_factory):
    folder = tmp_path_factory.mktemp("orders")
    export.write_csv(folder / "orders.csv")
    export.write_parquet(folder / "orders.parquet")
    export.write_ndjson(folder / "orders.ndjson")
    return folder


@pytest.fixture(scope="module")
def table(export, cassandra_address):
    plain = _plain_session(cassandra_address)
    keyspace = f"cl_test_{uuid.uuid4().hex[:12]}"
    plain.execute(
        f"CREATE KEYSPACE {keyspace} WITH replication = {{'class': 'SimpleStrategy', "
        "'replication_factor': 1}"
    )
    try:
        write_orders(plain, keyspace, export)
        url = f"cassandra://{cassandra_address}/{keyspace}?table=orders"
        with cl.open(url, mapping=TABLE_ORDERS) as source:
            yield source
    finally:
        plain.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)
        plain.cluster.shutdown()


@pytest.fixture(scope="module")
def topic(export, kafka_address):
    from kafka import KafkaAdminClient, KafkaProducer

    name = f"cl-test-{uuid.uuid4().hex[:12]}"
    cl.open(f"kafka://{kafka_address}/{name}", create=True, partitions=3)
    producer = KafkaProducer(bootstrap_servers=kafka_address)
    for row in export.iter_rows(named=True):  # the shop's producer: no nulls, keyed by order
        value = {k: v for k, v in row.items() if v is not None}
        producer.send(name, key=row["order_id"].encode(), value=orjson.dumps(value))
    producer.flush()
    producer.close()
    yield cl.open(f"kafka://{kafka_address}/{name}", mapping=ORDERS)
    admin = KafkaAdminClient(bootstrap_servers=kafka_address)
    try:
        admin.delete_topics([name])
    finally:
        admin.close()


def histories(export, files, table, topic) -> dict[str, pl.DataFrame]:
    """Every shape's events, every delivery each keeps."""
    frame = cl.from_pandas(export.to_pandas(), ORDERS)
    read = {"frame": frame}
    for name in ("orders.csv", "orders.parquet", "orders.ndjson"):
        read[name] = cl.open(files / name, mapping=ORDERS).events(duplicates="keep")
    read["cassandra"] = table.events(duplicates="keep")
    read["kafka"] = topic.events(duplicates="keep")
    return {name: events.select(frame.columns) for name, events in read.items()}


def test_six_shapes_of_the_same_orders_are_one_history(export, files, table, topic):
    read = histories(export, files, table, topic)
    assert read["kafka"].height == read["frame"].height == export.height
    assert read["cassandra"].height < export.height  # one row per key: the last written
    # the data's identity: order and event number (the mapping's sequence); last ingested wins
    resolved = {
        name: events.sort("processing_timestamp").unique(KEY, keep="last").sort(KEY)
        for name, events in read.items()
    }
    for name, events in resolved.items():
        assert events.equals(resolved["frame"]), name
