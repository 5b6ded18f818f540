"""A Cassandra table of your own events, read through a mapping, against a real Cassandra.

Each test writes rows of its own layout with the plain driver, as an application would, into a
new keyspace (``cl_test_<random>``) dropped afterwards, and reads them with
``cl.open("cassandra://...?table=...", mapping=...)``.
"""

from __future__ import annotations

import datetime as dt
import uuid
import warnings

import polars as pl
import pytest

import concursus_lab as cl
from concursus_lab.exceptions import SchemaError, SourceError
from concursus_lab.sources.cassandra import raw_cells
from concursus_lab.sources.cassandra.table import TableSource
from tests.contract import SourceContract, canonical_sort
from tests.integration.own_shapes import copy_and_check
from tests.integration.test_cassandra import _plain_session

pytestmark = pytest.mark.cassandra

UTC = dt.UTC


@pytest.fixture
def plain(cassandra_address):
    session = _plain_session(cassandra_address)
    yield session
    session.cluster.shutdown()


@pytest.fixture
def keyspace(plain):
    name = f"cl_test_{uuid.uuid4().hex[:12]}"
    plain.execute(
        f"CREATE KEYSPACE {name} WITH replication = {{'class': 'SimpleStrategy', "
        "'replication_factor': 1}"
    )
    yield name
    plain.execute(f"DROP KEYSPACE IF EXISTS {name}", timeout=120)


# -- the contract, through a table of another layout -------------------------------------------

#: The contract's events in a team's own table: other names, its own key, text parameters.
OWN_TABLE = """CREATE TABLE {keyspace}.happenings (
  kind text, id text, happened timestamp, stream text, pid timeuuid, type text, v text,
  body text, flags int,
  PRIMARY KEY ((kind, id), happened, stream)
)"""
OWN_LAYOUT = cl.Mapping(
    aggregate_type=pl.col("kind"),
    aggregate_id="id",
    name="type",
    event_time="happened",
    stream_id="stream",
    processing_id="pid",
    version="v",
    characteristics="flags",
    parameters="body",
    identity="concursus",
)  # no processing time: the write time is, and each row is written at its processing time


def write_own_rows(plain, keyspace: str, events: pl.DataFrame) -> None:
    """``events`` as the application writes them: one INSERT each, at its processing time."""
    insert = plain.prepare(
        f"INSERT INTO {keyspace}.happenings (kind, id, happened, stream, pid, type, v, body, "
        "flags) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?"
    )
    for row in events.iter_rows(named=True):
        pid = None if row["processing_id"] is None else uuid.UUID(row["processing_id"])
        written = int(row["processing_timestamp"].timestamp() * 1_000_000)
        values = (
            row["aggregate_type"],
            row["aggregate_id"],
            row["event_timestamp"],
            row["stream_id"],
            pid,
            row["name"],
            row["version"],
            row["parameters"],
            row["characteristics"],
            written,
        )
        plain.execute(insert, values)


class TestOwnCassandraTableContract(SourceContract):
    keeps_every_delivery = False  # a table holds one row per key: the last written
    writable = False

    @pytest.fixture
    def source_of(self, plain, keyspace, cassandra_address):
        plain.execute(OWN_TABLE.format(keyspace=keyspace))
        opened = []

        def holding(*frames: pl.DataFrame):
            for one in frames:
                write_own_rows(plain, keyspace, one)
            source = cl.open(
                f"cassandra://{cassandra_address}/{keyspace}?table=happenings", mapping=OWN_LAYOUT
            )
            opened.append(source)
            return source

        yield holding
        for source in opened:
            source.close()


# -- orders of a shop, as its team keeps them ------------------------------------------------

ORDERS_TABLE = """CREATE TABLE {keyspace}.orders (
  order_id text, event_no int, event_type text, occurred_at timestamp, ingested_at timestamp,
  amount double, sku text, channel text, note text, tags set<text>,
  PRIMARY KEY ({key})
)"""
#: One row per order and event number: a re-export overwrites.
LATEST = "(order_id), event_no"
ORDERS = cl.Mapping(
    aggregate_type="order",
    aggregate_id="order_id",
    name="event_type",
    event_time="occurred_at",
    processing_time="ingested_at",
    sequence="event_no",
    parameters=["amount", "sku", "channel"],
    types=cl.sample.order_types,
)


