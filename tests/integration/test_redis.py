"""Concursus's Redis layout on a real Redis: the source contract, Java's own bytes, the catalogue.

Each test works in database 1, emptied before it (the test command's Redis holds nothing
else). Histories "written by Java Concursus" are written with raw ``SADD`` commands of the
exact text its ``RedisEventLog`` writes (``EventJson``, Jackson's field order), never through
our ``append``.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

import concursus_lab as cl
from concursus_lab.exceptions import SchemaError, SourceError, SourceUnavailable
from concursus_lab.frame.schema import INITIAL, TERMINAL
from tests.contract import SourceContract, canonical_sort, event, frame

pytestmark = pytest.mark.redis
DB = 1
JAVA_ID = "c4f74bc0-e9f0-11f1-ffff-ffffffffff65"  # a time-based processingId as Java writes it


@pytest.fixture
def url(redis_address):
    import redis

    host, port = redis_address.rsplit(":", 1)
    raw = redis.Redis(host=host, port=int(port), db=DB)
    raw.flushdb()
    raw.close()
    return f"redis://{redis_address}/{DB}"


@pytest.fixture
def store(url):
    with cl.open(url) as source:
        yield source


@pytest.fixture
def raw(store):
    return store._client


class TestRedisContract(SourceContract):
    @pytest.fixture
    def source(self, store):
        return store


def _java(aggregate_id: str, name: str, millis: int, processing_id: str, **extra) -> str:
    """An event as Concursus's EventJson writes it: Jackson's field order, no spaces."""
    parameters = extra.pop("parameters", '{"depotId":"Lewisham"}')
    characteristics = extra.pop("characteristics", 0)
    return (
        f'{{"aggregateType":"parcel","aggregateId":"{aggregate_id}","name":"{name}",'
        f'"version":"0","eventTimestamp":{millis},"streamId":"","processingId":'
        f'"{processing_id}","characteristics":{characteristics},"parameters":{parameters}}}'
    )


def test_events_written_by_java_concursus_read_back_exactly(store, raw):
    raw.sadd("parcel:id1", _java("id1", "receivedAtDepot", 1_459_420_277_981, JAVA_ID))
    raw.sadd(
        "parcel:id1",
        _java("id1", "delivered", 1_459_420_300_000, JAVA_ID.replace("c4f7", "c5f7"),
              parameters='{"account":123456789012345678901234567890,"fee":1.10}'),
    )
    raw.sadd("parcel", "id1")  # its catalogue entry
    read = store.events().sort("event_timestamp")
    assert read["name"].to_list() == ["receivedAtDepot", "delivered"]
    assert read["event_timestamp"][0] == dt.datetime(2016, 3, 31, 10, 31, 17, 981000, tzinfo=dt.UTC)
    assert read["processing_id"][0] == JAVA_ID
    assert read["processing_timestamp"][0] == cl.frame.processing_time(
        pl.Series([JAVA_ID])
    ).item()
    assert read["parameters"][1] == '{"account":123456789012345678901234567890,"fee":1.10}'
    assert store.quarantine.height == 0


def test_what_we_write_is_what_java_concursus_writes(store, raw):
    one = frame(event("p1", 10, 11, characteristics=INITIAL))
    store.append(one)
    (member,) = raw.smembers("parcel:p1")
    e = one.row(0, named=True)
    expected = _java(
        "p1", "receivedAtDepot", int(e["event_timestamp"].timestamp() * 1000), e["processing_id"],
        characteristics=INITIAL,
    )
    assert member.decode() == expected
    assert raw.smembers("parcel") == {b"p1"}


def test_the_catalogue_holds_what_began_and_has_not_ended(store, raw):
    store.append(
        frame(
            event("a", 1, 2, characteristics=INITIAL),
            event("b", 1, 2, characteristics=INITIAL),
            event("b", 5, 6, characteristics=TERMINAL),
            event("c", 1, 2),  # neither: the catalogue is left alone
        )
    )
    assert raw.smembers("parcel") == {b"a"}
    store.append(frame(event("a", 9, 10, characteristics=TERMINAL)))
    assert raw.smembers("parcel") == set()


def test_members_that_cannot_be_used_are_quarantined_with_their_key(store, raw):
    raw.sadd("parcel:good", _java("good", "delivered", 1_000, JAVA_ID))
    raw.sadd("parcel:bad", b"not json", _java("bad", "delivered", 1_000, ""))
    raw.sadd("parcel:elsewhere", _java("other", "delivered", 1_000, JAVA_ID))
    with pytest.warns(UserWarning, match=r"3 member\(s\) of redis://.* are in `.quarantine`"):
        read = store.events()
    assert read["aggregate_id"].to_list() == ["good"]
    q = store.quarantine.sort("reason")
    assert q["key"].to_list() == ["parcel:bad", "parcel:bad", "parcel:elsewhere"]
    reasons = " | ".join(q["reason"])
    assert "no time-based processingId" in reasons and "not JSON" in reasons
    assert "the event of another aggregate" in reasons
    assert set(q["raw"]) >= {b"not json"}


def test_ids_read_only_their_keys_without_a_scan(store, raw):
    store.append(cl.sample.parcels(300, seed=7))
    ids = store.events()["aggregate_id"].unique().sort().head(4).to_list()
    before = _calls(raw)
    read = store.events("parcel", ids)
    after = _calls(raw)
    assert sorted(read["aggregate_id"].unique()) == ids
    assert after.get("scan", 0) == before.get("scan", 0)  # no SCAN, only the four keys
    assert after["sscan"] - before.get("sscan", 0) == len(ids)


def _calls(raw) -> dict[str, int]:
    stats = raw.info("commandstats")
    return {k.removeprefix("cmdstat_"): v["calls"] for k, v in stats.items()}


def test_an_id_that_is_not_time_based_is_refused_before_anything_is_written(store, raw):
    bad = frame(event("p1", 1, 2), event("p2", 1, 2)).with_columns(
        pl.Series("processing_id", [None, "00000000-0000-4000-8000-000000000000"])
    )
    with pytest.raises(SchemaError, match=r"row 1 has processing_id '00000000"):
        store.append(bad)
    assert raw.dbsize() == 0


def test_urls_are_checked_and_an_absent_server_says_how_to_start_one(redis_address):
    with pytest.raises(SourceError, match="credentials do not belong"):
        cl.open(f"redis://me:secret@{redis_address}/0")
    with pytest.raises(SourceError, match="database number"):
        cl.open(f"redis://{redis_address}/events")
    with pytest.raises(SourceUnavailable, match="concursus-lab services start redis"):
        cl.open("redis://127.0.0.1:1/0")


def test_a_copy_from_the_local_store_reads_back_the_same(store, tmp_path):
    local = cl.open(tmp_path / "s", create=True)
    local.append(cl.sample.parcels(100, seed=8))
    cl.copy(local, store)
    assert canonical_sort(store.events(duplicates="keep")).equals(
        canonical_sort(local.events(duplicates="keep"))
    )
