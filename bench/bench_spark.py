"""The same questions on Spark (local[2]) beside the local path, from a real Cassandra and Kafka.

Writes ``scale`` sample events into a fresh keyspace and a fresh topic, then times, in the
same run and on the same data, each question two ways:

* ours: ``concursus_lab.spark`` in a local[2] session (driver 2 GiB, 4 GiB at 10M):
  ``read(url)``, the question in hash buckets of whole aggregates, and the answer collected with
  ``.to_polars()``;
* baseline: the local path in this process: ``cl.open(url).events(duplicates="keep")``, then
  the local function (``cl.state_at``, ``cl.latest``, a keyed fold with ``cl.project``).

Both answers must be equal, or the run fails. Each is measured once (a million events take
minutes on Spark here). At 10M events only ``state_at`` (with both time bounds) is asked of
each source: writing 10M events into Cassandra alone takes 20 minutes here, and each Spark
question another ten. The session is started once, before the first measurement; its
start and the jars' resolution are in the notes. On this two-core machine Spark and the local
path share the same cores with the servers; what Spark buys is that its work spreads over
a cluster's cores (docs/scale.md works out what 10^9 events take).

Run it alone with ``python -m bench --only spark [--scales N]``; the keyspace and the topic
are dropped afterwards.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import concursus_lab as cl
from bench._harness import measure, row

MAX_SCALE = 10_000_000
#: From this scale on, one question per source (see the module docstring), and a bigger driver.
LARGE = 10_000_000
EVENTS_PER_PARCEL = 3.2
AT = "2026-03-09"
PEAK = "peak MB is this process only, not Spark's JVM and workers"
#: What ``--quick`` asks of each source (a smoke test: one question each); at 10M, state_at.
QUICK = {"cassandra": "state_at (simple reducer)", "kafka": "project: fold keyed by truck"}
LARGE_QUESTION = "state_at (simple reducer)"


def _questions() -> dict[str, Any]:
    from concursus_lab.sample import on_board, parcel_state, parcel_types

    load = cl.fold(on_board, types=parcel_types, key="truckId", initial=0)
    return {
        "state_at (simple reducer)": lambda e, m: m.state_at(
            e, parcel_state, types=parcel_types, at=AT, known_at=AT
        ),
        "latest (vectorised)": lambda e, m: m.latest(e, at=AT),
        "project: fold keyed by truck": lambda e, m: m.project(e, load, at=AT, known_at=AT),
    }


def _local(url: str, question: Any) -> Any:
    source = cl.open(url)
    try:
        events = source.events(duplicates="keep", progress=False)
    finally:
        getattr(source, "close", lambda: None)()
    answer = question(events, cl)
    return answer.frame.sort("aggregate_id") if hasattr(answer, "states") else answer


def _spark(url: str, question: Any, spark: Any) -> Any:
    import concursus_lab.spark as cls

    return question(cls.read(url, spark).frame, cls).to_polars()


def run(scale: int, quick: bool) -> list[dict]:
    from concursus_lab import services

    services.ensure("cassandra", "kafka", quiet=True)
    frame = cl.sample.parcels(max(1, round(scale / EVENTS_PER_PARCEL)), seed=5)
    n = frame.height
    name = f"spark_bench_{uuid.uuid4().hex[:8]}"
    urls = {
        "cassandra": f"cassandra://{services.address('cassandra')}/{name}",
        "kafka": f"kafka://{services.address('kafka')}/{name}",
    }
    rows: list[dict] = []
    try:
        with cl.open(urls["cassandra"], create=True) as store:
            store.append(frame, progress=False)
        cl.open(urls["kafka"], create=True, partitions=6).append(frame, progress=False)
        spark, note = _started("4g" if scale >= LARGE else "2g")
        for source, url in urls.items():
            for question_name, question in _questions().items():
                wanted = QUICK[source] if quick else LARGE_QUESTION if scale >= LARGE else None
                if wanted is not None and question_name != wanted:
                    continue
                local = measure(lambda u=url, q=question: _local(u, q), repeat=1)
                ours = measure(lambda u=url, q=question: _spark(u, q, spark), repeat=1)
                if not ours.result.equals(local.result):
                    raise AssertionError(f"Spark and local disagree on {question_name}")
                rows.append(
                    row(
                        f"spark local[2]: {source} read + {question_name}",
                        n,
                        ours,
                        f"local: {source} load + {question_name.split(' (')[0]}",
                        local,
                        note=f"{note}; answers equal; each measured once; {PEAK}",
                    )
                )
        spark.stop()
    finally:
        _drop(name, urls)
    return rows


def _started(memory: str) -> tuple[Any, str]:
    import concursus_lab.spark as cls

    t0 = time.perf_counter()
    jars = cls.jars()
    resolved = time.perf_counter() - t0
    spark = cls.session("local[2]", memory=memory)
    started = time.perf_counter() - t0 - resolved
    return spark, (
        f"{len(jars)} jars in {resolved:.1f} s, session start {started:.1f} s "
        f"(driver {memory})"
    )


def _drop(name: str, urls: dict[str, str]) -> None:
    from cassandra.cluster import Cluster
    from kafka import KafkaAdminClient

    from concursus_lab import services

    host, port = services.address("cassandra").rsplit(":", 1)
    cluster = Cluster([host], port=int(port))
    try:
        cluster.connect().execute(f"DROP KEYSPACE IF EXISTS {name}", timeout=120)
    finally:
        cluster.shutdown()
    admin = KafkaAdminClient(bootstrap_servers=services.address("kafka"))
    try:
        admin.delete_topics([name])
    finally:
        admin.close()
