"""Tables and topics of your own shape, without the servers: record keys and headers, JSON values
in bulk, the records frame a mapping reads, CQL cells of every type, and what a table's read
pushes down. The same sources against the real servers: tests/integration/test_own_*.py."""

from __future__ import annotations

import datetime as dt
import decimal
import ipaddress
import json
import uuid

import numpy as np
import polars as pl
import pytest

import concursus_lab as cl
from concursus_lab.exceptions import SchemaError, SourceError
from concursus_lab.sources.cassandra import cql_types, layout
from concursus_lab.sources.cassandra.columns import Reasons
from concursus_lab.sources.kafka.mapped import MappedRecords, Partition, records_frame
from concursus_lab.sources.kafka.records import Records, parse
from concursus_lab.sources.kafka.values import json_objects
from concursus_lab.sources.mapped import events_schema
from concursus_lab.sources.query import Query
from tests.unit.test_kafka_codec import batches, kafka_python_reads

UTC = dt.UTC

# -- Kafka: keys, headers, JSON values ----------------------------------------------------------


@pytest.mark.parametrize("compression", [0, 1])
def test_keys_and_headers_parse_as_kafka_python_reads_them(compression):
    values = [b'{"n":%d}' % i for i in range(400)]
    buffer = batches(values, compression=compression)  # a header on every third record
    expected = kafka_python_reads(buffer)
    got = parse(buffer, with_keys=True)
    assert got.keys == [r.key for r in expected]
    assert got.headers == [tuple(r.headers) for r in expected]
    assert got.values == values
    assert parse(buffer).keys is None  # a Concursus topic does not pay for them
    middle = parse(buffer, fetch_offset=200, with_keys=True)
    assert middle.keys == [r.key for r in expected][200:]
    assert middle.headers == [tuple(r.headers) for r in expected][200:]


def test_json_values_are_read_in_bulk_and_bad_ones_named():
    values = [
        b'{"id": "o1",\n "total": 12.5}',  # a line break JSON allows between tokens
        b'{"id": "o2", "note": "line\\nbreak"}',
        b"",
        None,
        b"[1, 2]",
        b'"text"',
        b"{not json",
        b'{"id": "o3"}',
    ]
    frame, used, bad = json_objects(values)
    assert used.tolist() == [0, 1, 7]
    assert frame["id"].to_list() == ["o1", "o2", "o3"]
    assert frame["note"].to_list() == [None, "line\nbreak", None]
    assert [i for i, _ in bad] == [2, 3, 4, 5, 6]
    reasons = dict(bad)
    assert reasons[2] == "an empty value" and reasons[3] == "no value (a tombstone)"
    assert reasons[4] == "not a JSON object but an array"
    assert reasons[5] == "not a JSON object but a string"
    assert reasons[6].startswith("not JSON: ")


def test_fields_whose_types_differ_between_records_still_read():
    frame, used, bad = json_objects([b'{"a": 1, "b": {"x": 1}}', b'{"a": "one", "b": [1]}'])
    assert not bad and used.tolist() == [0, 1]
    assert frame.height == 2 and frame["a"].to_list() == ["1", "one"]


def _records(values, keys=None, headers=None, offsets=None):
    n = len(values)
    offsets = np.arange(n, dtype=np.int64) if offsets is None else np.asarray(offsets)
    millis = np.full(n, 1_772_359_260_000, dtype=np.int64)  # 2026-03-01 10:01 UTC
    return Records(values, offsets, millis, n, keys=keys, headers=headers)


ORDERS = cl.Mapping(
    aggregate_type="order",
    aggregate_id="order.id",
    name="type",
    event_time="at",
    sequence="seq",
    stream_id="kafka.headers.source",
    parameters=["amount"],
)


def test_a_records_frame_holds_the_values_fields_and_the_records_own():
    records = _records(
        [b'{"order": {"id": "o1"}, "type": "created", "at": "2026-03-01T10:00:00Z", "seq": 1}'],
        keys=[b"o1"],
        headers=[(("source", b"web"), ("trace", None))],
        offsets=[41],
    )
    frame, values, rejected = records_frame([(Partition(3), records)])
    assert frame.row(0, named=True) | {"order": None} == {
        "__record": 0,
        "kafka.partition": 3,
        "kafka.offset": 41,
        "kafka.timestamp": dt.datetime(2026, 3, 1, 10, 1, tzinfo=UTC),
        "kafka.key": "o1",
        "kafka.headers.source": "web",
        "kafka.headers.trace": None,
        "order": None,
        "type": "created",
        "at": "2026-03-01T10:00:00Z",
        "seq": 1,
    }
    assert rejected.height == 0 and values == records.values


