"""A real Pekko application's journal, read as event histories without its classes.

``tests/integration/pekko`` is a small Pekko 1.1 application (Java 17, Maven Central:
pekko-persistence-cassandra 1.1.0, pekko-persistence-typed and pekko-serialization-jackson
1.1.3). The session fixture ``pekko_journal`` builds it with Maven and runs it once against
the project's Cassandra: it persists a fixed history through Pekko's own journal (carts in
JSON, accounts in CBOR, a ``persistAll`` of several events in one millisecond, partitions of
5 events so entities span several ``partition_nr``, a payload over 32 KiB that Jackson
gzips, one over 32 KiB in CBOR that it LZ4-compresses, Java-serialized and custom-serialized
events), then recovers every entity in a fresh actor system and prints the states Pekko
recovered. Here the journal is read back with concursus-lab and folded with plain Python
reducers: the states must be Pekko's own.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
import pytest

import concursus_lab as cl
from concursus_lab.exceptions import SourceError

pytestmark = [pytest.mark.cassandra, pytest.mark.slow]

UTC = dt.UTC
BASE = dt.datetime(2026, 3, 1, 9, tzinfo=UTC)

# -- the application's events, declared in Python (names as the manifests give them) -------

carts = cl.EventTypes("ShoppingCart")


@carts.event(name="ItemAdded")
class ItemAdded:
    itemId: str
    quantity: int
    at: dt.datetime
    note: str


@carts.event(name="ItemRemoved", version="2")
class ItemRemoved:
    itemId: str
    at: dt.datetime


@carts.event(name="CheckedOut")
class CheckedOut:
    at: dt.datetime


def cart_state(state: dict | None, event: Any) -> dict:
    """Cart.java's event handler, in Python."""
    state = state or {"items": {}, "checkedOut": False, "events": 0}
    items = dict(state["items"])
    match event:
        case ItemAdded(itemId=item, quantity=quantity):
            items[item] = items.get(item, 0) + quantity
        case ItemRemoved(itemId=item):
            items.pop(item, None)
    checked_out = state["checkedOut"] or isinstance(event, CheckedOut)
    return {"items": items, "checkedOut": checked_out, "events": state["events"] + 1}


accounts = cl.EventTypes("Account")


@accounts.initial(name="Opened")
class Opened:
    owner: str
    at: dt.datetime


@accounts.event(name="Deposited")
class Deposited:
    cents: int
    at: dt.datetime
    memo: str
    rate: float


@accounts.event(name="Withdrawn")
class Withdrawn:
    cents: int
    at: dt.datetime


@accounts.terminal(name="Closed")
class Closed:
    at: dt.datetime


def account_state(state: dict | None, event: Any) -> dict:
    """Account.java's event handler, in Python."""
    match event:
        case Opened(owner=owner):
            return {"owner": owner, "balance": 0, "closed": False, "events": 1}
        case Deposited(cents=cents):
            change = {"balance": state["balance"] + cents}
        case Withdrawn(cents=cents):
            change = {"balance": state["balance"] - cents}
        case Closed():
            change = {"closed": True}
    return {**state, **change, "events": state["events"] + 1}


@pytest.fixture(scope="module")
def journal(pekko_journal):
    """The journal read with the events' own ``at`` as event time."""
    with cl.open(pekko_journal.url, event_time="at") as source:
        yield source


def _raw_rows(keyspace: str, address: str, where: str = "") -> list:
    from cassandra.cluster import Cluster

    host, port = address.split(":")
    cluster = Cluster([host], port=int(port), protocol_version=5)
    try:
        return list(
            cluster.connect().execute(
                "SELECT persistence_id, partition_nr, sequence_nr, timestamp, ser_id, "
                f"ser_manifest, event, writetime(event) FROM {keyspace}.messages {where}"
            )
        )
    finally:
        cluster.shutdown()


# -- every event once, in order, and the states Pekko recovers -------------------------------


def test_every_event_once_in_sequence_order(pekko_journal, cassandra_address):
    with cl.open(pekko_journal.url) as source:  # write times: nothing can lack an event time
        events = source.events()
        quarantined = source.quarantine
    stored = _raw_rows(pekko_journal.keyspace, cassandra_address)
    assert events.height + quarantined.height == len(stored)
    assert events.select("aggregate_type", "aggregate_id", "sequence").is_duplicated().sum() == 0
    for pid, state in pekko_journal.states.items():
        kind, _, entity = pid.partition("|") if "|" in pid else ("entity", "", pid)
        mine = events.filter(
            (pl.col("aggregate_type") == kind) & (pl.col("aggregate_id") == entity)
        )
        read = sorted(
            [*mine["sequence"], *quarantined.filter(pl.col("persistence_id") == pid)["sequence_nr"]]
        )
        assert read == list(range(1, state["events"] + 1)), pid
        assert mine["sequence"].to_list() == sorted(mine["sequence"]), pid  # frame order


