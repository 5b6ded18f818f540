"""Appending processes killed with SIGKILL, and two appenders at once, on real processes.

What must hold: a killed append to the local store leaves it exactly as it was before (the
manifest still names only complete files) and the next append sweeps the orphans away; two
processes appending at once lose nothing; a killed Kafka appender leaves some of its records,
and appending the same frame again gives exactly that frame back.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid

import polars as pl
import pytest

import concursus_lab as cl
from tests.contract import canonical_sort

pytestmark = pytest.mark.slow

APPEND = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import concursus_lab as cl
    target, parcels, seed, go = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    events = cl.sample.parcels(parcels, seed=seed)
    source = cl.open(target, **({"create": True} if target.startswith("kafka") else {}))
    while go != "-" and not Path(go).exists():
        time.sleep(0.001)
    print(source.append(events), flush=True)
    """
)


def _appender(target: str, parcels: int, seed: int, go: str = "-") -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", APPEND, target, str(parcels), str(seed), go],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(condition, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.002)


def test_a_local_appender_killed_mid_append_leaves_the_store_as_it_was(tmp_path, held):
    store = cl.open(tmp_path / "s", create=True)
    store.append(cl.sample.parcels(2_000, seed=31))
    before = canonical_sort(store.events(duplicates="keep"))
    manifest = (tmp_path / "s" / "store.json").read_bytes()
    child = _appender(str(tmp_path / "s"), 150_000, 32)
    new_files = lambda: list((tmp_path / "s").rglob("*-000002-*"))  # noqa: E731
    _wait_for(lambda: new_files() or child.poll() is not None, "the append to write files")
    assert child.poll() is None, child.communicate()  # it must still be writing
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    orphans = new_files()
    assert (tmp_path / "s" / "store.json").read_bytes() == manifest
    assert canonical_sort(store.events(duplicates="keep")).equals(before)
    assert store.append(cl.sample.parcels(10, seed=33)) > 0  # sweeps the orphans
    listed = {f["path"] for f in json.loads((tmp_path / "s" / "store.json").read_text())["files"]}
    on_disk = {str(p.relative_to(tmp_path / "s")) for p in (tmp_path / "s").rglob("*.parquet")}
    assert on_disk == listed and not any(p.exists() for p in orphans)
    held(
        f"killed with {len(orphans)} file(s) half-written; store unchanged ({before.height:,} "
        "deliveries), orphans swept by the next append"
    )


def test_two_appenders_at_once_lose_nothing(tmp_path, held):
    store = cl.open(tmp_path / "s", create=True)
    go = tmp_path / "go"
    children = [_appender(str(tmp_path / "s"), 20_000, seed, str(go)) for seed in (41, 42)]
    time.sleep(3.0)  # both have read their events and wait at the line
    go.touch()
    counts = []
    for child in children:
        out, err = child.communicate(timeout=300)
        assert child.returncode == 0, err
        counts.append(int(out.split()[-1]))
    expected = pl.concat([cl.sample.parcels(20_000, seed=s) for s in (41, 42)])
    got = store.events(duplicates="keep")
    assert got.height == sum(counts) == expected.height
    assert canonical_sort(got).equals(canonical_sort(expected.select(cl.SCHEMA.names())))
    held(f"{counts[0]:,} + {counts[1]:,} deliveries appended at once, all {got.height:,} kept")


def test_a_killed_kafka_appender_can_append_again(scratch_kafka, tmp_path, held):
    from kafka import KafkaConsumer, TopicPartition

    url = f"kafka://{scratch_kafka.address}/faults-{uuid.uuid4().hex[:8]}"
    events = cl.sample.parcels(60_000, seed=51)
    consumer = KafkaConsumer(bootstrap_servers=scratch_kafka.address)
    child = _appender(url, 60_000, 51)
    topic = url.rsplit("/", 1)[1]

    def on_topic() -> int:
        parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in parts]
        return sum(consumer.end_offsets(tps).values()) if tps else 0

    try:
        _wait_for(lambda: on_topic() > 0 or child.poll() is not None, "the first records")
        assert child.poll() is None, child.communicate()
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        landed = on_topic()
    finally:
        consumer.close()
    assert 0 < landed < events.height
    source = cl.open(url)
    source.append(events)
    got = source.events().select(cl.SCHEMA.names())
    once = cl.open(tmp_path / "once", create=True)  # the same frame, appended once, uncut
    once.append(events)
    assert canonical_sort(got).equals(canonical_sort(once.events()))
    held(
        f"killed after {landed:,} of {events.height:,} records; appended again, "
        f"exactly the {got.height:,} events read back"
    )