def test_mapped_records_give_events_kafka_columns_and_a_quarantine_with_reasons():
    values = [
        b'{"order": {"id": "o1"}, "type": "created", "at": "2026-03-01T10:00:00Z", "seq": 1, '
        b'"amount": 12.5}',
        b'{"order": {"id": "o1"}, "type": "paid", "at": "2026-03-01T10:00:00Z", "seq": 2}',
        b'{"order": {"id": null}, "type": "paid", "at": "2026-03-01T10:00:00Z", "seq": 3}',
        b'{"order": {"id": "o2"}, "type": "paid", "at": "not a time", "seq": 1}',
        b"nope",
    ]
    headers = [(("source", b"web"),)] + [()] * 4
    decode = MappedRecords(ORDERS)
    events, quarantine = decode([(Partition(0), _records(values, headers=headers))])
    assert events.columns == list(events_schema(ORDERS, decode.schema).names())
    assert events.select("aggregate_id", "name", "sequence", "stream_id", "parameters").rows() == [
        ("o1", "created", 1, "web", '{"amount":12.5}'),
        ("o1", "paid", 2, "", "{}"),
    ]
    assert events["processing_timestamp"].to_list() == events["kafka_timestamp"].to_list()
    assert quarantine["kafka_offset"].to_list() == [4, 2, 3]
    reasons = quarantine["reason"].to_list()
    assert reasons[0].startswith("not JSON")
    assert reasons[1] == "no aggregate id: order is null"
    assert reasons[2] == "event time 'not a time' is not a time"
    assert quarantine["raw"][2] == values[3]


def test_a_field_no_record_of_a_batch_has_sets_the_rows_aside_rather_than_failing():
    values = [b'{"order": {"id": "o1"}, "type": "created", "at": "2026-03-01T10:00:00Z"}']
    events, quarantine = MappedRecords(ORDERS)([(Partition(0), _records(values))])
    assert events.height == 0 and events.columns == MappedRecords(ORDERS).empty().columns
    assert quarantine["reason"].to_list() == ["no sequence: seq is null"]


def test_a_mapped_read_has_the_same_columns_whether_or_not_it_finds_events():
    decode = MappedRecords(ORDERS)
    assert decode([])[0].schema == decode.empty().schema
    content = MappedRecords(
        cl.Mapping(aggregate_type="o", aggregate_id="id", name="t", event_time="at")
    )
    assert content.empty().columns[10] == "event_id"


def test_a_struct_of_parameters_leaves_out_fields_a_record_lacks_and_sorts_the_rest():
    frame, _, _ = json_objects(
        [
            b'{"id": "a", "at": "2026-03-01T10:00:00Z", "body": {"b": 1, "a": [1, 2]}}',
            b'{"id": "a", "at": "2026-03-01T10:01:00Z", "body": {"c": {"z": 1, "y": null}}}',
        ]
    )
    mapping = cl.Mapping(
        aggregate_type="x", aggregate_id="id", name=pl.lit("e"), event_time="at", parameters="body"
    )
    assert cl.from_polars(frame, mapping)["parameters"].to_list() == [
        '{"a":[1,2],"b":1}',
        '{"c":{"y":null,"z":1}}',
    ]


def test_a_kafka_url_carries_a_mapping_but_no_other_option():
    from concursus_lab.sources.kafka.source import KafkaSource

    with pytest.raises(SourceError, match=r"no query options but a mapping's.*'password'") as bad:
        KafkaSource.from_url("kafka://127.0.0.1:1/t?password=hunter2")
    assert "hunter2" not in str(bad.value)
    with pytest.raises(SourceError, match="give one of them"):
        KafkaSource.from_url(f"kafka://127.0.0.1:1/t?{ORDERS.to_query()}", mapping=ORDERS)


# -- Cassandra: CQL types, cells, pushdown ------------------------------------------------------


def _serialised(cql: str, value):
    """``value`` as the bytes Cassandra sends for a column of ``cql``, by the driver."""
    from cassandra import cqltypes

    return cqltypes.lookup_casstype(cql).serialize(value, 5)