def test_states_are_the_states_pekko_recovers(pekko_journal, journal):
    events = journal.events()
    folded = cl.state_at(events, cart_state, types=carts)
    assert folded.counts["undecodable"] == 0
    for entity, state in folded.states.items():
        assert state == pekko_journal.states[f"ShoppingCart|{entity}"], entity
    assert len(folded.states) == 4
    folded = cl.state_at(events, account_state, types=accounts)
    assert folded.counts["undecodable"] == 0
    assert folded.states == {
        "acc-1": pekko_journal.states["Account|acc-1"],
        "acc-2": pekko_journal.states["Account|acc-2"],
    }


def test_an_untyped_persistence_id_takes_the_type_it_is_told(pekko_journal):
    with cl.open(pekko_journal.url, event_time="at", untyped="ShoppingCart") as source:
        events = source.events("ShoppingCart", ["solo-cart"])
    folded = cl.state_at(events, cart_state, types=carts)
    assert folded.states == {"solo-cart": pekko_journal.states["solo-cart"]}


def test_a_read_in_many_chunks_is_the_read_in_one(pekko_journal, journal, monkeypatch):
    """Each chunk of rows is decoded and mapped apart while the next pages arrive; the
    chunks put together are the journal read whole, in the same order."""
    from concursus_lab.sources.pekko import collect

    with pytest.warns(UserWarning, match="journal row"):
        whole = journal.events(duplicates="keep")
    quarantined = journal.quarantine
    monkeypatch.setattr(collect, "CHUNK", 7)
    with pytest.warns(UserWarning, match="journal row"):
        chunked = journal.events(duplicates="keep")
    assert chunked.equals(whole)
    assert chunked.equals(chunked.sort("aggregate_type", "aggregate_id", "sequence"))
    assert journal.quarantine.equals(quarantined)
    assert quarantined.height == 6  # several chunks quarantine rows: all are kept, in order


# -- what the journal stores, read as it was meant ---------------------------------------------


def test_a_persist_all_shares_its_millisecond_and_keeps_every_event(journal):
    four = journal.events("ShoppingCart", ["cart-004"])
    assert four["sequence"].to_list() == [1, 2, 3, 4]
    assert four["name"].unique().to_list() == ["ItemAdded"]
    millis = four["processing_timestamp"].dt.truncate("1ms")
    assert millis.n_unique() == 1  # one batch, one millisecond: only the sequence tells them apart
    assert four["processing_timestamp"].is_sorted()
    assert four["event_timestamp"].n_unique() == 1


def test_times_names_versions_and_text(journal):
    one = journal.events("ShoppingCart", ["cart-001"])
    assert one["name"].to_list() == [
        "ItemAdded",
        "ItemAdded",
        "ItemAdded",
        "ItemRemoved",
        "ItemAdded",
        "CheckedOut",
    ]
    assert one["version"].to_list() == ["0", "0", "0", "2", "0", "0"]  # ItemRemoved#2
    eggs = one.filter(pl.col("sequence") == 5).row(0, named=True)
    assert eggs["event_timestamp"] == BASE + dt.timedelta(minutes=2, microseconds=123456)
    assert '"at":"2026-03-01T09:02:00.123456789Z"' in eggs["parameters"]  # as Jackson wrote it
    assert '"itemId":"crème brûlée"' in one["parameters"][2]
    two = journal.events("ShoppingCart", ["cart-002"])
    assert '"itemId":"say \\"hi\\" \\\\ \\t 🎉"' in two["parameters"][2]


def test_gzip_and_lz4_payloads_are_unpacked(pekko_journal, journal, cassandra_address):
    stored = {
        (r.persistence_id, r.sequence_nr): r.event
        for r in _raw_rows(pekko_journal.keyspace, cassandra_address)
    }
    assert stored[("ShoppingCart|cart-002", 1)][:2] == b"\x1f\x8b"  # Jackson gzipped it
    card = journal.events("ShoppingCart", ["cart-002"]).filter(pl.col("sequence") == 1)
    assert card["parameters"].str.json_path_match("$.note").item() == (
        "A long gift message. " * 2000
    )
    assert stored[("Account|acc-2", 3)][:4] == bytes.fromhex("87d96df6")  # Pekko's LZ4 header
    memo = journal.events("Account", ["acc-2"]).filter(pl.col("sequence") == 3)
    assert memo["parameters"].str.json_path_match("$.memo").item() == (
        "a memo that goes on and on; " * 1500
    )


