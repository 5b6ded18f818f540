"""The Cassandra source against a real Cassandra: the contract, Java Concursus's bytes, faults.

Each test works in its own new keyspace (``cl_test_<random>``), dropped afterwards. Rows
"written by Java Concursus" are inserted with plain CQL exactly as Concursus writes them,
and what the source writes is read back with plain CQL, byte for byte.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
import uuid

import orjson
import polars as pl
import pytest

import concursus_lab as cl
from concursus_lab.exceptions import SchemaError, SourceError, SourceUnavailable
from concursus_lab.frame.identity import resolve
from concursus_lab.frame.jhash import java_hash
from concursus_lab.frame.schema import INITIAL, TERMINAL, for_writing
from concursus_lab.sources.cassandra import writing
from concursus_lab.sources.copying import copy
from tests.contract import SourceContract, at, canonical_sort, event, frame

pytestmark = pytest.mark.cassandra

JAVA_ID = "c4f74bc0-e9f0-11f1-ffff-ffffffffff65"  # a processingId as Java Concursus writes it
UTC = dt.UTC


def _plain_session(cassandra_address: str):
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
    from cassandra.policies import ConstantReconnectionPolicy, RoundRobinPolicy

    host, port = cassandra_address.rsplit(":", 1)
    profile = ExecutionProfile(load_balancing_policy=RoundRobinPolicy())
    cluster = Cluster(
        [host],
        port=int(port),
        protocol_version=5,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        reconnection_policy=ConstantReconnectionPolicy(1.0, max_attempts=None),
    )
    return cluster.connect()


@pytest.fixture
def plain(cassandra_address):
    """A plain driver session, with the driver's own types: CQL as anyone would write it."""
    session = _plain_session(cassandra_address)
    yield session
    session.cluster.shutdown()


@pytest.fixture
def keyspace(cassandra_address):
    name = f"cl_test_{uuid.uuid4().hex[:12]}"
    yield name
    # a session of its own: the fault test restarts the server under the test's sessions
    for attempt in range(30):
        try:
            session = _plain_session(cassandra_address)
        except Exception:
            if attempt == 29:
                raise
            time.sleep(2)
            continue
        try:
            session.execute(f"DROP KEYSPACE IF EXISTS {name}", timeout=120)
            return
        finally:
            session.cluster.shutdown()


@pytest.fixture
def url(cassandra_address, keyspace):
    return f"cassandra://{cassandra_address}/{keyspace}"


@pytest.fixture
def store(url):
    source = cl.open(url, create=True)
    yield source
    source.close()


class TestCassandraContract(SourceContract):
    keeps_every_delivery = False

    @pytest.fixture
    def source(self, store):
        return store


# -- reading what Java Concursus wrote -----------------------------------------------------


def insert_java_row(plain, keyspace, values: str, *, using: str = "") -> None:
    plain.execute(
        f"INSERT INTO {keyspace}.Event (aggregateType, aggregateId, eventTimestamp, streamId, "
        f"processingId, name, version, parameters, characteristics) VALUES ({values}) {using}"
    )


