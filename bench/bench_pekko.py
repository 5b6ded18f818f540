"""Loading a Pekko journal from a real Cassandra, against the raw driver's paged loop.

A journal of ``scale`` events in the layout pekko-persistence-cassandra writes
(``concursus_lab.testing.journals.write_journal``: the events are ``cl.sample.parcels``' as
Jackson JSON objects, with their time as ISO 8601 text in the field ``at``) is kept between
runs in the keyspace ``cl_bench_pekko_<scale>``: written once (20 minutes for a million rows
on a busy machine), with a mark written last (the rows written and :data:`LAYOUT`), so a
write cut short, or of another layout, is written again; the two reads must each return
the rows the mark says. Then, in the same run and against the same ``messages`` rows, times:

* ``pekko journal load``: ``cl.open("pekko+cassandra://...", event_time="at").events(
  duplicates="keep")`` (every row: the sample repeats some events)
  (token ranges in parallel, raw cells decoded column-wise, payloads parsed and written
  canonically, the built-in mapping) against the raw driver's simple paged loop
  (``bench_cassandra._raw_load``: ``SELECT * FROM <ks>.messages``, fetch size 5000, the
  driver's default named-tuple rows, every row appended to a list, no payload even
  parsed). After one untimed read (caches), runs alternate, three times each, and the
  fastest of each is kept.

Every measurement runs in a fresh process (``bench_cassandra``'s harness) and reports its
wall time, the CPU time of the reading process and of the Cassandra server (the process
listening on the port) per row, and the load average as it started: each pair is in the
row's note. The server serves everyone on a shared machine: the CPU it used in the
:data:`IDLE` seconds before each read is taken as its use by others, and the server's figure
is given also net of that rate.
Run ``python bench/bench_pekko.py [--scale N] [--quick]``, or with ``--keyspace <name>`` to
time a journal written before (by ``write_journal``).
"""

from __future__ import annotations

import argparse
import json
import os
import time

import concursus_lab as cl
from bench.bench_cassandra import _address, _measure, _raw_load, _sample, _session

#: Written through the driver at ~1-20k rows/s here (the load): once, then kept.
MAX_SCALE = 1_000_000
#: Alternating runs of each read (the faster of each kept): the machine is shared.
RUNS = 3
#: Seconds the server's CPU is watched before each read: its use by others meanwhile.
IDLE = 3.0


def _ours_load(url: str) -> int:
    with cl.open(url, event_time="at") as journal:
        return journal.events(duplicates="keep", progress=False).height


def _costed(fn, *args) -> dict:
    """``fn(*args)`` (run in the measuring child): its events, the CPU seconds this process
    and the Cassandra server spent meanwhile, and the load average as it started."""
    server = _server(int(os.environ.get("CONCURSUS_LAB_CASSANDRA_PORT", "9042")))
    before = _cpu(server)
    time.sleep(IDLE)  # what the server spends serving others (and itself) meanwhile
    load, client, served = os.getloadavg()[0], time.process_time(), _cpu(server)
    started = time.perf_counter()
    events = fn(*args)
    wall, client = time.perf_counter() - started, time.process_time() - client
    if served is None or before is None:
        return {"events": events, "client_cpu": client, "server_cpu": None, "load": load}
    idle = (served - before) / IDLE  # cores
    served = _cpu(server) - served
    return {
        "events": events,
        "client_cpu": client,
        "server_cpu": served,
        "server_idle_cores": idle,
        "server_net_cpu": max(0.0, served - idle * wall),
        "load": load,
    }


def _server(port: int):
    """The process listening on ``port`` (the local Cassandra), or None when not visible."""
    import psutil

    try:
        for conn in psutil.net_connections("tcp"):
            if conn.laddr and conn.laddr.port == port and conn.status == "LISTEN" and conn.pid:
                return psutil.Process(conn.pid)
    except (psutil.AccessDenied, psutil.NoSuchProcess):
        pass
    return None


#: The JVM option that stops at the C1 compiler (the services' choice: see docs/services.md).
C1_ONLY = "-XX:TieredStopAtLevel=1"


def server_kind(port: int) -> str:
    """Which Cassandra answers on ``port``, in words: its JIT and heap, from its command line
    (the figures depend on them: docs/pekko.md)."""
    import psutil

    process = _server(port)
    try:
        command = [] if process is None else process.cmdline()
    except (psutil.AccessDenied, psutil.NoSuchProcess):
        command = []
    if not command:
        return f"the Cassandra on port {port} (its JVM options not visible)"
    jit = (
        "C1 JIT only (-XX:TieredStopAtLevel=1, as `concursus-lab services start` runs it)"
        if C1_ONLY in command
        else "the full JIT (C1 then C2, as Cassandra runs by default)"
    )
    heap = next((a.removeprefix("-Xmx") for a in command if a.startswith("-Xmx")), "?")
    return f"the Cassandra on port {port}: {jit}, heap {heap}"


def _cpu(process) -> float | None:
    """User and system CPU seconds of ``process`` so far (None when unknown)."""
    if process is None:
        return None
    times = process.cpu_times()
    return times.user + times.system


def _costs(measured: dict) -> dict:
    """One measurement's wall and CPU, per row (microseconds) and in all."""
    costed = measured["events"]
    n = max(1, costed["events"])
    server = costed["server_cpu"]
    return {
        "events": costed["events"],
        "seconds": round(measured["seconds"], 2),
        "wall_us_per_row": round(measured["seconds"] / n * 1e6, 2),
        "client_cpu_us_per_row": round(costed["client_cpu"] / n * 1e6, 2),
        "server_cpu_us_per_row": None if server is None else round(server / n * 1e6, 2),
        "server_idle_cores": round(costed.get("server_idle_cores", 0.0), 2),
        "server_net_cpu_us_per_row": (
            None if server is None else round(costed["server_net_cpu"] / n * 1e6, 2)
        ),
        "load": round(costed["load"], 1),
        "peak_rss_mb": measured["peak_rss_mb"],
    }