def test_cbor_events_read_as_json_would(journal):
    acc = journal.events("Account", ["acc-1"])
    assert acc["name"].to_list() == [
        "Opened",
        "Deposited",
        "Deposited",
        "Withdrawn",
        "Deposited",
        "Closed",
    ]
    assert acc["characteristics"].to_list() == [0] * 6  # no types given to the source
    assert acc["parameters"][2] == (
        '{"at":"2026-03-01T09:01:00Z","cents":250,"memo":"bonus €","rate":0.1}'
    )
    big = journal.events("Account", ["acc-2"])["parameters"][1]
    assert '"cents":99999999999' in big


def test_entities_spread_over_partitions_are_read_whole(pekko_journal, journal, cassandra_address):
    stored = _raw_rows(
        pekko_journal.keyspace,
        cassandra_address,
        "WHERE persistence_id = 'ShoppingCart|cart-003' AND partition_nr IN (0, 1, 2, 3)",
    )
    assert sorted({r.partition_nr for r in stored}) == [0, 1, 2]
    assert journal.events("ShoppingCart", ["cart-003"])["sequence"].to_list() == list(range(1, 15))
    ranged = journal.events_by_persistence_id("ShoppingCart|cart-003", 4, 11)
    assert ranged["sequence"].to_list() == list(range(4, 12))


# -- what cannot be read: quarantined with reasons, counted, never a crash ---------------------


def test_java_serialized_and_unknown_serializers_are_quarantined(pekko_journal):
    with cl.open(pekko_journal.url) as source:
        with pytest.warns(UserWarning, match="2 journal row"):
            legacy = source.events("Legacy")
        quarantine = source.quarantine
    assert legacy["name"].to_list() == ["Renamed", "String", "bytes", "Renamed"]
    assert legacy["parameters"].to_list()[1:3] == [
        '{"value":"a plain string event"}',
        '{"value":"AQID"}',
    ]
    rows = quarantine.sort("sequence_nr").select("sequence_nr", "ser_id", "ser_manifest").rows()
    assert rows == [(2, 1, ""), (3, 9001, "sealed-v1")]
    reasons = quarantine.sort("sequence_nr")["reason"].to_list()
    assert "Java serialization" in reasons[0]
    assert "serializer 9001" in reasons[1]
    assert quarantine["raw"][0][:2] == b"\xac\xed"  # the payload as stored, for the curious


def test_events_without_the_named_time_field_are_quarantined(pekko_journal):
    with cl.open(pekko_journal.url, event_time="at") as source:
        with pytest.warns(UserWarning):
            assert source.events("Legacy").height == 0
        assert source.quarantine.height == 6
        assert source.quarantine["reason"].str.contains("no event time").sum() == 4


# -- filters and what is refused ---------------------------------------------------------------


def test_filters_push_down(pekko_journal):
    with cl.open(pekko_journal.url) as source:  # event time = the write time
        every = source.events("ShoppingCart")
        assert every["aggregate_id"].unique().sort().to_list() == [
            "cart-001",
            "cart-002",
            "cart-003",
            "cart-004",
        ]
        assert source.events(aggregate_ids=["acc-2"])["aggregate_type"].unique().to_list() == [
            "Account"
        ]
        ordered = source.events().sort("processing_timestamp")
        cut = ordered["processing_timestamp"][20]
        known = source.events(known_at=cut)
        assert known.height == ordered.filter(pl.col("processing_timestamp") <= cut).height
        during = source.events(event_time=(cut, None))
        assert during["event_timestamp"].min() == cut
        assert (during["event_timestamp"] == during["processing_timestamp"]).all()


def test_append_is_refused_with_why(pekko_journal, journal):
    with pytest.raises(SourceError, match=r"read, never written.*sequence numbers and writer ids"):
        journal.append(journal.events().head(1))
    with cl.open(pekko_journal.url.replace("pekko+", "akka+")) as akka:  # Akka's scheme too
        assert akka.events("Account").height == 9
    assert "event time = the write time" in repr(cl.open(pekko_journal.url))
