"""RabbitMQ brokers and Hazelcast members killed with SIGKILL while they are being read.

The servers are the suite's own (:mod:`tests.faults.conftest`). A RabbitMQ consumer is held
at a fixed delivery (:func:`tests.deliveries.after_deliveries`), and a Hazelcast read after
its first batch, until the server is dead, so the rest of the read meets the outage whatever
the speed of the machine. What must hold: every message the consumer took is handed over
(yielded, appended, or in the ``IncompleteRead``'s ``.partial``), never dropped with a raw
pika error; a stream still holds everything after the restart; a Hazelcast read says what it
read and what to do, without waiting out the client's timeouts, and the same window reads
again once the member is back.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid

import polars as pl
import pytest

import concursus_lab as cl
from concursus_lab.exceptions import IncompleteWrite, SourceUnavailable
from concursus_lab.sources.hazelcast import window as hazelcast_window
from tests.contract import canonical_sort
from tests.deliveries import after_deliveries

pytestmark = pytest.mark.slow


@pytest.fixture
def rabbitmq(scratch_rabbitmq):
    """The suite's own broker, running (a test before may have left it killed)."""
    if not scratch_rabbitmq.answering():
        scratch_rabbitmq.start()
    return scratch_rabbitmq


def _exchange(rabbitmq) -> str:
    return f"amqp://{rabbitmq.address}/faults-{uuid.uuid4().hex[:8]}"


def test_rabbitmq_killed_while_a_follow_holds_messages(rabbitmq, monkeypatch, held):
    exchange = cl.open(_exchange(rabbitmq), create=True)
    sample = cl.sample.parcels(300, seed=25)
    live = exchange.follow(batch=100_000, poll_timeout=60)  # holds them all, yields none
    assert exchange.append(sample) == sample.height
    after_deliveries(monkeypatch, sample.height, rabbitmq.kill)
    with pytest.raises(cl.IncompleteRead) as stop:
        next(live)
    partial = stop.value.partial
    assert canonical_sort(partial).equals(canonical_sort(sample))
    said = str(stop.value)
    assert f"{sample.height:,} received" in said and "0 yielded" in said, said
    assert "`.partial`" in said and "services start rabbitmq" in said, said
    with pytest.raises(StopIteration):  # the follow is over, its connection closed
        next(live)
    held(f"IncompleteRead with all {partial.height:,} messages taken, none lost")


def test_rabbitmq_killed_during_a_capture(rabbitmq, monkeypatch, tmp_path, held):
    exchange = cl.open(_exchange(rabbitmq), create=True)
    sample = cl.sample.parcels(300, seed=26)
    store = cl.open(tmp_path / "captured", create=True)

    def publish() -> None:
        with contextlib.suppress(cl.ConcursusLabError):  # its last confirms may meet the kill
            exchange.append(sample)

    publisher = threading.Timer(0.5, publish)
    after_deliveries(monkeypatch, sample.height, rabbitmq.kill)
    publisher.start()
    try:
        with pytest.raises(cl.IncompleteRead) as stop:
            exchange.capture(into=store, duration=120)
    finally:
        publisher.join()
    recorded = store.events(duplicates="keep")
    assert canonical_sort(recorded).equals(canonical_sort(sample))
    assert stop.value.partial.height == sample.height
    said = str(stop.value)
    assert f"{sample.height:,} events were recorded" in said, said
    held(f"IncompleteRead; all {recorded.height:,} messages taken are in the store")


def test_rabbitmq_killed_mid_stream_read(rabbitmq, monkeypatch, held):
    name = f"faults-{uuid.uuid4().hex[:8]}"
    url = f"amqp://{rabbitmq.address}/{name}?stream={name}-history"
    writer = cl.open(url, create=True, idle=1)
    writer.append(cl.sample.parcels(900, seed=27))
    expected = canonical_sort(writer.events(duplicates="keep"))
    seen = after_deliveries(monkeypatch, 1_000, rabbitmq.kill)
    with pytest.raises(cl.IncompleteRead) as stop:
        cl.open(url, idle=1).events(duplicates="keep")
    monkeypatch.undo()
    partial = stop.value.partial
    assert 1_000 <= partial.height == seen["taken"] < expected.height  # pika had some buffered
    assert partial.join(expected, on=list(cl.IDENTITY), how="anti").height == 0
    said = str(stop.value)
    assert "read again" in said and f"after {seen['taken']:,} messages" in said, said
    rabbitmq.start()
    after = canonical_sort(cl.open(url, idle=1).events(duplicates="keep"))
    assert after.equals(expected)
    held(
        f"IncompleteRead with {partial.height:,} of {expected.height:,}; "
        f"after the restart all {after.height:,}, exact"
    )


