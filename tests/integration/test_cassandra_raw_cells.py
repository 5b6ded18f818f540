"""The public path of :mod:`concursus_lab.sources.cassandra.raw_cells` against a real Cassandra.

Off the verified driver versions, reads let the driver decode every cell and write it back
as the bytes sent. Here the same keyspace is read both ways, and the frames (and the
quarantines) must be the same: a full scan, partition reads with an event-time slice, the
write-time fill for rows with no processingId, and rows set aside.
"""

from __future__ import annotations

import uuid

import pytest

import concursus_lab as cl
from concursus_lab.sources.cassandra import raw_cells
from tests.contract import canonical_sort
from tests.integration.test_cassandra import _plain_session

pytestmark = pytest.mark.cassandra


@pytest.fixture
def filled(cassandra_address):
    """A keyspace of sample events and rows as Java Concursus (or a hand) writes them."""
    keyspace = f"cl_test_{uuid.uuid4().hex[:12]}"
    url = f"cassandra://{cassandra_address}/{keyspace}"
    plain = _plain_session(cassandra_address)
    try:
        with cl.open(url, create=True) as store:
            store.append(cl.sample.parcels(400, seed=5))
        insert = (
            f"INSERT INTO {keyspace}.Event (aggregateType, aggregateId, eventTimestamp, "
            "streamId, processingId, name, version, parameters, characteristics) VALUES "
        )
        plain.execute(
            insert + "('person', 'id1', 1459420277981, '', c4f74bc0-e9f0-11f1-ffff-ffffffffff65, "
            """'created', null, {'name': '"Zoë"', 'at': '1459420277.981000000'}, null)"""
        )
        plain.execute(
            insert + "('person', 'id2', -86400000, 'mobile', null, 'created', '0', {}, 1) "
            "USING TIMESTAMP 1772409600123456"
        )
        plain.execute(
            insert + "('person', 'bad', 0, '', now(), 'created', '0', {'k': 'not json'}, 7)"
        )
        yield url
    finally:
        plain.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)
        plain.cluster.shutdown()


def _read_all(url: str) -> dict:
    """Every kind of read, and whether the source took the fast path."""
    with cl.open(url) as store, pytest.warns(UserWarning, match="could not be decoded"):
        read = {"scan": canonical_sort(store.events())}
        read["quarantine"] = store.quarantine.sort("aggregate_id")
        ids = read["scan"]["aggregate_id"].unique().sort().to_list()[:50]
        parcels = store.events("parcel", ids, event_time=("2024-01-01", None))
        read["parcels"] = canonical_sort(parcels)  # partitions arrive in any order
        read["people"] = canonical_sort(store.events("person", ["id1", "id2", "bad"]))
        read["fast"] = store._raw
    return read


def test_the_public_path_reads_the_same_frames_as_the_fast_path(filled, monkeypatch):
    fast = _read_all(filled)
    assert fast.pop("fast") is True, "no fast path: see tests/unit/test_cassandra_raw_cells.py"
    monkeypatch.setattr(raw_cells, "VERIFIED", frozenset())
    monkeypatch.setattr(raw_cells, "_HANDLER", None)
    monkeypatch.setattr(raw_cells, "_WARNED", False)
    with pytest.warns(RuntimeWarning, match="public API"):
        public = _read_all(filled)
    assert public.pop("fast") is False
    for name, frame in fast.items():
        assert frame.height > 0, name
        assert frame.equals(public[name]), name
    written = fast["scan"].filter(aggregate_id="id2")["processing_timestamp"]
    assert written.dt.epoch("us").to_list() == [1772409600123456]  # the write time
    assert fast["quarantine"]["aggregate_id"].to_list() == ["bad"]
