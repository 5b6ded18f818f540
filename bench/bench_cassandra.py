"""Loading and appending Concursus events in a real Cassandra, against the raw driver.

Writes ``scale`` sample events (``cl.sample.parcels``) into a fresh keyspace, then, in the
same run and against the same table, times:

* ``cassandra load``: ``store.events()`` (token ranges in parallel, raw cells decoded
  column-wise into the canonical frame) against the raw driver's simple paged loop
  (``SimpleStatement("SELECT * ...", fetch_size=5000)``, every row appended to a list,
  nothing decoded further). After one untimed read (the server flushes and compacts what
  was just written), runs alternate, twice each, and the faster of each is kept, since the
  machine may be shared. For transparency the raw loop is also timed with the garbage
  collector paused (``baseline_gc_paused_events_per_s``), to show what that alone gives.
* ``cassandra partition reads``: ``store.events("parcel", ids)`` for 10,000 aggregates
  (one prepared query per aggregate, run concurrently) against a driver loop running the
  same prepared SELECT once per aggregate.
* ``cassandra append``: ``store.append(frame)`` (cells serialised column-wise, unlogged
  batches of whole aggregates' rows, concurrent, plus the Catalogue) against the driver's
  ``execute_concurrent_with_args`` with one INSERT per event (no Catalogue) on the first
  ``min(scale, 100_000)`` events, and against the append as it was before issue 34 (one
  unlogged batch per aggregate, each row bound by the driver from Python values; no
  Catalogue) on all ``scale`` events, the issue's ">= 4x" goal.
* ``cassandra load, a table of your own shape``: the same events in a table of a team's own
  layout (a partition per parcel, parameters as columns), read through a ``cl.Mapping`` with
  the write time as processing time, against ``store.events()`` of the ``Event`` table, in
  turns.

Every measurement runs in a fresh process; ``peak_rss_mb`` is that process's peak resident
memory while it works, sampled every 20 ms (the interpreter, the driver, the frame and,
for appends, the generated sample). The keyspaces are dropped afterwards.

Run ``python bench/bench_cassandra.py [--scale N] [--quick]``; the server is
``127.0.0.1:$CONCURSUS_LAB_CASSANDRA_PORT`` (9042), started through
``concursus_lab.services`` when nothing answers there.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import gc
import json
import multiprocessing
import os
import time
import uuid
from collections.abc import Callable
from typing import Any

import concursus_lab as cl

_EVENTS_PER_PARCEL = 3.15  # cl.sample.parcels makes about this many events per parcel
PARTITIONS = 10_000  # aggregates read one by one by id


def _address() -> tuple[str, int]:
    """The local Cassandra: started through ``concursus_lab.services`` unless it answers."""
    import socket

    host, port = "127.0.0.1", int(os.environ.get("CONCURSUS_LAB_CASSANDRA_PORT", "9042"))
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError:
        from concursus_lab import services

        services.ensure("cassandra")
    return host, port


def _measure(fn: Callable[..., int], *args: Any) -> dict:
    """Run ``fn(*args)`` in a fresh process: its seconds, events and the process's peak RSS.

    A fresh process per measurement keeps one's memory and garbage out of the next.
    """
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        return pool.submit(_child, fn, *args).result()


def _child(fn: Callable[..., Any], *args: Any) -> dict:
    import threading

    import psutil

    process, peak, done = psutil.Process(), [0], threading.Event()

    def sample() -> None:  # resident memory every 20 ms while fn runs
        while True:
            peak[0] = max(peak[0], process.memory_info().rss)
            if done.wait(0.02):
                return

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    events = fn(*args)
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    return {"seconds": seconds, "events": events, "peak_rss_mb": round(peak[0] / 2**20, 1)}


def _session(host: str, port: int) -> tuple[Any, Any]:
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
    from cassandra.policies import RoundRobinPolicy

    # a long timeout: on a busy machine the baselines' requests queue behind each other
    profile = ExecutionProfile(load_balancing_policy=RoundRobinPolicy(), request_timeout=120)
    cluster = Cluster(
        [host], port=port, protocol_version=5, execution_profiles={EXEC_PROFILE_DEFAULT: profile}
    )
    return cluster, cluster.connect()


#: Cassandra runs up to a million events here (issue 3); larger would take hours to write.
MAX_SCALE = 1_000_000


def _sample(scale: int) -> Any:
    return cl.sample.parcels(max(1, round(scale / _EVENTS_PER_PARCEL)), seed=11)


def _ours_load(url: str) -> int:
    with cl.open(url) as store:
        return store.events(progress=False).height


def _ours_append(url: str, scale: int) -> int:
    frame = _sample(scale)
    with cl.open(url) as store:
        start = time.perf_counter()
        store.append(frame, progress=False)
        return frame.height, time.perf_counter() - start


def _ours_partitions(url: str, ids: list[str]) -> int:
    with cl.open(url) as store:
        return store.events("parcel", ids, progress=False).height


def _raw_partitions(host: str, port: int, keyspace: str, ids: list[str]) -> int:
    cluster, session = _session(host, port)
    select = session.prepare(
        f"SELECT * FROM {keyspace}.Event WHERE aggregateType = ? AND aggregateId = ?"
    )
    rows = []
    for aggregate_id in ids:
        for row in session.execute(select, ("parcel", aggregate_id)):
            rows.append(row)
    cluster.shutdown()
    return len(rows)


def _raw_load(host: str, port: int, keyspace: str, pause_gc: bool = False, table="Event") -> int:
    """The baseline of every Cassandra load here (this module's and ``bench_pekko``'s): the
    loop a user writes with the driver alone, ``SELECT *`` of the whole table with the
    driver's defaults (its named-tuple rows) and its paging, every row kept in a list."""
    from cassandra.query import SimpleStatement

    cluster, session = _session(host, port)
    if pause_gc:
        gc.disable()
    statement = SimpleStatement(f"SELECT * FROM {keyspace}.{table}", fetch_size=5000)
    rows = []
    for row in session.execute(statement):
        rows.append(row)
    cluster.shutdown()
    return len(rows)