def write_orders(plain, keyspace: str, export: pl.DataFrame, key: str = LATEST) -> int:
    """The shop's export as its application writes the table (primary key ``key``): times as
    timestamps, each row at its ingestion time (so where the key is an order and event
    number, a re-export or correction overwrites as the team's did)."""
    plain.execute(ORDERS_TABLE.format(keyspace=keyspace, key=key))
    insert = plain.prepare(
        f"INSERT INTO {keyspace}.orders (order_id, event_no, event_type, occurred_at, "
        "ingested_at, amount, sku, channel) VALUES (?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?"
    )
    rows = export.with_columns(
        pl.col("occurred_at")
        .str.to_datetime("%Y-%m-%d %H:%M")
        .dt.replace_time_zone("Europe/London")
        .dt.convert_time_zone("UTC"),
        pl.col("ingested_at").str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_zone="UTC"),
    )
    for row in rows.iter_rows(named=True):
        written = int(row["ingested_at"].timestamp() * 1_000_000)
        plain.execute(insert, (*row.values(), written))
    return rows.height


@pytest.fixture
def orders(plain, keyspace, cassandra_address):
    export = cl.sample.orders_export(60, seed=4)
    write_orders(plain, keyspace, export)
    source = cl.open(f"cassandra://{cassandra_address}/{keyspace}?table=orders", mapping=ORDERS)
    yield source, export
    source.close()


def test_a_table_of_orders_reads_as_the_export_does(orders):
    source, export = orders
    expected = cl.from_polars(export, cl.sample.ORDERS)
    # the table kept the last written row per key: the export's last ingested delivery
    expected = expected.sort("processing_timestamp").unique(
        ["aggregate_id", "sequence"], keep="last"
    )
    read = source.events(duplicates="keep")
    assert read.columns == [*cl.SCHEMA, "sequence"]
    key = ["aggregate_id", "sequence"]
    assert read.sort(key).equals(expected.select(read.columns).sort(key))
    assert source.quarantine.height == 0


def test_filters_are_answered_on_both_axes_and_by_aggregate(orders):
    source, _ = orders
    every = source.events(duplicates="keep")
    one = every["aggregate_id"][0]
    assert source.events(aggregate_ids=[one], duplicates="keep").equals(
        every.filter(aggregate_id=one)
    )
    assert source.events("order", [one, "no-such"], duplicates="keep").height == (
        every.filter(aggregate_id=one).height
    )
    assert source.events(aggregate_type="parcel").height == 0
    start, end = dt.datetime(2026, 3, 2, tzinfo=UTC), dt.datetime(2026, 3, 3, tzinfo=UTC)
    sliced = source.events(event_time=(start, end), duplicates="keep")
    assert (
        sliced.height
        == every.filter(pl.col("event_timestamp").is_between(start, end, "left")).height
    )
    known = source.events(known_at="2026-03-03", duplicates="keep")
    assert (
        known.height
        == every.filter(
            pl.col("processing_timestamp") <= dt.datetime(2026, 3, 3, tzinfo=UTC)
        ).height
    )


def test_without_a_processing_time_the_write_time_is_one_and_said(orders, cassandra_address):
    source, _ = orders
    fields = {
        k: getattr(ORDERS, k)
        for k in ("aggregate_type", "aggregate_id", "name", "event_time", "sequence", "types")
    }
    written = cl.open(
        f"cassandra://{cassandra_address}/{source.keyspace}?table=orders",
        mapping=cl.Mapping(**fields, parameters=["amount", "sku", "channel"]),
    )
    try:
        assert "processing time: write time" in repr(written)
        a = written.events(duplicates="keep").sort("aggregate_id", "sequence")
        b = source.events(duplicates="keep").sort("aggregate_id", "sequence")
        # each row was written USING TIMESTAMP its ingestion time
        assert a["processing_timestamp"].equals(b["processing_timestamp"])
    finally:
        written.close()