CELLS = [
    ("int", "Int32Type", -7, -7),
    ("bigint", "LongType", 2**40, 2**40),
    ("smallint", "ShortType", 300, 300),
    ("tinyint", "ByteType", -3, -3),
    ("float", "FloatType", 1.5, 1.5),
    ("double", "DoubleType", 0.1, 0.1),
    ("boolean", "BooleanType", True, True),
    (
        "timestamp",
        "DateType",
        dt.datetime(2026, 3, 1, 10, 0, 0, 123000),
        dt.datetime(2026, 3, 1, 10, 0, 0, 123000, tzinfo=UTC),
    ),
    ("date", "SimpleDateType", dt.date(1968, 5, 28), dt.date(1968, 5, 28)),
    ("time", "TimeType", dt.time(10, 1, 2, 3), dt.time(10, 1, 2, 3)),
    ("uuid", "UUIDType", uuid.UUID(int=5), str(uuid.UUID(int=5))),
    ("blob", "BytesType", b"\x00\xff", b"\x00\xff"),
    ("varint", "IntegerType", 2**70, 2**70),
    ("decimal", "DecimalType", decimal.Decimal("12.50"), 12.5),
    ("inet", "InetAddressType", "10.0.0.1", "10.0.0.1"),
    ("list<int>", "ListType(Int32Type)", [1, 2], "[1,2]"),
    ("set<text>", "SetType(UTF8Type)", {"a"}, '["a"]'),
    ("map<text, double>", "MapType(UTF8Type, DoubleType)", {"x": 1.5}, '{"x":1.5}'),
    (
        "frozen<map<int, frozen<list<timestamp>>>>",
        "MapType(Int32Type, ListType(DateType))",
        {1: [dt.datetime(2026, 3, 1)]},
        '{"1":["2026-03-01T00:00:00.000Z"]}',
    ),
    ("frozen<tuple<int, text>>", "TupleType(Int32Type, UTF8Type)", (1, "a"), '[1,"a"]'),
]


@pytest.mark.parametrize(("cql", "driver", "value", "read"), CELLS, ids=[c[0] for c in CELLS])
def test_each_cql_type_reads_as_the_driver_wrote_it(cql, driver, value, read):
    parsed = cql_types.parse(cql)
    reasons = Reasons(3)
    column = cql_types.decode(
        [_serialised(driver, value), None, _serialised(driver, value)], parsed, reasons, "c"
    )
    assert column.dtype == cql_types.dtype(parsed)
    assert column.to_list() == [read, None, read]
    assert not reasons.mask().any()


def test_user_types_vectors_and_durations_read_as_json_and_text():
    address = cql_types.parse("frozen<address>", lambda name: (("street", "zip"), ("text", "int")))
    cell = b"".join(len(b).to_bytes(4, "big") + b for b in (b"High St", (1).to_bytes(4, "big")))
    assert cql_types.decode([cell], address, Reasons(1), "a").to_list() == [
        '{"street":"High St","zip":1}'
    ]
    vector = cql_types.parse("vector<float, 2>")
    cell = np.array([1.5, 2.0], dtype=">f4").tobytes()
    assert cql_types.decode([cell], vector, Reasons(1), "v").to_list() == ["[1.5,2.0]"]
    duration = cql_types.parse("duration")
    assert cql_types.decode([bytes([2, 4, 6])], duration, Reasons(1), "d").to_list() == ["1mo2d3ns"]
    ip6 = ipaddress.ip_address("::1").packed
    assert cql_types.decode([ip6], cql_types.parse("inet"), Reasons(1), "i").to_list() == ["::1"]


def test_a_cell_that_cannot_be_read_sets_its_row_aside_with_the_reason():
    reasons = Reasons(2)
    cql_types.decode([b"\x00\x00\x00\x01", b"\x00\x01"], cql_types.parse("int"), reasons, "n")
    cql_types.decode([b"\x00\x00\x00\x05\xff", None], cql_types.parse("list<int>"), reasons, "l")
    assert reasons.mask().tolist() == [True, True]
    assert reasons.texts(np.array([0, 1])) == ["l cannot be read as list<int>", "n is not 4 bytes"]


ORDERS_TABLE = layout.Layout(
    "shop",
    "orders",
    ("order_id",),
    ("occurred_at", "event_no"),
    {
        "order_id": cql_types.parse("text"),
        "occurred_at": cql_types.parse("timestamp"),
        "event_no": cql_types.parse("int"),
        "kind": cql_types.parse("text"),
        "event_type": cql_types.parse("text"),
        "amount": cql_types.parse("double"),
        "tags": cql_types.parse("set<text>"),
    },
    frozenset({"tags"}),
)
TABLE_MAPPING = cl.Mapping(
    aggregate_type=pl.col("kind"),
    aggregate_id="order_id",
    name="event_type",
    event_time="occurred_at",
    sequence="event_no",
)


