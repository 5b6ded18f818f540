"""cl.export of a view into a Cassandra table, against the real local Cassandra."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid

import polars as pl
import pytest

import concursus_lab as cl
from concursus_lab.exceptions import SchemaError, SourceError, SourceUnavailable
from concursus_lab.sample.parcels import Delivered, DeliveryFailed, LoadedOntoTruck, parcel_types

pytestmark = pytest.mark.cassandra


@pytest.fixture
def session(cassandra_address):
    from cassandra.cluster import Cluster

    host, port = cassandra_address.rsplit(":", 1)
    cluster = Cluster([host], port=int(port), protocol_version=5)
    yield cluster.connect()
    cluster.shutdown()


@pytest.fixture
def keyspace(session):
    name = f"cl_view_{uuid.uuid4().hex[:12]}"
    session.execute(
        f"CREATE KEYSPACE {name} WITH replication = "
        "{'class': 'SimpleStrategy', 'replication_factor': 1}"
    )
    yield name
    session.execute(f"DROP KEYSPACE IF EXISTS {name}")


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


def read(session, keyspace: str, table: str) -> list[tuple]:
    return sorted(tuple(row) for row in session.execute(f'SELECT * FROM {keyspace}."{table}"'))


def test_a_fold_view_is_written_read_back_and_upserted(cassandra_address, session, keyspace):
    events = cl.sample.fixture("messy")
    fold = cl.fold(load, types=parcel_types, key="truckId", initial=Load())
    url = f"cassandra://{cassandra_address}/{keyspace}"
    view = cl.project(events, fold)
    assert cl.export(view, url, table="truck_load", key="truckId") == 5
    session.cluster.refresh_schema_metadata()
    table = session.cluster.metadata.keyspaces[keyspace].tables["truck_load"]
    assert [c.name for c in table.partition_key] == ["truckId"]  # the case is kept
    assert {c: str(t.cql_type) for c, t in table.columns.items()} == {
        "truckId": "text",
        "on_board": "bigint",
        "delivered": "bigint",
        "events_applied": "bigint",
        "last_event_timestamp": "timestamp",
    }
    rows = {r.truckId: r for r in session.execute(f'SELECT * FROM {keyspace}."truck_load"')}
    assert (rows["LEW-1"].on_board, rows["LEW-1"].delivered) == (0, 1)
    assert rows["CRO-4"].last_event_timestamp == dt.datetime(2026, 3, 2, 13, 0)  # naive UTC

    # as known at noon on 2 March: upserted over the same rows; keys not in it stay
    earlier = cl.project(events, fold, known_at="2026-03-02 12:00")
    assert cl.export(earlier, url, table="truck_load", key="truckId") == earlier.height
    assert len(read(session, keyspace, "truck_load")) == 5
    rows = {r.truckId: r for r in session.execute(f'SELECT * FROM {keyspace}."truck_load"')}
    assert rows["CRO-4"].on_board == 1  # the failure was not known yet
    cl.export(earlier, url, table="truck_load", key="truckId", replace=True)
    assert len(read(session, keyspace, "truck_load")) == earlier.height


def test_composite_keys_lists_and_a_table_that_does_not_fit(cassandra_address, session, keyspace):
    url = f"cassandra://{cassandra_address}/{keyspace}"
    view = pl.DataFrame(
        {
            "truck": ["T1", "T1"],
            "day": [dt.date(2026, 3, 2), dt.date(2026, 3, 3)],
            "rate": [0.5, None],
            "parcels": [["p1", "p2"], []],
        }
    )
    assert cl.export(view, url, table="rates", key=["truck", "day"]) == 2
    rows = read(session, keyspace, "rates")
    assert [(r[0], str(r[1]), r[2], r[3]) for r in rows] == [
        ("T1", "2026-03-02", ["p1", "p2"], 0.5),
        ("T1", "2026-03-03", None, None),  # an empty list is no list in Cassandra
    ]
    with pytest.raises(SchemaError, match=r"exists and does not fit the view: its primary key"):
        cl.export(view.head(1), url, table="rates", key="truck")
    with pytest.raises(SchemaError, match="does not identify the view's rows"):
        cl.export(view, url, table="other", key="truck")
    with pytest.raises(SourceUnavailable, match="keyspace 'no_such_keyspace' does not exist"):
        cl.export(
            view,
            f"cassandra://{cassandra_address}/no_such_keyspace",
            table="t",
            key=["truck", "day"],
        )


def test_export_connects_as_open_does_tls_and_consistency_included(
    cassandra_address, session, keyspace, monkeypatch
):
    # issue 15, item 6: export honours the settings cl.open honours, from every place they
    # may come from; the local server speaks no TLS, so asking for it must fail to connect
    url = f"cassandra://{cassandra_address}/{keyspace}"
    view = pl.DataFrame({"truck": ["T1"], "parcels": [3]})
    with pytest.raises(SourceUnavailable, match="cannot reach Cassandra"):
        cl.export(view, url, table="load", key="truck", tls=True, timeout=5)
    monkeypatch.setenv("CONCURSUS_LAB_CASSANDRA_TLS", "1")
    with pytest.raises(SourceUnavailable, match="cannot reach Cassandra"):
        cl.export(view, url, table="load", key="truck", timeout=5)
    monkeypatch.delenv("CONCURSUS_LAB_CASSANDRA_TLS")
    with pytest.raises(SourceError, match="`consistency` must be one of"):
        cl.export(view, url + "?consistency=MOSTLY", table="load", key="truck")
    assert "load" not in {
        r.table_name
        for r in session.execute(
            "SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s", [keyspace]
        )
    }  # nothing was made or written by the refused exports
    assert cl.export(view, url, table="load", key="truck", consistency="ONE") == 1
    assert read(session, keyspace, "load") == [("T1", 3)]
    with pytest.raises(SchemaError, match="connection options are for a cassandra:// target"):
        cl.export(view, "load.parquet", tls=True)
