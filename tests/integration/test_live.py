"""Live states over real servers: a fold kept while events are appended equals a full fold
of everything read so far after every batch, late events included; a Kafka follow that
stopped goes on from its offsets and loses and repeats nothing."""

from __future__ import annotations

import threading
import time

import polars as pl
import pytest

import concursus_lab as cl
from concursus_lab.exceptions import SourceError
from concursus_lab.sample import parcel_state, parcel_types
from tests.contract import canonical_sort


def _late(events: pl.DataFrame, first: int, n: int) -> pl.DataFrame:
    """``n`` deliveries of aggregates whose every event is among the ``first`` of
    ``events``, an hour before their first event, processed a day after the last of
    ``events``: appended after all of them, they land in the past."""
    later = events[first:]["aggregate_id"].unique().implode()
    early = events[:first].filter(~pl.col("aggregate_id").is_in(later))
    firsts = early.group_by("aggregate_id").agg(pl.all().sort_by("event_timestamp").first())
    late = firsts.sort("aggregate_id").head(n).select(events.columns)
    assert late.height == n
    return late.with_columns(
        pl.col("event_timestamp") - pl.duration(hours=1),
        pl.lit(events["processing_timestamp"].max()).alias("processing_timestamp")
        + pl.duration(days=1),
        pl.lit(None, dtype=pl.String).alias("processing_id"),  # made from the time
    )


def _writer(source, parts: list[pl.DataFrame], pause: float) -> threading.Thread:
    def write() -> None:
        for part in parts:
            source.append(part)
            time.sleep(pause)

    return threading.Thread(target=write, daemon=True)


def _chunks(frame: pl.DataFrame, size: int) -> list[pl.DataFrame]:
    return [frame[i : i + size] for i in range(0, frame.height, size)]


def _read_so_far(topic, offsets: dict[int, int]) -> pl.DataFrame:
    """The topic's records before ``offsets``, read again by a consumer of its own."""
    every = topic.events(duplicates="keep")
    before = pl.col("kafka_offset") < pl.col("kafka_partition").replace_strict(
        offsets, default=0, return_dtype=pl.Int64
    )
    return every.filter(before)


@pytest.mark.kafka
@pytest.mark.parametrize("read_ahead", [False, True])
def test_a_live_fold_follows_kafka_and_resumes_from_its_offsets(kafka_address, topic, read_ahead):
    store = cl.open(f"kafka://{kafka_address}/{topic}", create=True, partitions=3)
    sample = cl.sample.parcels(300, seed=41)
    history, rest = sample[:300], sample[300:]
    late = _late(sample, 300, 20)
    store.append(history)
    writer = _writer(store, [*_chunks(rest, 150), late], pause=0.3)
    total = sample.height + late.height
    live = cl.live.states(parcel_state, types=parcel_types, every=2)
    restated: list[str] = []
    checked = 0

    def check() -> None:
        nonlocal checked
        read = _read_so_far(store, live.offsets.kafka)
        assert read.height == live.read  # everything before the offsets, and only that
        want = cl.state_at(read, parcel_state, types=parcel_types)
        got = live.result()
        assert got.frame.equals(want.frame)
        assert got.counts == want.counts
        checked += 1

    follow = live.follow(store, batch=100, poll_timeout=0.2, idle_timeout=10, read_ahead=read_ahead)
    first = next(follow)  # the history, read whole
    assert first.read == history.height and first.frame["change"].unique().to_list() == ["new"]
    check()
    writer.start()
    for changes in follow:
        restated += changes.restated["aggregate_id"].to_list()
        check()
        if live.batches == 4:
            break
    follow.close()  # the follow stops (its consumer closed) while the writer goes on
    time.sleep(1.0)  # records arrive while nothing follows
    again = live.follow(store, batch=100, poll_timeout=0.2, idle_timeout=3, read_ahead=read_ahead)
    for changes in again:
        restated += changes.restated["aggregate_id"].to_list()
        check()
        if live.read == total:
            break
    writer.join()
    assert live.read == total  # nothing lost
    offsets = live.deliveries.select("kafka_partition", "kafka_offset")
    assert not offsets.is_duplicated().any()  # nothing read twice
    assert canonical_sort(live.deliveries).equals(canonical_sort(store.events(duplicates="keep")))
    assert set(late["aggregate_id"]) <= set(restated)  # the late ones restated the past
    assert checked >= 4
    with pytest.raises(SourceError, match="pass one of them"):
        store.follow(since="2026-03-02", offsets=live.offsets.kafka)