def test_rows_written_by_java_concursus_are_read(store, plain, keyspace):
    insert_java_row(
        plain,
        keyspace,
        f"'person', 'id1', 1459420277981, '', {JAVA_ID}, 'created', '0', "
        """{'name': '"Arthur Putey"', 'dob': '[1968,5,28]', 'at': '1459420277.981000000',
            'age': '42', 'nickname': 'null', 'address': '{"town":"Lewisham"}'}, 1""",
    )
    insert_java_row(
        plain,
        keyspace,
        "'person', 'id1', 1459420279000, 'mobile', c4f74bc1-e9f0-11f1-ffff-ffffffffff65, "
        "'deleted', '1', {}, 2",
    )
    insert_java_row(
        plain,
        keyspace,
        "'person', 'id2', 1459420278000, '', c4f74bc2-e9f0-11f1-8888-ffffffffff65, "
        "'created', '0', {'name': '\"Bob\"'}, 1",
    )
    read = store.events(aggregate_type="person").sort("aggregate_id", "event_timestamp")
    assert store.quarantine.height == 0
    assert read.schema == cl.SCHEMA
    assert read["aggregate_id"].to_list() == ["id1", "id1", "id2"]
    assert read["stream_id"].to_list() == ["", "mobile", ""]
    assert read["characteristics"].to_list() == [1, 2, 1]
    assert read["version"].to_list() == ["0", "1", "0"]
    assert read["event_timestamp"].to_list() == [
        dt.datetime(2016, 3, 31, 10, 31, 17, 981000, tzinfo=UTC),
        dt.datetime(2016, 3, 31, 10, 31, 19, tzinfo=UTC),
        dt.datetime(2016, 3, 31, 10, 31, 18, tzinfo=UTC),
    ]
    first = read.row(0, named=True)
    assert first["processing_id"] == JAVA_ID
    assert first["processing_timestamp"] == cl.frame.processing_time(JAVA_ID)
    assert first["processing_timestamp"] == dt.datetime(
        2026, 11, 26, 23, 26, 13, 116000, tzinfo=UTC
    )
    assert first["parameters"] == (
        '{"address":{"town":"Lewisham"},"age":42,"at":1459420277.981000000,"dob":[1968,5,28],'
        '"name":"Arthur Putey","nickname":null}'
    )
    assert read["parameters"][1] == "{}"
    # one aggregate by partition query, with the event-time slice pushed to the server
    one = store.events(
        aggregate_type="person", aggregate_ids=["id1"], event_time=(None, "2016-03-31 10:31:18")
    )
    assert one["name"].to_list() == ["created"]


def test_a_row_with_no_processing_id_is_processed_when_cassandra_wrote_it(store, plain, keyspace):
    written = 1772409600123456  # 2026-03-02 00:00:00.123456 UTC, in microseconds
    insert_java_row(
        plain,
        keyspace,
        "'parcel', 'p1', 1772409600000, '', null, 'receivedAtDepot', '0', {}, 0",
        using=f"USING TIMESTAMP {written}",
    )
    read = store.events()
    assert read["processing_id"].to_list() == [None]
    assert read["processing_timestamp"].to_list() == [
        dt.datetime(2026, 3, 2, 0, 0, 0, 123456, tzinfo=UTC)
    ]


def test_undecodable_rows_are_quarantined_never_dropped(store, plain, keyspace):
    store.append(frame(event("good", 10, 11)))
    insert_java_row(
        plain,
        keyspace,
        "'parcel', 'bad', 1772409600000, '', now(), 'receivedAtDepot', '0', "
        "{'depotId': 'Lewisham'}, 0",
    )
    insert_java_row(plain, keyspace, "'parcel', 'odd', 1772409600000, '', now(), 'x', '0', {}, 5")
    with pytest.warns(UserWarning, match=r"2 row\(s\) .* `\.quarantine`"):
        read = store.events()
    assert read["aggregate_id"].to_list() == ["good"]
    quarantine = store.quarantine.sort("aggregate_id")
    assert quarantine["aggregate_id"].to_list() == ["bad", "odd"]
    assert quarantine["reason"][0].startswith("parameter 'depotId' is not valid JSON")
    assert quarantine["parameters"][0] == '{"depotId":"Lewisham"}'
    assert quarantine["reason"][1].startswith("characteristics is not 0")
    assert quarantine["characteristics"][1] == 5


# -- writing what Java Concursus writes ----------------------------------------------------