def test_rows_that_do_not_map_are_set_aside_with_the_reason(plain, keyspace, cassandra_address):
    plain.execute(ORDERS_TABLE.format(keyspace=keyspace, key=LATEST))
    plain.execute(
        f"INSERT INTO {keyspace}.orders (order_id, event_no, event_type, occurred_at) "
        "VALUES ('o1', 1, 'created', '2026-03-01 10:00:00+0000')"
    )
    plain.execute(
        f"INSERT INTO {keyspace}.orders (order_id, event_no, occurred_at) "
        "VALUES ('o1', 2, '2026-03-01 10:05:00+0000')"
    )
    plain.execute(f"INSERT INTO {keyspace}.orders (order_id, event_no) VALUES ('o2', 1)")
    mapping = cl.Mapping(
        aggregate_type="order",
        aggregate_id="order_id",
        name="event_type",
        event_time="occurred_at",
        sequence="event_no",
        parameters=["amount"],
    )
    with cl.open(
        f"cassandra://{cassandra_address}/{keyspace}?table=orders", mapping=mapping
    ) as source:
        with pytest.warns(UserWarning, match="2 row"):
            read = source.events()
        assert read["name"].to_list() == ["created"]
        reasons = sorted(source.quarantine["reason"].to_list())
        assert reasons[0] == "no event name: event_type is null"
        assert reasons[1].startswith("no write time: the non-key columns it reads")


def test_every_cql_type_reads_the_same_by_the_driver_public_path(
    plain, keyspace, cassandra_address, monkeypatch
):
    plain.execute(f"CREATE TYPE {keyspace}.address (street text, zip int)")
    plain.execute(
        f"CREATE TABLE {keyspace}.wide (id bigint, at timestamp, name text, n int, s smallint, "
        "t tinyint, f float, d double, ok boolean, day date, tod time, u uuid, tu timeuuid, "
        "b blob, big varint, money decimal, ip inet, span duration, l list<int>, st set<text>, "
        "m map<text, double>, fm frozen<map<int, text>>, tup frozen<tuple<int, text>>, "
        "home frozen<address>, vec vector<float, 2>, PRIMARY KEY (id, at))"
    )
    plain.execute(
        f"INSERT INTO {keyspace}.wide (id, at, name, n, s, t, f, d, ok, day, tod, u, tu, b, big, "
        "money, ip, span, l, st, m, fm, tup, home, vec) VALUES (7, '2026-03-01 10:00:00.123+0000', "
        "'made', -1, 2, 3, 1.5, 0.25, true, '1968-05-28', '10:01:02.000000003', "
        "00000000-0000-0000-0000-000000000005, c4f74bc0-e9f0-11f1-8000-000000000001, 0x00ff, "
        "123456789012345678901234567890, 12.50, '10.0.0.1', 1mo2d3ns, [1, 2], {'a'}, "
        "{'x': 1.5}, {1: 'one'}, (1, 'a'), {street: 'High St', zip: 1}, [1.5, 2.0])"
    )
    parameters = [
        "n",
        "s",
        "t",
        "f",
        "d",
        "ok",
        "day",
        "tod",
        "u",
        "tu",
        "big",
        "money",
        "ip",
        "span",
        "l",
        "st",
        "m",
        "fm",
        "tup",
        "home",
        "vec",
    ]  # a blob is no JSON value
    mapping = cl.Mapping(
        aggregate_type="thing",
        aggregate_id="id",
        name="name",
        event_time="at",
        parameters=parameters,
    )
    url = f"cassandra://{cassandra_address}/{keyspace}?table=wide"

    def read():
        with cl.open(url, mapping=mapping) as source:
            return source.events(), source._raw

    fast, was_fast = read()
    assert was_fast
    params = cl.frame.canonical_json.loads(fast["parameters"].item())
    assert params == {
        "n": -1,
        "s": 2,
        "t": 3,
        "f": 1.5,
        "d": 0.25,
        "ok": True,
        "day": "1968-05-28",
        "tod": "10:01:02.000000003",
        "u": "00000000-0000-0000-0000-000000000005",
        "tu": "c4f74bc0-e9f0-11f1-8000-000000000001",
        "big": 123456789012345678901234567890,
        "money": 12.5,
        "ip": "10.0.0.1",
        "span": "1mo2d3ns",
        "l": "[1,2]",
        "st": '["a"]',
        "m": '{"x":1.5}',
        "fm": '{"1":"one"}',
        "tup": '[1,"a"]',
        "home": '{"street":"High St","zip":1}',
        "vec": "[1.5,2.0]",
    }
    assert fast["aggregate_id"].item() == "7"
    assert fast["event_timestamp"].item() == dt.datetime(2026, 3, 1, 10, 0, 0, 123000, tzinfo=UTC)
    monkeypatch.setattr(raw_cells, "VERIFIED", frozenset())
    monkeypatch.setattr(raw_cells, "_HANDLER", None)
    monkeypatch.setattr(raw_cells, "_WARNED", False)
    with pytest.warns(RuntimeWarning, match="public API"):
        public, was_fast = read()
    assert not was_fast
    assert public.equals(fast)