@pytest.mark.kafka
@pytest.mark.parametrize("read_ahead", [False, True])
def test_a_batch_whose_fold_raised_is_read_again_when_the_follow_resumes(
    kafka_address, topic, read_ahead
):
    store = cl.open(f"kafka://{kafka_address}/{topic}", create=True, partitions=2)
    sample = cl.sample.parcels(100, seed=43)
    store.append(sample[:150])
    broken = {"now": False}

    def flaky(state, event):
        if broken["now"]:
            raise RuntimeError("the reducer's host went away")
        return parcel_state(state, event)

    live = cl.live.states(flaky, types=parcel_types)
    follow = live.follow(store, batch=50, poll_timeout=0.2, idle_timeout=3, read_ahead=read_ahead)
    next(follow)  # the history
    before = (live.read, dict(live.offsets.kafka), live.result().frame)
    store.append(sample[150:])
    broken["now"] = True
    with pytest.raises(cl.ConcursusLabError, match="went away"):
        next(follow)
    assert (live.read, live.offsets.kafka) == before[:2]  # nothing of the batch kept
    assert live.result().frame.equals(before[2])
    broken["now"] = False
    again = live.follow(store, batch=50, poll_timeout=0.2, idle_timeout=3, read_ahead=read_ahead)
    for _ in again:
        if live.read == sample.height:
            break
    again.close()
    assert live.read == sample.height
    want = cl.state_at(store.events(duplicates="keep"), parcel_state, types=parcel_types)
    assert live.result().frame.equals(want.frame)


@pytest.mark.rabbitmq
def test_a_live_fold_follows_a_rabbitmq_exchange(rabbitmq_address):
    import uuid

    name = f"cl-test-live-{uuid.uuid4().hex[:10]}"
    exchange = cl.open(f"amqp://{rabbitmq_address}/{name}", create=True)
    try:
        sample = cl.sample.parcels(120, seed=42)
        late = _late(sample, 100, 10)
        published = pl.concat([sample, late])
        live = cl.live.states(parcel_state, types=parcel_types, every=2)
        follow = live.follow(exchange, batch=80, poll_timeout=0.2, idle_timeout=3)
        writer = _writer(exchange, [*_chunks(sample, 100), late], pause=0.2)
        writer.start()
        restated: list[str] = []
        for changes in follow:
            restated += changes.restated["aggregate_id"].to_list()
            want = cl.state_at(live.deliveries, parcel_state, types=parcel_types)
            assert live.result().frame.equals(want.frame)
            assert live.result().counts == want.counts
            if live.read == published.height:
                break
        follow.close()
        writer.join()
        assert live.batches >= 3
        made = pl.col("processing_id")  # RabbitMQ made the late ones' from their times
        assert (
            canonical_sort(live.deliveries).drop(made).equals(canonical_sort(published).drop(made))
        )
        assert set(late["aggregate_id"]) <= set(restated)
    finally:
        _delete_exchange(rabbitmq_address, name)


def _delete_exchange(address: str, name: str) -> None:
    import pika

    host, port = address.rsplit(":", 1)
    connection = pika.BlockingConnection(pika.ConnectionParameters(host, int(port)))
    try:
        connection.channel().exchange_delete(name)
    finally:
        connection.close()


@pytest.mark.kafka
def test_a_live_view_follows_kafka_and_equals_project_after_every_batch(kafka_address, topic):
    """A keyed fold (parcels' trips by truck) kept live while a writer appends, a late load
    included: after every batch the view is cl.project over everything read so far, and a
    stopped follow goes on from its offsets."""
    import dataclasses

    from concursus_lab.sample import LoadedOntoTruck

    @dataclasses.dataclass(frozen=True)
    class Loads:
        loads: int = 0

    def loads(state: Loads, event) -> Loads:
        return Loads(state.loads + 1) if isinstance(event, LoadedOntoTruck) else state

    fold = cl.fold(loads, types=parcel_types, key="truckId", initial=Loads())
    store = cl.open(f"kafka://{kafka_address}/{topic}", create=True, partitions=3)
    sample = cl.sample.parcels(200, seed=43)
    history, rest = sample[:200], sample[200:]
    late = _late(sample, 200, 10)
    store.append(history)
    writer = _writer(store, [*_chunks(rest, 150), late], pause=0.3)
    total = sample.height + late.height
    live = cl.live.view(fold)
    refolded: list[str] = []

    def check() -> None:
        read = _read_so_far(store, live.offsets.kafka)
        assert read.height == live.read
        assert live.frame.equals(cl.project(read, fold))

    follow = live.follow(store, batch=100, poll_timeout=0.2, idle_timeout=10)
    assert next(follow).read == history.height
    check()
    writer.start()
    for changes in follow:
        refolded += changes.keys
        check()
        if live.batches == 3:
            break
    follow.close()
    time.sleep(1.0)  # records arrive while nothing follows
    for changes in live.follow(store, batch=100, poll_timeout=0.2, idle_timeout=3):
        refolded += changes.keys
        check()
        if live.read == total:
            break
    writer.join()
    assert live.read == total
    assert not live.deliveries.select("kafka_partition", "kafka_offset").is_duplicated().any()
    assert live.frame.equals(cl.project(store.events(duplicates="keep"), fold))
    assert refolded  # batches re-folded some trucks' keys, not the whole view