def test_append_writes_what_java_concursus_writes(store, plain, keyspace):
    written = frame(
        event(
            "p1",
            10,
            20,
            parameters='{"depotId":"Lewisham","n":42,"dob":[1968,5,28],"x":null,"f":0.1}',
            characteristics=1,
            stream_id="driver-app",
        )
    )
    store.append(written)
    row = plain.execute(
        f"SELECT eventTimestamp, streamId, processingId, name, version, parameters, "
        f"characteristics, WRITETIME(name) AS written FROM {keyspace}.Event "
        "WHERE aggregateType = 'parcel' AND aggregateId = 'p1'"
    ).one()
    assert dict(row.parameters) == {
        "depotId": '"Lewisham"',
        "n": "42",
        "dob": "[1968,5,28]",
        "x": "null",
        "f": "0.1",
    }
    assert row.processingid == uuid.UUID(written["processing_id"].item())
    assert row.eventtimestamp == at(10).replace(tzinfo=None)
    assert (row.streamid, row.name, row.version, row.characteristics) == (
        "driver-app",
        "receivedAtDepot",
        "0",
        1,
    )
    assert row.written == int(at(20).timestamp() * 1_000_000)


def test_batched_append_stores_what_one_plain_insert_per_event_stores(
    store, plain, keyspace, caplog
):
    # the append serialises cells itself and packs whole aggregates into batches; read back,
    # every row (and its write time) is what the driver's own INSERT of each event writes
    history = cl.sample.parcels(400, seed=9)
    bulky = history.filter(pl.col("aggregate_id") == history["aggregate_id"][0]).with_columns(
        pl.lit("parcel-bulky-ü").alias("aggregate_id"),
        pl.lit('{"note":"' + "ø" * 2500 + '"}').alias("parameters"),
    )  # more than a batch of several aggregates may hold: sent alone, whole
    history = pl.concat([history, bulky])
    with caplog.at_level("WARNING", logger="cassandra"):
        store.append(history)
    # within Cassandra's thresholds: the server warned of no batch (the driver logs each)
    assert [r.getMessage() for r in caplog.records if "Server warning" in r.getMessage()] == []
    other = f"{keyspace}_plain"
    cl.open(f"{store.url.rsplit('/', 1)[0]}/{other}", create=True).close()
    try:
        insert = plain.prepare(
            f"INSERT INTO {other}.Event (aggregateType, aggregateId, eventTimestamp, streamId, "
            "processingId, name, version, parameters, characteristics) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?"
        )
        for r in resolve(history, "last").iter_rows(named=True):  # one delivery per identity
            values = {k: orjson.dumps(v).decode() for k, v in orjson.loads(r["parameters"]).items()}
            plain.execute(
                insert,
                (
                    r["aggregate_type"],
                    r["aggregate_id"],
                    r["event_timestamp"],
                    r["stream_id"],
                    uuid.UUID(r["processing_id"]),
                    r["name"],
                    r["version"],
                    values,
                    r["characteristics"],
                    int(r["processing_timestamp"].timestamp() * 1_000_000),
                ),
            )
        select = (
            "SELECT aggregateType, aggregateId, eventTimestamp, streamId, processingId, name, "
            "version, parameters, characteristics, WRITETIME(name) AS w FROM {}.Event"
        )

        def rows(name):
            found = [tuple(r) for r in plain.execute(select.format(name))]
            return sorted((*r[:7], sorted((r[7] or {}).items()), *r[8:]) for r in found)

        ours, theirs = rows(keyspace), rows(other)
        assert len(ours) == history.select(cl.IDENTITY).n_unique()
        assert ours == theirs
    finally:
        plain.execute(f"DROP KEYSPACE IF EXISTS {other}", timeout=120)


