"""Loading a Pekko journal from a real Cassandra, against the raw driver's paged loop.

Writes ``scale`` events into a fresh keyspace in the layout pekko-persistence-cassandra
writes (``concursus_lab.testing.journals.write_journal``: the driver's concurrent unlogged
batches, one partition each; the events are ``cl.sample.parcels``' as Jackson JSON objects,
with their time as ISO 8601 text in the field ``at``), then, in the same run and against the
same ``messages`` rows, times:

* ``pekko journal load``: ``cl.open("pekko+cassandra://...", event_time="at").events(
  duplicates="keep")`` (every row: the sample repeats some events)
  (token ranges in parallel, raw cells decoded column-wise, payloads parsed and written
  canonically, the built-in mapping) against the raw driver's simple paged loop
  (``SimpleStatement("SELECT * FROM <ks>.messages", fetch_size=5000)``, every row appended to
  a list, no payload even parsed). After one untimed read (the server flushes what was just
  written), runs alternate, three times each, and the fastest of each is kept.

Every measurement runs in a fresh process (``bench_cassandra``'s harness). The keyspace is
dropped afterwards. Run ``python bench/bench_pekko.py [--scale N] [--quick]``, or with
``--keyspace <name>`` to time a journal written before (by ``write_journal``; kept).
"""

from __future__ import annotations

import argparse
import json
import os
import time
import uuid

import concursus_lab as cl
from bench.bench_cassandra import _address, _measure, _sample, _session

#: Written through the driver at ~10-20k rows/s here: a million takes a minute or two.
MAX_SCALE = 1_000_000
#: Alternating runs of each read (the faster of each kept): the machine is shared.
RUNS = 3


def _ours_load(url: str) -> int:
    with cl.open(url, event_time="at") as journal:
        return journal.events(duplicates="keep", progress=False).height


def _raw_load(host: str, port: int, keyspace: str) -> int:
    from cassandra.query import SimpleStatement

    cluster, session = _session(host, port)
    statement = SimpleStatement(f"SELECT * FROM {keyspace}.messages", fetch_size=5000)
    rows = []
    for row in session.execute(statement):
        rows.append(row)
    cluster.shutdown()
    return len(rows)


def run(scale: int = 1_000_000, quick: bool = False, keyspace: str | None = None) -> list[dict]:
    """Write ``scale`` journal rows, then time loading them; one row per measurement.
    ``keyspace``: time a journal written before (kept afterwards) instead."""
    from concursus_lab.testing.journals import create_journal, write_journal

    if quick:
        scale = min(scale, 100_000)
    host, port = _address()
    given = keyspace is not None
    keyspace = keyspace or f"cl_bench_pekko_{uuid.uuid4().hex[:8]}"
    url = f"pekko+cassandra://{host}:{port}/{keyspace}"
    cluster, session = _session(host, port)
    try:
        started = time.perf_counter()
        written: int | None = None  # a journal written before: the two reads must agree
        if not given:
            create_journal(session, keyspace)
            written = write_journal(session, keyspace, _sample(scale))
        write_seconds = time.perf_counter() - started
        _measure(_ours_load, url)  # warm up: flushes, caches, compaction
        ours, raws = [], []
        for _ in range(1 if quick else RUNS):  # alternate: the machine may be shared
            raws.append(_measure(_raw_load, host, port, keyspace))
            ours.append(_measure(_ours_load, url))
        best = min(ours, key=lambda r: r["seconds"])
        raw = min(raws, key=lambda r: r["seconds"])
        if best["events"] != raw["events"] or written not in (None, raw["events"]):
            raise AssertionError(f"reads disagree: {best}, {raw}, {written} written")
        return [
            {
                "name": "pekko journal load",
                "events": best["events"],
                "seconds": round(best["seconds"], 2),
                "events_per_s": round(best["events"] / best["seconds"]),
                "baseline": "raw driver paged loop over messages",
                "baseline_events_per_s": round(raw["events"] / raw["seconds"]),
                "ratio": round(raw["seconds"] / best["seconds"], 2),
                "goal": ">= 2x",
                "peak_rss_mb": best["peak_rss_mb"],
                "baseline_peak_rss_mb": raw["peak_rss_mb"],
                "runs": [
                    {"ours_s": round(o["seconds"], 2), "raw_s": round(r["seconds"], 2)}
                    for o, r in zip(ours, raws, strict=True)
                ],
                "load_average": [round(x, 1) for x in os.getloadavg()],
                "note": (
                    f"a journal of {raw['events']:,} rows written before"
                    if given
                    else f"{written:,} rows written in {write_seconds:.0f} s"
                ),
            }
        ]
    finally:
        if not given:
            session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=300)
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
