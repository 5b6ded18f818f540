"""The same questions on Spark (local[2]) beside the local path, from a real Cassandra and Kafka.

Writes ``scale`` sample events into a fresh keyspace and a fresh topic, then times, in the
same run and on the same data, each question two ways:

* ours: ``concursus_lab.spark`` in a local[2] session (driver 2 GiB, 4 GiB at 10M):
  ``read(url)``, the question in hash buckets of whole aggregates, and the answer collected with
  ``.to_polars()``;
* baseline: the local path in this process: ``cl.open(url).events(duplicates="keep")``, then
  the local function (``cl.state_at``, ``cl.latest``, a keyed fold with ``cl.project``).

Both answers must be equal, or the run fails. Besides wall time each row's note gives the CPU
seconds of Spark's JVM and of its Python workers (the processes under this one, from /proc),
the events per CPU second (the rate per core to plan with on a shared machine), the same for
the read and decode alone (a ``noop`` write of the decoded frame), the biggest Python worker's
resident memory, and the load average; the session's start is timed apart. Before the first
question of each source, one read of it runs untimed (its CPU seconds are in the note): the first
Spark job of a session pays the JVM's class loading and compilation (12-17 CPU s at 1M, measured
2026-12-08), which the first question measured would otherwise carry alone. Each is measured
once (a million events take minutes on Spark here). At 10M events only ``state_at`` (with both
time bounds) is asked of each source: writing 10M events into Cassandra alone takes 20 minutes
here (70 on a loaded machine), and each Spark question another ten. The session is started
once, before the first measurement; its start and the jars' resolution are in the notes. On
this two-core machine Spark and the local path share the same cores with the servers; what
Spark buys is that its work spreads over a cluster's cores (docs/scale.md works out what 10^9
events take).

Run it alone with ``python -m bench --only spark [--scales N]``; the keyspace and the topic
are dropped afterwards, unless ``BENCH_SPARK_KEEP=1``: then they are named by the scale, kept,
and a later run with the same setting reads them again instead of writing (a marker file under
``~/.cache/concursus-lab/bench`` says a load finished; the sample is seeded, so the events are
the same). ``python -m bench.bench_spark load N [kafka] [cassandra]`` only writes them (10M
events take long); ``BENCH_SPARK_SOURCES=kafka`` and ``BENCH_SPARK_QUESTIONS=state_at`` narrow
a run.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from pathlib import Path
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


KEEP = os.environ.get("BENCH_SPARK_KEEP") == "1"
#: The sources asked (``BENCH_SPARK_SOURCES=kafka``: only the topic, e.g. at 10M events).
SOURCES = tuple(os.environ.get("BENCH_SPARK_SOURCES", "cassandra,kafka").split(","))
#: The questions asked (``BENCH_SPARK_QUESTIONS=state_at``: names starting so), else all.
QUESTIONS = tuple(filter(None, os.environ.get("BENCH_SPARK_QUESTIONS", "").split(",")))
_MARKS = Path.home() / ".cache" / "concursus-lab" / "bench"


def _urls(name: str) -> dict[str, str]:
    from concursus_lab import services

    return {
        "cassandra": f"cassandra://{services.address('cassandra')}/{name}",
        "kafka": f"kafka://{services.address('kafka')}/{name}",
    }


def load(scale: int, keep: bool, sources: tuple[str, ...] = SOURCES) -> tuple[str, int]:
    """The events of ``scale`` in a keyspace and a topic: (their name, how many); a kept
    load that finished before is read again, not written."""
    name = f"spark_bench_keep_{scale}" if keep else f"spark_bench_{uuid.uuid4().hex[:8]}"
    marks = {source: _MARKS / f"{name}.{source}.json" for source in sources}
    todo = [source for source in sources if not (keep and marks[source].exists())]
    if not todo:
        return name, json.loads(marks[sources[0]].read_text())["events"]
    frame = cl.sample.parcels(max(1, round(scale / EVENTS_PER_PARCEL)), seed=5)
    urls = _urls(name)
    for source in todo:
        if keep:
            _drop(name, urls, (source,))  # a load cut short before
        started = time.perf_counter()
        options = {"partitions": 6} if source == "kafka" else {}
        store = cl.open(urls[source], create=True, **options)
        try:
            store.append(frame, progress=False)
        finally:
            getattr(store, "close", lambda: None)()
        if keep:
            seconds = round(time.perf_counter() - started, 1)
            _MARKS.mkdir(parents=True, exist_ok=True)
            marks[source].write_text(json.dumps({"events": frame.height, "seconds": seconds}))
    return name, frame.height


#: Per-core goals of issue 34 for ``state_at`` with the sample reducer.
GOALS = {"cassandra": 150_000, "kafka": 250_000}


def run(scale: int, quick: bool) -> list[dict]:
    from concursus_lab import services

    services.ensure("cassandra", "kafka", quiet=True)
    name, n = load(scale, KEEP)
    urls = {source: url for source, url in _urls(name).items() if source in SOURCES}
    rows: list[dict] = []
    try:
        spark, note = _started("4g" if scale >= LARGE else "2g")
        for source, url in urls.items():
            warm, _ = _timed(lambda u=url: _read_only(u, spark))
            note_warm = f"{note}; warm-up read first, CPU s {_split(warm)} (not counted)"
            for question_name, question in _questions().items():
                wanted = QUICK[source] if quick else LARGE_QUESTION if scale >= LARGE else None
                if wanted is not None and question_name != wanted:
                    continue
                if QUESTIONS and not question_name.startswith(QUESTIONS):
                    continue
                local, local_cpu = _timed(lambda u=url, q=question: _local(u, q), own=True)
                ours, cpu = _timed(lambda u=url, q=question: _spark(u, q, spark))
                if not ours.result.equals(local.result):
                    raise AssertionError(f"Spark and local disagree on {question_name}")
                read, _ = _timed(lambda u=url: _read_only(u, spark))
                goal = GOALS[source] if question_name == LARGE_QUESTION else None
                rows.append(
                    row(
                        f"spark local[2]: {source} read + {question_name}",
                        n,
                        ours,
                        f"local: {source} load + {question_name.split(' (')[0]}",
                        local,
                        goal="" if goal is None else f">= {goal // 1000}k/s per core",
                        note=(
                            f"per core {_per_core(n, ours.seconds, cpu)}; CPU s {_split(ours)}"
                            f"; biggest Python worker {ours.worker_mb:.0f} MB"
                            f"; read + decode alone {read.seconds:.1f} s, CPU s {_split(read)}"
                            f"; local {n / local_cpu / 1000:.0f}k events per CPU s; {note_warm}; "
                            f"answers equal; each measured once; load {_load()}; {PEAK}"
                        ),
                    )
                )
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)  # as it comes
        spark.stop()
    finally:
        if not KEEP:
            _drop(name, urls, SOURCES)
    return rows


def _read_only(url: str, spark: Any) -> None:
    """Spark reads and decodes every event, and writes them nowhere (the question's first
    stage alone)."""
    import concursus_lab.spark as cls

    cls.read(url, spark).frame.write.format("noop").mode("overwrite").save()


def _timed(fn: Any, own: bool = False) -> tuple[Any, float]:
    """``fn`` measured once, and the CPU seconds it took: this process's (``own``), else
    those of this process's children, Spark's JVM and its Python workers."""
    before = _cpu(own)
    with _WorkerPeak() as peak:
        measured = measure(fn, repeat=1)
    after = _cpu(own)
    measured.cpu = {k: after[k] - before[k] for k in after}  # type: ignore[attr-defined]
    measured.worker_mb = peak.mb  # type: ignore[attr-defined]
    return measured, sum(measured.cpu.values())  # type: ignore[attr-defined]


class _WorkerPeak:
    """The highest resident memory any one Python worker of Spark reached (sampled)."""

    def __init__(self) -> None:
        import threading

        self.mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        me = psutil.Process()
        while not self._stop.wait(0.2):
            for child in me.children(recursive=True):
                try:
                    if "java" not in child.name():
                        self.mb = max(self.mb, child.memory_info().rss / 2**20)
                except psutil.NoSuchProcess:
                    continue

    def __enter__(self) -> _WorkerPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _cpu(own: bool) -> dict[str, float]:
    """CPU seconds so far: this process's (``own``), else Spark's JVM's and its Python
    workers' (the children of this process), apart."""
    import psutil

    if own:
        return {"python": time.process_time()}
    total = {"jvm": 0.0, "python": 0.0}
    for child in psutil.Process().children(recursive=True):
        try:
            t = child.cpu_times()
            kind = "jvm" if "java" in child.name() else "python"
        except psutil.NoSuchProcess:
            continue
        total[kind] += t.user + t.system + t.children_user + t.children_system
    return total