def test_batch_sizes_are_what_cassandra_counts(store, caplog, monkeypatch):
    # the packer keeps batches within the server's 5 KiB by Cassandra's own count of a
    # batch: one batch of 12 aggregates, over both thresholds on purpose, so the server
    # says what it counted
    monkeypatch.setattr(writing, "BATCH_BYTES", 1_000_000)
    monkeypatch.setattr(writing, "BATCH_PARTITIONS", 12)
    history = cl.sample.parcels(12, seed=4).with_columns(
        pl.when(pl.int_range(pl.len()) % 3 == 0)  # short and long ids, maps of 0-3 entries
        .then(pl.lit('{"a":1,"bb":"x","ccc":[1,2]}'))
        .when(pl.int_range(pl.len()) % 3 == 1)
        .then(pl.lit("{}"))
        .otherwise(pl.col("parameters"))
        .alias("parameters"),
    )
    rank = pl.col("aggregate_id").rank("dense").cast(pl.Int64)
    history = history.with_columns(  # ids of 1-6 bytes: "11", "222", "3", "44", ...
        rank.cast(pl.String).repeat_by(rank % 3 + 1).list.join("").alias("aggregate_id")
    )
    with caplog.at_level("WARNING", logger="cassandra"):
        store.append(history)
    said = " ".join(r.getMessage() for r in caplog.records)
    reported = [int(size) for size in re.findall(r"is of size (\d+)", said)]
    written = resolve(for_writing(history, milliseconds="Cassandra"), "last")
    aggregates = written.select(pl.struct("aggregate_type", "aggregate_id").n_unique()).item()
    _, sizes = writing.cells(written)
    assert aggregates == 12
    assert reported == [int(sizes.sum()) + writing._PARTITION_BYTES * aggregates]


def test_a_fresh_time_uuid_when_the_frame_has_no_processing_id(store, plain, keyspace):
    no_id = frame(event("p1", 10, 20)).with_columns(pl.lit(None, pl.String).alias("processing_id"))
    store.append(no_id)
    stored = plain.execute(f"SELECT processingId FROM {keyspace}.Event").one().processingid
    assert stored.version == 1
    assert cl.frame.processing_time(str(stored)) == at(20)
    assert store.events()["processing_id"].item() == str(stored)


def test_catalogue_rows_have_concursus_buckets(store, plain, keyspace):
    created = {"characteristics": INITIAL}
    events = frame(
        event("id1", 10, 11, **created),
        event("id1", 12, 13),
        event("parcel-000001", 10, 11, **created),
        event("t1", 10, 11, aggregate_type="truck", name="departed", parameters="{}", **created),
    )
    store.append(events)
    rows = {tuple(r) for r in plain.execute(f"SELECT * FROM {keyspace}.Catalogue")}
    # Java: "id1".hashCode() == 104054, "parcel-000001".hashCode() == -50622395
    assert ("parcel", 104054 % 8, "id1") in rows
    assert ("parcel", 50622395 % 8, "parcel-000001") in rows
    expected = {
        (t, abs(h) % 8, i)
        for t, i, h in zip(
            ["parcel", "parcel", "truck"],
            ["id1", "parcel-000001", "t1"],
            java_hash(pl.Series(["id1", "parcel-000001", "t1"])).to_list(),
            strict=True,
        )
    }
    assert rows == expected


def test_the_catalogue_holds_what_began_and_has_not_ended_as_concursus_keeps_it(
    store, plain, keyspace
):
    # Concursus's AggregateCatalogue: add on an initial event, remove on a terminal event,
    # nothing on any other
    initial, terminal = INITIAL, TERMINAL
    store.append(
        frame(
            event("begun", 10, 11, characteristics=initial),
            event("begun", 12, 13),
            event("middle-only", 10, 11),
            event("ended", 10, 11, characteristics=initial),
            event("ended", 20, 21, characteristics=terminal),
            event("ends-later", 10, 11, characteristics=initial),
        )
    )

    def catalogue() -> set[str]:
        return {r.aggregateid for r in plain.execute(f"SELECT * FROM {keyspace}.Catalogue")}

    assert catalogue() == {"begun", "ends-later"}
    store.append(frame(event("ends-later", 30, 31, characteristics=terminal)))
    assert catalogue() == {"begun"}
    store.append(frame(event("ended", 40, 41, characteristics=initial)))  # begun again
    assert catalogue() == {"begun", "ended"}


