"""RabbitMQ on a real broker: follow a topic exchange, capture it, read a stream's history.

Each test has its own exchange (and stream), deleted afterwards.
"""

from __future__ import annotations

import threading
import time
import uuid

import polars as pl
import pytest

import concursus_lab as cl
from concursus_lab.exceptions import SourceError, SourceUnavailable
from tests.contract import SourceContract, canonical_sort, event, frame
from tests.deliveries import after_deliveries, interrupt

pytestmark = pytest.mark.rabbitmq


@pytest.fixture
def names(rabbitmq_address):
    exchange = f"cl-test-{uuid.uuid4().hex[:10]}"
    yield exchange, f"{exchange}-history"
    import pika

    host, port = rabbitmq_address.rsplit(":", 1)
    connection = pika.BlockingConnection(pika.ConnectionParameters(host, int(port)))
    channel = connection.channel()
    channel.queue_delete(f"{exchange}-history")
    channel.exchange_delete(exchange)
    connection.close()


@pytest.fixture
def exchange(rabbitmq_address, names):
    return cl.open(f"amqp://{rabbitmq_address}/{names[0]}", create=True)


@pytest.fixture
def stream(rabbitmq_address, names):
    return cl.open(f"amqp://{rabbitmq_address}/{names[0]}?stream={names[1]}", create=True, idle=0.3)


class TestStreamContract(SourceContract):
    @pytest.fixture
    def source(self, stream):
        return stream


def _canonical(events: pl.DataFrame) -> pl.DataFrame:
    return canonical_sort(events.select(cl.SCHEMA.names()))


def test_follow_receives_every_published_event_once_in_publish_order(exchange):
    sample = cl.sample.parcels(60, seed=31)
    live = exchange.follow(poll_timeout=0.2, idle_timeout=2, batch=50)
    assert exchange.append(sample) == sample.height
    received = pl.concat(list(live))
    assert received.height == sample.height  # each once: no repeats, none missing
    assert _canonical(received).equals(_canonical(sample))
    published = sample.select("aggregate_id", "name", "event_timestamp")
    assert received.select(published.columns).equals(published)  # one publisher: its order
    assert received["stream_offset"].to_list() == list(range(sample.height))


def test_follow_one_aggregate_type_binds_only_its_routing_keys(exchange):
    live = exchange.follow("parcel", poll_timeout=0.2, idle_timeout=1.5)
    with pytest.warns(UserWarning, match="1 of 2 events reached no queue"):  # the truck's
        exchange.append(frame(event("p1", 1, 2), event("t1", 1, 2, aggregate_type="truck")))
    received = pl.concat(list(live))
    assert received["aggregate_id"].to_list() == ["p1"]


def test_capture_then_replay_gives_the_same_frame(exchange, tmp_path):
    sample = cl.sample.parcels(40, seed=32)
    store = cl.open(tmp_path / "captured", create=True)
    later = threading.Timer(0.5, exchange.append, args=(sample,))
    later.start()
    try:
        recorded = exchange.capture(into=store, duration=4)
    finally:
        later.join()
    assert recorded == sample.height
    assert _canonical(store.events(duplicates="keep")).equals(_canonical(sample))


def test_a_stream_keeps_the_whole_history_for_a_read(stream):
    first, second = cl.sample.parcels(30, seed=33), cl.sample.parcels(30, seed=34)
    stream.append(first)
    stream.append(second.with_columns(pl.col("aggregate_id") + "-b"))
    read = stream.events(duplicates="keep")
    assert read.height == first.height + second.height
    assert read["stream_offset"].is_sorted() and read["stream_offset"].n_unique() == read.height


def test_an_exchange_without_a_stream_has_no_history_and_says_where_it_went(exchange):
    with pytest.raises(SourceError, match=r"keeps no history.*\.follow\(\)"):
        exchange.events()
    with pytest.warns(UserWarning, match="2 of 2 events reached no queue"):
        assert exchange.append(frame(event("p1", 1, 2), event("p2", 1, 2))) == 0