class _Statement:
    def __init__(self, text):
        self.text = text

    def bind(self, values):
        return _Bound(self.text, values)


class _Bound:
    def __init__(self, text, values):
        self.text, self.values, self.fetch_size = text, values, None


def _tasks(query: Query, mapping=TABLE_MAPPING):
    chosen = layout.selection(ORDERS_TABLE, {"order_id", "occurred_at", "kind"}, write_times=True)
    return layout.read_tasks(_Statement, ORDERS_TABLE, chosen, mapping, query, [(-5, 5)], 100)


def test_a_read_selects_the_mapped_columns_and_the_write_times_of_the_non_key_ones():
    chosen = layout.selection(
        ORDERS_TABLE, {"order_id", "kind", "amount", "tags"}, write_times=True
    )
    assert chosen.cql(ORDERS_TABLE) == (
        "SELECT order_id, kind, amount, tags, WRITETIME(kind), WRITETIME(amount) FROM shop.orders"
    )  # a collection that is not frozen has no one write time
    only_keys = layout.selection(ORDERS_TABLE, {"order_id"}, write_times=True)
    assert only_keys.written == ("kind", "event_type", "amount")


def test_aggregates_read_their_partitions_with_the_event_time_sliced_by_the_server():
    tasks, unit = _tasks(Query.of("order", ["A-1", "A-2"], event_time=("2026-03-01", None)))
    assert unit == "partitions" and len(tasks) == 2
    assert tasks[0].statement.text.endswith(
        "WHERE order_id = ? AND kind = ? AND occurred_at >= ? ALLOW FILTERING"
    )
    assert tasks[1].statement.values == ("A-2", "order", 1772323200000)


def test_without_ids_a_read_scans_token_ranges_filtered_by_the_server():
    tasks, unit = _tasks(Query.of("order", event_time=(None, "2026-03-02")))
    assert unit == "token ranges" and len(tasks) == 1
    assert "token(order_id) > ? AND token(order_id) <= ? AND kind = ? AND occurred_at < ?" in (
        tasks[0].statement.text
    )
    assert tasks[0].statement.values == (-5, 5, "order", 1772409600000)


def test_ids_that_cannot_be_keys_read_no_partition_and_other_keys_scan():
    numbered = layout.Layout(
        "shop",
        "t",
        ("n",),
        (),
        {"n": cql_types.parse("bigint"), "e": cql_types.parse("text")},
        frozenset(),
    )
    mapping = cl.Mapping(aggregate_type="t", aggregate_id="n", name="e", event_time="e")
    chosen = layout.selection(numbered, {"n", "e"}, write_times=True)
    tasks, unit = layout.read_tasks(
        _Statement, numbered, chosen, mapping, Query.of(None, ["7", "x7"]), [(0, 1)], 10
    )
    assert unit == "partitions" and [t.statement.values for t in tasks] == [(7,)]
    elsewhere = cl.Mapping(aggregate_type="t", aggregate_id="e", name="e", event_time="e")
    assert (
        layout.read_tasks(
            _Statement, numbered, chosen, elsewhere, Query.of(None, ["7"]), [(0, 1)], 10
        )[1]
        == "token ranges"
    )


def test_a_table_url_needs_a_table_and_a_mapping():
    from concursus_lab.sources.cassandra.source import CassandraSource

    with pytest.raises(SourceError, match="a mapping but no table"):
        CassandraSource.from_url("cassandra://127.0.0.1:1/shop", mapping=TABLE_MAPPING)
    with pytest.raises(SourceError, match="no mapping"):
        CassandraSource.from_url("cassandra://127.0.0.1:1/shop?table=orders")
    with pytest.raises(SchemaError, match="names no aggregate_type"):
        CassandraSource.from_url("cassandra://127.0.0.1:1/shop?table=orders&aggregate_id=x")


def test_json_and_cql_examples_stay_small():
    assert (
        json.loads(
            cql_types.decode([None], cql_types.parse("map<text, int>"), Reasons(1), "m")
            .fill_null("{}")
            .item()
        )
        == {}
    )