def test_the_last_processed_delivery_wins_within_a_frame_and_across_appends(store):
    store.append(
        frame(
            event("p1", 10, 30, parameters='{"depotId":"late"}'),
            event("p1", 10, 20, parameters='{"depotId":"early"}'),
        )
    )
    assert store.events()["parameters"].to_list() == ['{"depotId":"late"}']
    store.append(frame(event("p1", 10, 25, parameters='{"depotId":"replayed"}')))
    assert store.events()["parameters"].to_list() == ['{"depotId":"late"}']
    store.append(frame(event("p1", 10, 40, parameters='{"depotId":"latest"}')))
    assert store.events()["parameters"].to_list() == ['{"depotId":"latest"}']


def test_sub_millisecond_event_times_are_refused(store):
    fine = frame(event("p1", 10, 11))
    finer = fine.with_columns(pl.col("event_timestamp") + dt.timedelta(microseconds=5))
    with pytest.raises(SchemaError, match="millisecond"):
        store.append(finer)


# -- scanning ------------------------------------------------------------------------------


def test_token_range_scan_returns_every_row_exactly_once(store, url):
    sample = cl.sample.parcels(1500, seed=4)
    store.append(sample)
    with cl.open(url, splits=7, fetch_size=97, concurrency=3) as scanner:
        scanned = scanner.events()
        ids = scanned["aggregate_id"].unique().to_list()
        per_partition = scanner.events(aggregate_type="parcel", aggregate_ids=ids)
    assert scanned.select(cl.IDENTITY).is_duplicated().sum() == 0
    assert canonical_sort(scanned).equals(canonical_sort(per_partition))
    winners = sample.sort("processing_timestamp").unique(cl.IDENTITY, keep="last")
    assert canonical_sort(scanned).equals(canonical_sort(winners))
    assert set(ids) == set(sample["aggregate_id"].unique())


# -- opening -------------------------------------------------------------------------------


def test_a_missing_keyspace_says_how_to_make_it(cassandra_address):
    with pytest.raises(SourceUnavailable, match="create=True"):
        cl.open(f"cassandra://{cassandra_address}/cl_test_missing_{uuid.uuid4().hex[:8]}")


def test_missing_tables_say_how_to_make_them(cassandra_address, plain, keyspace):
    plain.execute(
        f"CREATE KEYSPACE {keyspace} WITH replication = "
        "{'class': 'SimpleStrategy', 'replication_factor': 1}"
    )
    with pytest.raises(SourceUnavailable, match=r"event does not exist.*create=True"):
        cl.open(f"cassandra://{cassandra_address}/{keyspace}")


def test_an_unknown_local_dc_names_the_data_centres_there_are(cassandra_address, store):
    # issue 15, item 9: this was a raw AttributeError from inside our error handling
    with pytest.raises(SourceError, match=r"'nowhere' is not a data centre.*\['datacenter1'\]"):
        cl.open(f"cassandra://{cassandra_address}/{store.keyspace}?local_dc=nowhere")
    with cl.open(f"cassandra://{cassandra_address}/{store.keyspace}", local_dc="datacenter1") as ok:
        assert ok.events().height == 0


def test_an_unreachable_server_says_how_to_start_one():
    with pytest.raises(SourceUnavailable, match="concursus-lab services start cassandra"):
        cl.open("cassandra://127.0.0.1:1/concursus", timeout=2)


def test_repr_is_useful(store, url):
    text = repr(store)
    assert text.startswith(f"CassandraSource({url!r}: Cassandra ")
    assert "1 of 1 node(s) up" in text
    store.close()
    assert repr(store) == f"CassandraSource({url!r}, closed)"
    with pytest.raises(SourceError, match="closed"):
        store.events()


# -- copying -------------------------------------------------------------------------------


def test_copy_local_store_to_cassandra_and_back(tmp_path, url):
    local = cl.open(tmp_path / "from", create=True)
    sample = cl.sample.parcels(400, seed=8)
    local.append(sample)
    copied = copy(local, url, create=True, chunk_events=500, progress=False)
    assert copied == sample.height  # every delivery offered; Cassandra keeps the winners
    back = copy(url, tmp_path / "back", create=True, progress=False)
    winners = local.events()
    assert back == winners.height
    assert canonical_sort(cl.open(tmp_path / "back").events()).equals(canonical_sort(winners))