def _pair_text(ours: dict, raw: dict) -> str:
    """One alternating pair in words: wall, client and server CPU per row, and the load."""

    def one(r: dict) -> str:
        server = r["server_cpu_us_per_row"]
        served = (
            "? server"
            if server is None
            else f"{server} server ({r['server_net_cpu_us_per_row']} net of the "
            f"{r['server_idle_cores']} cores it used before)"
        )
        return (
            f"{r['seconds']} s = {r['wall_us_per_row']} us/row wall, cpu "
            f"{r['client_cpu_us_per_row']} client + {served} us/row at load {r['load']}"
        )

    return f"loop {one(raw)} | ours {one(ours)} ({raw['seconds'] / ours['seconds']:.2f}x)"


#: What the kept journal of a scale was written from; another value writes it again.
LAYOUT = "parcels seed 11, write_journal (at), v1"


def kept_journal(session, scale: int) -> tuple[str, int, str]:
    """The journal of ``scale`` sample events kept between runs (keyspace
    ``cl_bench_pekko_<scale>``): written now unless a finished write of the same
    :data:`LAYOUT` is there. Its keyspace, its rows and what was done."""
    from concursus_lab.testing.journals import create_journal, write_journal

    keyspace = f"cl_bench_pekko_{scale}"
    kept = _written_rows(session, keyspace)
    if kept is not None:
        return keyspace, kept, f"a journal of {kept:,} rows kept from an earlier run"
    started = time.perf_counter()
    session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=300)
    create_journal(session, keyspace)
    session.execute(
        f"CREATE TABLE {keyspace}.bench_written (layout text PRIMARY KEY, rows bigint)", timeout=120
    )
    written = write_journal(session, keyspace, _sample(scale))
    # the mark goes in last: a write cut short leaves none, and the next run writes again
    session.execute(
        f"INSERT INTO {keyspace}.bench_written (layout, rows) VALUES (%s, %s)", (LAYOUT, written)
    )
    seconds = time.perf_counter() - started
    return keyspace, written, f"{written:,} rows written in {seconds:.0f} s (kept for the next run)"


def _written_rows(session, keyspace: str) -> int | None:
    """The rows a finished write of :data:`LAYOUT` left in ``keyspace``, else None."""
    tables = session.cluster.metadata.keyspaces.get(keyspace)
    if tables is None or "bench_written" not in tables.tables or "messages" not in tables.tables:
        return None
    found = session.execute(
        f"SELECT rows FROM {keyspace}.bench_written WHERE layout = %s", (LAYOUT,)
    ).one()
    return None if found is None else found.rows


def run(scale: int = 1_000_000, quick: bool = False, keyspace: str | None = None) -> list[dict]:
    """Time loading a journal of ``scale`` rows (written once, kept between runs: see
    :func:`kept_journal`); one row per measurement. ``keyspace``: time a journal written
    before by ``write_journal`` instead."""
    if quick:
        scale = min(scale, 100_000)
    host, port = _address()
    given = keyspace is not None
    cluster, session = _session(host, port)
    try:
        written: int | None = None  # a journal written before: the two reads must agree
        if given:
            note = "a journal written before (--keyspace)"
        else:
            keyspace, written, note = kept_journal(session, scale)
        url = f"pekko+cassandra://{host}:{port}/{keyspace}"
        note = f"{note}; server: {server_kind(port)}"
        _measure(_costed, _ours_load, url)  # warm up: flushes, caches, compaction
        pairs = []
        for _ in range(1 if quick else RUNS):  # alternate: the machine may be shared
            raw = _measure(_costed, _raw_load, host, port, keyspace, False, "messages")
            ours = _measure(_costed, _ours_load, url)
            pairs.append((_costs(ours), _costs(raw)))
        best = min((o for o, _ in pairs), key=lambda r: r["seconds"])
        raw = min((r for _, r in pairs), key=lambda r: r["seconds"])
        counts = {r["events"] for pair in pairs for r in pair}
        if len(counts) != 1 or written not in (None, *counts):
            raise AssertionError(
                f"reads disagree: {sorted(counts)} rows read, {written} written; if the kept "
                f"journal was changed, DROP KEYSPACE {keyspace} and run again (it is rewritten)"
            )
        return [
            {
                "name": "pekko journal load",
                "events": best["events"],
                "seconds": best["seconds"],
                "events_per_s": round(best["events"] / best["seconds"]),
                "baseline": "raw driver paged loop over messages (SELECT *)",
                "baseline_events_per_s": round(raw["events"] / raw["seconds"]),
                "ratio": round(raw["seconds"] / best["seconds"], 2),
                "goal": ">= 2x",
                "peak_rss_mb": best["peak_rss_mb"],
                "baseline_peak_rss_mb": raw["peak_rss_mb"],
                "runs": [{"baseline": r, "ours": o} for o, r in pairs],
                "note": f"{note}; " + "; ".join(_pair_text(o, r) for o, r in pairs),
            }
        ]
    finally:
        cluster.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=1_000_000, help="events to write and load")
    parser.add_argument("--quick", action="store_true", help="at most 100,000 events, one run")
    parser.add_argument("--keyspace", help="time this journal, written before (it is kept)")
    args = parser.parse_args()
    for row in run(args.scale, args.quick, args.keyspace):
        print(json.dumps(row))


if __name__ == "__main__":
    main()