@pytest.fixture
def hazelcast(scratch_hazelcast):
    """The suite's own member, running (a test before may have left it killed)."""
    if not scratch_hazelcast.answering():
        scratch_hazelcast.start()
    return scratch_hazelcast


def _window(hazelcast, history: pl.DataFrame):
    """A window on a new map of the suite's member, filled by offering ``history``."""
    window = cl.open(f"hazelcast://{hazelcast.address}/faults-{uuid.uuid4().hex[:8]}")
    return window, int(window.offer(history)["passed"].sum())


def test_hazelcast_member_killed_mid_entries(hazelcast, monkeypatch, held):
    window, stored = _window(hazelcast, cl.sample.parcels(1_000, seed=28))
    batches = hazelcast_window._batches

    def kill_after_the_first(items, size):
        for i, batch in enumerate(batches(items, size)):
            if i == 1:
                hazelcast.kill()
            yield batch

    monkeypatch.setattr(hazelcast_window, "_batches", kill_after_the_first)
    started = time.monotonic()
    with pytest.raises(cl.IncompleteRead) as stop:
        window.entries()
    took = time.monotonic() - started
    monkeypatch.undo()
    partial = stop.value.partial
    assert partial.height == hazelcast_window.BATCH < stored
    assert partial.schema == hazelcast_window.ENTRY_SCHEMA
    said = str(stop.value)
    assert f"{partial.height:,} of {stored:,} entries" in said, said
    assert hazelcast.address in said and "services start hazelcast" in said, said
    hazelcast.start()
    assert window.entries().height == 0  # the same window connects again; the map was in memory
    held(
        f"IncompleteRead with {partial.height:,} of {stored:,} entries, {took:.1f} s after "
        "the kill; the window reads again once the member is back"
    )


def test_hazelcast_member_gone_before_entries(hazelcast, held):
    window, stored = _window(hazelcast, cl.sample.parcels(100, seed=29))
    assert len(window) == stored
    hazelcast.kill()
    started = time.monotonic()
    with pytest.raises(SourceUnavailable) as gone:
        window.entries()
    took = time.monotonic() - started
    said = str(gone.value)
    assert hazelcast.address in said and "services start hazelcast" in said, said
    with pytest.raises(SourceUnavailable):
        len(window)
    hazelcast.start()
    assert window.entries().height == 0 and len(window) == 0
    held(f"SourceUnavailable {took:.1f} s after the call; the window reads again once it is back")


def test_hazelcast_member_killed_mid_offer(hazelcast, monkeypatch, held):
    window = cl.open(f"hazelcast://{hazelcast.address}/faults-{uuid.uuid4().hex[:8]}")
    history = cl.sample.parcels(1_000, seed=30)
    batches = hazelcast_window._batches

    def kill_after_the_first(items, size):
        for i, batch in enumerate(batches(items, size)):
            if i == 1:
                hazelcast.kill()
            yield batch

    monkeypatch.setattr(hazelcast_window, "_batches", kill_after_the_first)
    with pytest.raises(IncompleteWrite) as stop:
        window.offer(history)
    monkeypatch.undo()
    offered, unwritten = stop.value.written, stop.value.unwritten
    assert offered == hazelcast_window.BATCH
    assert unwritten.schema == history.schema and unwritten.height == history.height - offered
    said = str(stop.value)
    assert f"{offered:,} of {history.height:,} deliveries" in said, said
    assert hazelcast.address in said and "services start hazelcast" in said, said
    hazelcast.start()
    assert window.offer(unwritten).height == unwritten.height  # ready to offer again
    held(f"IncompleteWrite after {offered:,} of {history.height:,}; the rest offered again")