def test_urls_are_checked_and_a_missing_exchange_says_how_to_make_it(rabbitmq_address):
    with pytest.raises(SourceError, match="credentials do not belong"):
        cl.open(f"amqp://guest:guest@{rabbitmq_address}/x")
    with pytest.raises(SourceError, match="unknown option 'queue'"):
        cl.open(f"amqp://{rabbitmq_address}/x?queue=y")
    with pytest.raises(SourceUnavailable, match="create=True"):
        cl.open(f"amqp://{rabbitmq_address}/cl-test-missing-{uuid.uuid4().hex[:6]}")
    with pytest.raises(SourceUnavailable, match="services start rabbitmq"):
        cl.open("amqp://127.0.0.1:1/x")


def test_an_unstarted_follow_lets_go_of_its_connection(exchange):
    import gc

    def connections() -> int:
        return sum(1 for t in threading.enumerate() if "pika" in t.name.lower())

    for _ in range(3):
        exchange.follow()  # never iterated, dropped
    gc.collect()
    time.sleep(0.2)
    assert connections() == 0


def _raised(call) -> BaseException | None:
    """What ``call`` raised, whatever it was (a KeyboardInterrupt must not end the run)."""
    try:
        call()
    except BaseException as exc:
        return exc
    return None


def test_an_interrupted_follow_hands_over_what_it_received(exchange, monkeypatch):
    sample = cl.sample.parcels(300, seed=35)
    live = exchange.follow(batch=100_000, poll_timeout=60)  # holds them all, yields none
    assert exchange.append(sample) == sample.height
    after_deliveries(monkeypatch, sample.height, interrupt)
    stop = _raised(lambda: next(live))
    assert isinstance(stop, cl.IncompleteRead), repr(stop)
    assert canonical_sort(stop.partial).equals(_canonical(sample))
    assert f"interrupted: {sample.height:,} received, 0 yielded" in str(stop), str(stop)


def test_an_interrupted_capture_keeps_what_it_received(exchange, tmp_path, monkeypatch):
    sample = cl.sample.parcels(300, seed=36)  # 998 events: fewer than a batch
    store = cl.open(tmp_path / "captured", create=True)
    later = threading.Timer(0.5, exchange.append, args=(sample,))
    after_deliveries(monkeypatch, sample.height, interrupt)
    later.start()
    try:
        stop = _raised(lambda: exchange.capture(into=store, duration=120))
    finally:
        later.join()
    assert isinstance(stop, cl.IncompleteRead), repr(stop)
    assert _canonical(store.events(duplicates="keep")).equals(_canonical(sample))
    assert _canonical(stop.partial).equals(_canonical(sample))
    assert f"{sample.height:,} events were recorded" in str(stop), str(stop)


def test_a_steady_trickle_is_handed_over_every_poll_not_held_for_a_full_batch(exchange):
    live = exchange.follow(batch=1_000, poll_timeout=0.3)

    def trickle() -> None:  # one event every 0.1 s: never a pause as long as the poll
        for i in range(12):
            exchange.append(frame(event(f"p{i}", i, i)))
            time.sleep(0.1)

    writer = threading.Thread(target=trickle)
    writer.start()
    try:
        first = next(live)
    finally:
        writer.join()
        live.close()
    assert 0 < first.height < 12  # handed over while the trickle went on


def test_an_interrupted_stream_read_says_what_it_read(stream, monkeypatch):
    stream.append(cl.sample.parcels(100, seed=37))
    seen = after_deliveries(monkeypatch, 100, interrupt)
    stop = _raised(lambda: stream.events(duplicates="keep"))
    assert isinstance(stop, cl.IncompleteRead), repr(stop)
    assert 100 <= stop.partial.height == seen["taken"]
    assert f"stopped, interrupted, after {seen['taken']:,} messages" in str(stop), str(stop)