def test_a_table_is_read_never_written_and_copies_into_a_store(orders, tmp_path):
    source, _ = orders
    with pytest.raises(SourceError, match=r"never written.*cl\.copy"):
        source.append(cl.sample.parcels(2, seed=1))
    copied = cl.copy(source, tmp_path / "store", create=True, progress=False)
    assert copied == source.events(duplicates="keep").height
    stored = cl.open(tmp_path / "store").events(duplicates="keep")
    assert canonical_sort(stored).equals(canonical_sort(source.events(duplicates="keep")))


def test_copy_and_check_take_a_table_url_with_its_mapping(orders, tmp_path):
    source, _ = orders
    mapping = cl.Mapping(
        aggregate_type="order",
        aggregate_id="order_id",
        name="event_type",
        event_time="occurred_at",
        processing_time="ingested_at",
        sequence="event_no",
        parameters=["amount", "sku", "channel"],
        initial=["created"],
        terminal=["shipped", "cancelled"],
    )
    url = f"{source.url}&{mapping.to_query()}"
    printed, counted = copy_and_check(url, tmp_path)
    expected = source.events(duplicates="keep")
    assert f"copied {expected.height:,} events" in printed
    assert counted == expected.height
    stored = cl.open(tmp_path / "store").events(duplicates="keep")
    assert canonical_sort(stored).equals(canonical_sort(expected))


def test_an_interrupted_read_says_what_it_read(orders, monkeypatch):
    source, _ = orders
    every = source.events(duplicates="keep")
    from concursus_lab.sources.cassandra import reader

    pages = {"n": 0}
    add = reader.Reader.add

    def add_then_stop(self, task, rows):
        pages["n"] += 1
        if pages["n"] == 3:
            raise KeyboardInterrupt
        add(self, task, rows)

    monkeypatch.setattr(reader.Reader, "add", add_then_stop)
    with pytest.raises(cl.IncompleteRead, match="interrupted") as stopped:
        source.events(duplicates="keep")
    partial = stopped.value.partial
    assert 0 < partial.height < every.height
    assert partial.join(every, on=list(every.columns), how="anti", nulls_equal=True).height == 0


def test_a_table_url_is_checked_against_the_table(orders, cassandra_address):
    source, _ = orders
    base = f"cassandra://{cassandra_address}/{source.keyspace}"
    with pytest.raises(SourceError, match=r"does not exist.*its tables: orders"):
        cl.open(f"{base}?table=nope", mapping=ORDERS)
    with pytest.raises(SchemaError, match="the data has no column 'oder_id'"):
        cl.open(
            f"{base}?table=orders",
            mapping=cl.Mapping(
                aggregate_type="order",
                aggregate_id="oder_id",
                name="event_type",
                event_time="occurred_at",
            ),
        )
    assert isinstance(cl.open(f"{base}?table=orders&consistency=ONE&{ORDERS_QUERY}"), TableSource)


ORDERS_QUERY = cl.Mapping(
    aggregate_type="order", aggregate_id="order_id", name="event_type", event_time="occurred_at"
).to_query()


def test_no_warning_on_a_clean_read(orders):
    source, _ = orders
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        source.events()