def test_copy_command_line(tmp_path, store, url, capsys):
    import argparse

    from concursus_lab.sources.copying import register

    store.append(cl.sample.parcels(50, seed=5))
    parser = argparse.ArgumentParser(prog="concursus-lab")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["copy", url, str(tmp_path / "offline"), "--create", "--no-progress"])
    assert args.func(args) == 0
    assert f"copied {store.events().height:,} events from {url}" in capsys.readouterr().out
    assert canonical_sort(cl.open(tmp_path / "offline").events()).equals(
        canonical_sort(store.events())
    )


# -- faults --------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_server_restart_during_a_scan_is_survived_or_reported(
    store, url, cassandra_address, monkeypatch
):
    """Stop the real Cassandra in the middle of a scan, start it again, and look.

    The scan is held at its fifth page until the server has stopped answering, so the
    rest of it meets the outage whatever the speed of the machine.
    """
    import socket

    from concursus_lab import services
    from concursus_lab.sources.cassandra.reader import Reader

    host, port = cassandra_address.rsplit(":", 1)
    store.append(cl.sample.parcels(6000, seed=9))
    expected = canonical_sort(store.events())
    pages = {"n": 0}
    restarted = threading.Event()

    def answering() -> bool:
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
        except OSError:
            return False
        return True

    def restart() -> None:
        try:
            services.stop("cassandra")
            time.sleep(1.0)
            services.start("cassandra")
        finally:
            restarted.set()

    add = Reader.add

    def add_then_restart(self, task, rows):
        add(self, task, rows)
        pages["n"] += 1
        if pages["n"] == 5:
            threading.Thread(target=restart, daemon=True).start()
            deadline = time.monotonic() + 120
            while answering() and time.monotonic() < deadline:
                time.sleep(0.1)

    monkeypatch.setattr(Reader, "add", add_then_restart)
    try:
        # no retries: the read must stop, and say what it read and what it did not
        brittle = cl.open(url, concurrency=1, fetch_size=100, retries=0)
        with brittle, pytest.raises(cl.IncompleteRead, match="stopped because") as failure:
            brittle.events()
        assert 0 < failure.value.partial.height < expected.height
        assert "not read to the end" in str(failure.value)
        assert restarted.wait(timeout=300)
        # with retries: the same read rides out a restart, or says that it did not
        pages["n"] = 0
        restarted.clear()
        with cl.open(url, concurrency=2, fetch_size=100, retries=20) as patient:
            try:
                read = patient.events()
            except cl.IncompleteRead as exc:
                print(f"the restart was reported: {exc}")  # shown with pytest -s
                assert exc.partial.height < expected.height
            else:
                print(f"the restart was ridden out: {read.height} events read")
                assert canonical_sort(read).equals(expected)
        assert restarted.wait(timeout=300)
    finally:
        services.ensure("cassandra")


def test_a_source_dropped_without_close_lets_go_of_its_threads(store, url):
    # issue 15, item 4: a notebook cell that opens a source again must not grow threads
    import gc

    store.append(frame(event("p1", 10, 11)))

    def threads() -> int:
        # Each open cluster has one task scheduler and one heartbeat thread: a source that
        # kept its cluster would add one of each. Its executor's pool threads are not
        # counted: any live cluster (the fixture's `store` too) starts them lazily, when a
        # schema event from another test reaches it (a flaky 5 == 4 in a clean run).
        driver = ("Task Scheduler", "Connection heartbeat")
        return sum(1 for t in threading.enumerate() if t.name.startswith(driver))

    before = threads()  # `store`'s cluster runs already
    assert before >= 2, [t.name for t in threading.enumerate()]

    def the_cell_run_again() -> None:
        source = cl.open(url)  # dropped at the end, never closed
        assert source.events().height == 1

    for _ in range(3):
        the_cell_run_again()
    gc.collect()
    deadline = time.monotonic() + 20
    while threads() > before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert threads() == before, [t.name for t in threading.enumerate()]
