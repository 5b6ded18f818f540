"""Servers killed with SIGKILL in the middle of a read, then started again.

Each read is held at a fixed point (after its first batch of records or its fifth page) until
the killed server has stopped answering, so the rest of the read meets the outage whatever the
speed of the machine. What must hold: the read either rides the restart out with every event,
or raises ``IncompleteRead`` whose partial frame holds only real events; and once the server
is back, a new read returns exactly what was written (SIGKILL loses nothing that was
acknowledged).
"""

from __future__ import annotations

import threading
import time
import uuid

import polars as pl
import pytest

import concursus_lab as cl
from concursus_lab.sources.cassandra.reader import Reader
from concursus_lab.sources.kafka.reading import Scan
from concursus_lab.sources.redis.reading import Walk
from tests.contract import canonical_sort

pytestmark = pytest.mark.slow


def _kill_then_restart(server, restarted: threading.Event) -> None:
    def run() -> None:
        try:
            time.sleep(1.0)  # down for a while: the reader must notice
            server.start()
        finally:
            restarted.set()

    server.kill()
    threading.Thread(target=run, daemon=True).start()


def _outcome(read, expected: pl.DataFrame) -> str:
    """What the read during the outage did; fails the test when it lost or invented events."""
    try:
        got = read()
    except cl.IncompleteRead as exc:
        partial = exc.partial
        assert 0 < partial.height < expected.height
        assert partial.join(expected, on=list(cl.IDENTITY), how="anti").height == 0
        return f"IncompleteRead with {partial.height:,} of {expected.height:,}"
    assert canonical_sort(got).equals(expected)
    return f"rode the restart out, all {got.height:,} read"


def test_kafka_killed_mid_read(scratch_kafka, monkeypatch, held):
    url = f"kafka://{scratch_kafka.address}/faults-{uuid.uuid4().hex[:8]}"
    writer = cl.open(url, create=True, partitions=3)
    writer.append(cl.sample.parcels(12_000, seed=21))
    expected = canonical_sort(writer.events().select(cl.SCHEMA.names()))
    restarted = threading.Event()
    take = Scan._take
    calls = {"n": 0}

    def take_then_kill(self, chunks, todo, bar):
        moved = take(self, chunks, todo, bar)
        calls["n"] += 1
        if calls["n"] == 1 and chunks:
            _kill_then_restart(scratch_kafka, restarted)
        return moved

    monkeypatch.setattr(Scan, "_take", take_then_kill)
    reader = cl.open(url, client={"max_poll_records": 500}, timeout=120)
    during = _outcome(lambda: reader.events().select(cl.SCHEMA.names()), expected)
    monkeypatch.undo()
    assert restarted.wait(timeout=300)
    after = canonical_sort(cl.open(url).events().select(cl.SCHEMA.names()))
    assert after.equals(expected)
    held(f"during the outage {during}; after the restart all {after.height:,} events, exact")


def test_cassandra_killed_mid_read(scratch_cassandra, monkeypatch, held):
    url = f"cassandra://{scratch_cassandra.address}/faults_{uuid.uuid4().hex[:8]}"
    with cl.open(url, create=True) as writer:
        writer.append(cl.sample.parcels(3_000, seed=22))
        expected = canonical_sort(writer.events())
    restarted = threading.Event()
    add = Reader.add
    pages = {"n": 0}

    def add_then_kill(self, task, rows):
        add(self, task, rows)
        pages["n"] += 1
        if pages["n"] == 5:
            _kill_then_restart(scratch_cassandra, restarted)

    monkeypatch.setattr(Reader, "add", add_then_kill)
    with cl.open(url, concurrency=1, fetch_size=100, retries=0) as brittle:
        during = _outcome(brittle.events, expected)
    monkeypatch.undo()
    assert restarted.wait(timeout=300)
    with cl.open(url) as again:
        after = canonical_sort(again.events())
    assert after.equals(expected)
    held(f"during the outage {during}; after the restart all {after.height:,} events, exact")


def test_redis_killed_mid_read(scratch_redis, monkeypatch, held):
    url = f"redis://{scratch_redis.address}/0"
    with cl.open(url) as writer:
        writer.append(cl.sample.parcels(3_000, seed=23))
        expected = canonical_sort(writer.events(duplicates="keep"))
    restarted = threading.Event()
    read = Walk._read
    trips = {"n": 0}

    def read_then_kill(self, keys):
        read(self, keys)
        trips["n"] += 1
        if trips["n"] == 2:
            _kill_then_restart(scratch_redis, restarted)

    monkeypatch.setattr(Walk, "_read", read_then_kill)
    with cl.open(url, timeout=60) as reader:
        during = _outcome(lambda: reader.events(duplicates="keep"), expected)
    monkeypatch.undo()
    assert restarted.wait(timeout=120)
    with cl.open(url) as again:
        after = canonical_sort(again.events(duplicates="keep"))
    assert after.equals(expected)
    held(f"during the outage {during}; after the restart all {after.height:,} events, exact")


def test_redis_killed_for_longer_than_the_read_waits(scratch_redis, monkeypatch, held):
    url = f"redis://{scratch_redis.address}/3"
    with cl.open(url) as writer:
        writer.append(cl.sample.parcels(3_000, seed=24))
        expected = canonical_sort(writer.events(duplicates="keep"))
    read = Walk._read

    def read_then_kill(self, keys):
        read(self, keys)
        if len(self.done) <= len(keys):  # after the first round trip only
            scratch_redis.kill()

    monkeypatch.setattr(Walk, "_read", read_then_kill)
    try:
        with cl.open(url, timeout=2) as reader, pytest.raises(cl.IncompleteRead) as stop:
            reader.events(duplicates="keep")
    finally:
        monkeypatch.undo()
        scratch_redis.start()
    partial = stop.value.partial
    assert 0 < partial.height < expected.height
    assert partial.join(expected, on=list(cl.IDENTITY), how="anti").height == 0
    assert "did not answer for 2 s" in str(stop.value)
    with cl.open(url) as again:
        assert canonical_sort(again.events(duplicates="keep")).equals(expected)
    held(f"IncompleteRead with {partial.height:,} of {expected.height:,}; all back after a start")