def _raw_append(host: str, port: int, keyspace: str, scale: int) -> int:
    import orjson
    from cassandra.concurrent import execute_concurrent_with_args

    frame = _sample(scale)
    cluster, session = _session(host, port)
    insert = session.prepare(
        f"INSERT INTO {keyspace}.Event (aggregateType, aggregateId, eventTimestamp, streamId, "
        "processingId, name, version, parameters, characteristics) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
    start = time.perf_counter()
    args = [
        (
            r["aggregate_type"],
            r["aggregate_id"],
            r["event_timestamp"],
            r["stream_id"],
            uuid.UUID(r["processing_id"]),
            r["name"],
            r["version"],
            {k: orjson.dumps(v).decode() for k, v in orjson.loads(r["parameters"]).items()},
            r["characteristics"],
        )
        for r in frame.iter_rows(named=True)
    ]
    execute_concurrent_with_args(session, insert, args, concurrency=64, raise_on_first_error=True)
    seconds = time.perf_counter() - start
    cluster.shutdown()
    return len(args), seconds


#: A team's own table of the same parcel events, and how it maps onto events.
OWN_TABLE = """CREATE TABLE {keyspace}.parcels (
  parcel text, at timestamp, stream text, type text, "depotId" text, "truckId" text,
  "destinationId" text, PRIMARY KEY ((parcel), at, stream))"""
OWN_MAPPING = cl.Mapping(
    aggregate_type="parcel",
    aggregate_id="parcel",
    name="type",
    event_time="at",
    stream_id="stream",
    parameters=["depotId", "truckId", "destinationId"],
    identity="concursus",
)


def _own_write(host: str, port: int, keyspace: str, scale: int) -> int:
    """The sample as the team's application writes its table: a batch per parcel."""
    import polars as pl
    from cassandra.concurrent import execute_concurrent
    from cassandra.query import BatchStatement, BatchType

    frame = cl.frame.identity.resolve(_sample(scale), "last")
    frame = frame.with_columns(
        pl.col("parameters").str.json_decode(
            pl.Struct({"depotId": pl.String, "truckId": pl.String, "destinationId": pl.String})
        )
    ).unnest("parameters")
    cluster, session = _session(host, port)
    session.execute(OWN_TABLE.format(keyspace=keyspace))
    insert = session.prepare(
        f'INSERT INTO {keyspace}.parcels (parcel, at, stream, type, "depotId", "truckId", '
        '"destinationId") VALUES (?, ?, ?, ?, ?, ?, ?)'
    )
    batches = []
    for part in frame.partition_by("aggregate_id"):
        batch = BatchStatement(batch_type=BatchType.UNLOGGED)
        for r in part.iter_rows(named=True):
            batch.add(
                insert,
                (
                    r["aggregate_id"],
                    r["event_timestamp"],
                    r["stream_id"],
                    r["name"],
                    r["depotId"],
                    r["truckId"],
                    r["destinationId"],
                ),
            )
        batches.append((batch, ()))
    execute_concurrent(session, batches, concurrency=64, raise_on_first_error=True)
    cluster.shutdown()
    return frame.height


def _ours_table_load(url: str) -> int:
    with cl.open(f"{url}?table=parcels", mapping=OWN_MAPPING) as table:
        return table.events(progress=False).height


def _previous_append(host: str, port: int, keyspace: str, scale: int) -> tuple[int, float]:
    """The append before issue 34: a batch per aggregate, rows bound one by one (no Catalogue)."""
    import orjson
    from cassandra.concurrent import execute_concurrent
    from cassandra.query import BatchStatement, BatchType

    frame = _sample(scale).sort("aggregate_type", "aggregate_id", maintain_order=True)
    cluster, session = _session(host, port)
    insert = session.prepare(
        f"INSERT INTO {keyspace}.Event (aggregateType, aggregateId, eventTimestamp, streamId, "
        "processingId, name, version, parameters, characteristics) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?"
    )
    start = time.perf_counter()

    def batches():
        for _, group in frame.group_by("aggregate_type", "aggregate_id", maintain_order=True):
            batch = BatchStatement(batch_type=BatchType.UNLOGGED)
            for r in group.iter_rows(named=True):
                params = orjson.loads(r["parameters"]).items()
                batch.add(
                    insert,
                    (
                        r["aggregate_type"],
                        r["aggregate_id"],
                        r["event_timestamp"],
                        r["stream_id"],
                        uuid.UUID(r["processing_id"]),
                        r["name"],
                        r["version"],
                        {k: orjson.dumps(v).decode() for k, v in params},
                        r["characteristics"],
                        int(r["processing_timestamp"].timestamp() * 1_000_000),
                    ),
                )
            yield (batch, None)

    execute_concurrent(session, batches(), concurrency=32, raise_on_first_error=True)
    seconds = time.perf_counter() - start
    cluster.shutdown()
    return frame.height, seconds


def _append(url: str, host: str, port: int, keyspaces: list[str], scale: int) -> dict:
    """Our append beside the two baselines, each in a fresh process, into its own keyspace."""
    ours = _measure(_ours_append, f"{url}/{keyspaces[0]}", scale)
    written, seconds = ours["events"]
    raw = _measure(_raw_append, host, port, keyspaces[1], min(scale, 100_000))
    raw_written, raw_seconds = raw["events"]
    before = _measure(_previous_append, host, port, keyspaces[2], scale)
    before_written, before_seconds = before["events"]
    rate = written / seconds
    return {
        "name": "cassandra append",
        "events": written,
        "seconds": round(seconds, 2),
        "events_per_s": round(rate),
        "baseline": "the append before issue 34 (a batch per aggregate, rows bound by the driver)",
        "baseline_events_per_s": round(before_written / before_seconds),
        "ratio": round(rate / (before_written / before_seconds), 2),
        "goal": ">= 4x",
        "peak_rss_mb": ours["peak_rss_mb"],
        "baseline_peak_rss_mb": before["peak_rss_mb"],
        "note": (
            f"driver execute_concurrent_with_args, one INSERT per event: "
            f"{raw_written / raw_seconds:,.0f} events/s on {raw_written:,} events "
            f"({rate / (raw_written / raw_seconds):.2f}x)"
        ),
    }


def run(scale: int = 1_000_000, quick: bool = False, append_only: bool = False) -> list[dict]:
    """Time loading and appending ``scale`` events; return one row per measurement."""
    if quick:
        scale = min(scale, 100_000)
    host, port = _address()
    url = f"cassandra://{host}:{port}"
    suffix = uuid.uuid4().hex[:8]
    keyspaces = [f"cl_bench_{suffix}", f"cl_bench_raw_{suffix}", f"cl_bench_before_{suffix}"]
    keyspace = keyspaces[0]
    cluster, session = _session(host, port)
    try:
        for name in keyspaces:
            cl.open(f"{url}/{name}", create=True).close()
        append = _append(url, host, port, keyspaces, scale)
        if append_only:
            return [append]
        _measure(_ours_load, f"{url}/{keyspace}")  # warm up: flushes, caches, compaction
        loads, raws, raws_no_gc = [], [], []
        for _ in range(1 if quick else 2):  # alternate: the machine may be shared
            raws.append(_measure(_raw_load, host, port, keyspace))
            loads.append(_measure(_ours_load, f"{url}/{keyspace}"))
            raws_no_gc.append(_measure(_raw_load, host, port, keyspace, True))
        best, raw_best, no_gc = (
            min(runs, key=lambda r: r["seconds"]) for runs in (loads, raws, raws_no_gc)
        )
        if not best["events"] == raw_best["events"] == no_gc["events"]:
            raise AssertionError(f"reads disagree: {best}, {raw_best}, {no_gc}")
        load = {
            "name": "cassandra load",
            "events": best["events"],
            "seconds": round(best["seconds"], 2),
            "events_per_s": round(best["events"] / best["seconds"]),
            "baseline": "raw driver paged loop",
            "baseline_events_per_s": round(raw_best["events"] / raw_best["seconds"]),
            "ratio": round(raw_best["seconds"] / best["seconds"], 2),
            "goal": ">= 2x",
            "peak_rss_mb": best["peak_rss_mb"],
            "baseline_peak_rss_mb": raw_best["peak_rss_mb"],
            "baseline_gc_paused_events_per_s": round(no_gc["events"] / no_gc["seconds"]),
        }
        ids = _sample(scale)["aggregate_id"].unique().sort().to_list()[:PARTITIONS]
        ours_ids = _measure(_ours_partitions, f"{url}/{keyspace}", ids)
        raw_ids = _measure(_raw_partitions, host, port, keyspace, ids)
        if ours_ids["events"] != raw_ids["events"]:
            raise AssertionError(f"partition reads disagree: {ours_ids}, {raw_ids}")
        partitions = {
            "name": f"cassandra partition reads ({len(ids):,} aggregates)",
            "events": ours_ids["events"],
            "seconds": round(ours_ids["seconds"], 2),
            "events_per_s": round(ours_ids["events"] / ours_ids["seconds"]),
            "baseline": "driver loop, one prepared SELECT per aggregate",
            "baseline_events_per_s": round(raw_ids["events"] / raw_ids["seconds"]),
            "ratio": round(raw_ids["seconds"] / ours_ids["seconds"], 2),
            "peak_rss_mb": ours_ids["peak_rss_mb"],
        }
        _measure(_own_write, host, port, keyspace, scale)
        _measure(_ours_table_load, f"{url}/{keyspace}")  # warm up, as for the Event table
        tables, events = [], []
        for _ in range(1 if quick else 2):
            tables.append(_measure(_ours_table_load, f"{url}/{keyspace}"))
            events.append(_measure(_ours_load, f"{url}/{keyspace}"))
        table, event = (min(runs, key=lambda r: r["seconds"]) for runs in (tables, events))
        own = {
            "name": "cassandra load, a table of your own shape (cl.Mapping)",
            "events": table["events"],
            "seconds": round(table["seconds"], 2),
            "events_per_s": round(table["events"] / table["seconds"]),
            "baseline": "cassandra load of the Event table (same events)",
            "baseline_events_per_s": round(event["events"] / event["seconds"]),
            "ratio": round(
                (table["events"] / table["seconds"]) / (event["events"] / event["seconds"]), 2
            ),
            "peak_rss_mb": table["peak_rss_mb"],
            "note": "processing time from WRITETIME; parameters from 3 text columns",
        }
        return [load, append, partitions, own]
    finally:
        for name in keyspaces:
            session.execute(f"DROP KEYSPACE IF EXISTS {name}", timeout=300)
        cluster.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=1_000_000, help="events to write and load")
    parser.add_argument("--quick", action="store_true", help="at most 100,000 events, one run")
    parser.add_argument("--append-only", action="store_true", help="only the append")
    args = parser.parse_args()
    for row in run(args.scale, args.quick, args.append_only):
        print(json.dumps(row))


if __name__ == "__main__":
    main()
