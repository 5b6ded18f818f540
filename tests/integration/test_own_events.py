"""The same orders in six shapes give one history (issue 30's "done when").

A shop's order export (``cl.sample.orders_export``: naive London times to the minute, so an
order's ``created`` and ``paid`` often share a minute; re-exports; one corrected row) is kept
as its teams would keep it: a pandas frame, a CSV, a Parquet file, an NDJSON file, a Cassandra
table of the team's own layout (typed times, every delivery a row: the key is the order, the
event number and when it was ingested) and a Kafka topic of JSON records. Each is read through
its own mapping, which names the event number as the sequence. Every shape gives the same
canonical frame (after sorting), the same states on both axes, and the corrected row is
counted and warned about as a conflicting repeat on every path, Cassandra and Kafka included.
"""

from __future__ import annotations

import uuid
import warnings

import orjson
import polars as pl
import pytest

import concursus_lab as cl
from concursus_lab.exceptions import ConflictingDeliveries
from concursus_lab.sample import ORDERS, order_state, order_types
from tests.integration.test_own_cassandra import ORDERS as TABLE_ORDERS
from tests.integration.test_own_cassandra import _plain_session, write_orders

pytestmark = [pytest.mark.cassandra, pytest.mark.kafka]

AT = "2026-03-04 12:00"
KNOWN_AT = "2026-03-04 09:00"
#: Every delivery its own row: the order, the event number, when the export job took it.
EVERY_DELIVERY = "(order_id), event_no, ingested_at"


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
        write_orders(plain, keyspace, export, key=EVERY_DELIVERY)
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


def read(export, files, table, topic, duplicates: str) -> dict[str, pl.DataFrame]:
    """Every shape's events (canonical columns and the sequence), and the warnings each gave."""
    frame = cl.from_pandas(export.to_pandas(), ORDERS)
    sources = {
        name: cl.open(files / name, mapping=ORDERS)
        for name in ("orders.csv", "orders.parquet", "orders.ndjson")
    } | {"cassandra": table, "kafka": topic}
    out = {"frame": cl.frame.identity.resolve(frame, duplicates)}
    for name, source in sources.items():
        out[name] = source.events(duplicates=duplicates)
    return {
        name: events.select(frame.columns).sort("aggregate_id", "sequence", "processing_timestamp")
        for name, events in out.items()
    }


def test_six_shapes_of_the_same_orders_are_one_history(export, files, table, topic):
    every = read(export, files, table, topic, "keep")
    assert every["frame"].height == export.height
    with pytest.warns(ConflictingDeliveries):
        last = read(export, files, table, topic, "last")
    assert last["frame"].height < export.height  # re-exports and the correction resolved
    for name in every:
        assert every[name].equals(every["frame"]), name
        assert last[name].equals(last["frame"]), name


@pytest.mark.parametrize("shape", ["cassandra", "kafka"])
def test_a_conflicting_repeat_is_warned_about_on_the_servers_paths(table, topic, shape):
    source = {"cassandra": table, "kafka": topic}[shape]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        source.events()
    conflicts = [w for w in caught if issubclass(w.category, ConflictingDeliveries)]
    assert len(conflicts) == 1
    message = str(conflicts[0].message)
    assert "1 identity" in message and "paid" in message, message


def test_six_shapes_of_the_same_orders_give_the_same_states(export, files, table, topic):
    answers = {}
    for name, events in read(export, files, table, topic, "keep").items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConflictingDeliveries)
            states = cl.state_at(events, order_state, types=order_types, at=AT, known_at=KNOWN_AT)
        answers[name] = (states.frame.sort("aggregate_id"), states.counts)
    frame, counts = answers["frame"]
    assert frame.height > 50 and counts["applied"] > 0
    for name, (states, their_counts) in answers.items():
        assert states.equals(frame), name
        assert their_counts == counts, name