def _per_core(n: int, seconds: float, cpu: float) -> str:
    """Events/s per core two ways: over the wall time of two task slots, and per CPU second
    Spark spent (its JVM and workers; the truer figure on a shared machine)."""
    return f"{n / seconds / 2 / 1000:.0f}k/s (wall / 2 slots), {n / cpu / 1000:.0f}k per CPU s"


def _split(measured: Any) -> str:
    return ", ".join(f"{k} {v:.1f}" for k, v in measured.cpu.items())


def _load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def _started(memory: str) -> tuple[Any, str]:
    import concursus_lab.spark as cls

    t0 = time.perf_counter()
    jars = cls.jars()
    resolved = time.perf_counter() - t0
    spark = cls.session("local[2]", memory=memory)
    started = time.perf_counter() - t0 - resolved
    return spark, (
        f"{len(jars)} jars in {resolved:.1f} s, session start {started:.1f} s (driver {memory})"
    )


def _drop(name: str, urls: dict[str, str], sources: tuple[str, ...]) -> None:
    from cassandra.cluster import Cluster
    from kafka import KafkaAdminClient

    from concursus_lab import services

    if "kafka" in sources:
        admin = KafkaAdminClient(bootstrap_servers=services.address("kafka"))
        try:
            if name in admin.list_topics():
                admin.delete_topics([name])
        finally:
            admin.close()
    if "cassandra" not in sources:
        return
    host, port = services.address("cassandra").rsplit(":", 1)
    cluster = Cluster([host], port=int(port))
    try:
        cluster.connect().execute(f"DROP KEYSPACE IF EXISTS {name}", timeout=120)
    finally:
        cluster.shutdown()


if __name__ == "__main__":  # python -m bench.bench_spark load N: write a kept load only
    if sys.argv[1:2] == ["load"]:
        print(load(int(sys.argv[2]), True, tuple(sys.argv[3:]) or SOURCES))
