"""Peak memory on one machine (issue 34): the in-memory paths against the frame's size, and
``state_at`` of a history folded a hash bucket at a time.

``scale`` sample events are written once to a Parquet file; then each measurement runs in a
fresh process that reads what it needs and reports its peak resident memory (the whole
process: the interpreter, polars, the frame and the work), sampled every 5 ms:

* ``peak: <function>`` reads the frame, then calls ``state_at`` (the sample reducer),
  ``latest``, ``lateness`` (by name) or ``recommend_watermark``; ``peak / frame`` is that
  peak over the frame's ``estimated_size()`` (the issue's goal: at most 2.5x). The frame
  itself, read from Parquet, already holds about 1.8x in a fresh process (its string views
  take about 1.6x what ``estimated_size()`` counts). From 2M events on, ``state_at`` and
  ``latest`` answer such a frame in buckets of itself (``timetravel/buckets.AUTO_ROWS``).
* ``state_at, 16 buckets of a Parquet scan`` folds ``pl.scan_parquet(path)`` with
  ``buckets=16``, never holding the frame, against reading the frame and folding it at
  once (the baseline); the answers are compared (frame and counts equal). ``latest`` and
  ``lateness`` (by name) likewise, their answers compared by a hash of every row.
* ``state_at into= a folder`` folds the same buckets but writes each bucket's states to
  Parquet as it goes (``into=``), keeping none: its peak against the bucketed fold that
  keeps every state; the states read back from the files equal the in-memory answer.

``python -m bench --only memory`` runs it up to 1M events; the issue's goal is measured at
5M: ``python -m bench --only memory --scales 5000000`` (or ``python bench/bench_memory.py
[--scale N]``, which prints the rows).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import multiprocessing
import os
import shutil
import tempfile
import threading
import time
from typing import Any

#: ``python -m bench`` runs this up to 5M events when asked (``--scales 5000000``: the goal).
MAX_SCALE = 5_000_000
EVENTS_PER_PARCEL = 3.15
FUNCTIONS = ("state_at", "latest", "lateness", "recommend_watermark")
BUCKETS = 16


def _child(kind: str, path: str) -> dict:
    import polars as pl

    import concursus_lab as cl
    from concursus_lab.sample import parcel_state, parcel_types

    peak, done = sampler()
    start = time.perf_counter()
    answer: Any = None
    if kind == "buckets":
        answer = cl.state_at(
            pl.scan_parquet(path), parcel_state, types=parcel_types, buckets=BUCKETS, progress=False
        )
    elif kind == "into":
        folder = tempfile.mkdtemp(prefix="cl-bench-states-")
        written = cl.state_at(
            pl.scan_parquet(path),
            parcel_state,
            types=parcel_types,
            buckets=BUCKETS,
            into=folder,
            progress=False,
        )
        seconds = time.perf_counter() - start
        done.set()  # the peak of the fold; the states are read back after it, to compare
        got = written.frame
        shutil.rmtree(folder)
        out = {"seconds": seconds, "peak_mb": peak[0] / 2**20}
        return {**out, "answer": (got.hash_rows().sum(), got.height, written.counts)}
    elif kind in ("latest_buckets", "lateness_buckets"):
        scan, quiet = pl.scan_parquet(path), {"buckets": BUCKETS, "progress": False}
        got = cl.latest(scan, **quiet) if kind == "latest_buckets" else None
        got = cl.lateness(scan, by="name", **quiet) if got is None else got
        answer = (got.hash_rows().sum(), got.height, {})
    else:
        frame = pl.read_parquet(path)
        if kind == "state_at":
            answer = cl.state_at(frame, parcel_state, types=parcel_types)
        elif kind == "latest":
            got = cl.latest(frame)
            answer = (got.hash_rows().sum(), got.height, {})
        elif kind == "lateness":
            got = cl.lateness(frame, by="name")
            answer = (got.hash_rows().sum(), got.height, {})
        else:
            cl.recommend_watermark(frame)
    seconds = time.perf_counter() - start
    done.set()
    out = {"seconds": seconds, "peak_mb": peak[0] / 2**20}
    if isinstance(answer, tuple):
        out["answer"] = answer
    elif answer is not None:
        out["answer"] = (answer.frame.hash_rows().sum(), answer.frame.height, answer.counts)
    return out


def sampler() -> tuple[list[int], threading.Event]:
    """Start sampling this process's resident memory every 5 ms: ``peak[0]`` is the highest
    seen (with the high-water mark, which catches what sampling misses) until ``done`` is set."""
    import psutil

    process, peak, done = psutil.Process(), [0], threading.Event()

    def sample() -> None:
        while True:
            peak[0] = max(peak[0], process.memory_info().rss, _max_rss())
            if done.wait(0.005):
                return

    threading.Thread(target=sample, daemon=True).start()
    return peak, done


def _max_rss() -> int:
    """The process's high-water mark (catches what 5 ms sampling misses): the kernel's
    ``VmHWM``. Not ``getrusage``'s ``ru_maxrss``, which Linux carries across ``exec``: a
    spawned child would start from the RSS of the parent it was forked from."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:  # not Linux: the sampled figure alone
        pass
    return 0


def _how(name: str, events: int) -> str:
    """How ``name`` answers a frame of ``events`` rows: at once, or in buckets of itself."""
    from concursus_lab.timetravel.buckets import auto_buckets

    n = auto_buckets(events) if name in ("state_at", "latest") else None
    return "at once" if n is None else f"in {n} buckets of the frame"


def _load() -> str:
    """The load average over the last minute, 5 and 15 (the machine is shared)."""
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def _fresh(kind: str, path: str) -> dict:
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        return pool.submit(_child, kind, path).result()


def run(scale: int = 5_000_000, quick: bool = False) -> list[dict]:
    import concursus_lab as cl

    folder = tempfile.mkdtemp(prefix="cl-bench-memory-")
    path = os.path.join(folder, "events.parquet")
    try:
        frame = cl.sample.parcels(max(1, round(scale / EVENTS_PER_PARCEL)), seed=3)
        frame.write_parquet(path)
        n, size = frame.height, frame.estimated_size() / 2**20
        del frame
        rows, measured = [], {}
        for name in FUNCTIONS:
            m = measured[name] = _fresh(name, path)
            rows.append(
                {
                    "name": f"peak: {name} (fresh process, frame read from Parquet)",
                    "events": n,
                    "seconds": round(m["seconds"], 2),
                    "events_per_s": round(n / m["seconds"]),
                    "peak_rss_mb": round(m["peak_mb"], 1),
                    "peak_over_frame": round(m["peak_mb"] / size, 2),
                    "goal": "peak <= 2.5x frame",
                    "note": (
                        f"frame {size:,.0f} MB; peak / frame {m['peak_mb'] / size:.2f}x; "
                        f"{_how(name, n)}; "
                        f"load {_load()}"
                    ),
                }
            )
        # the answers at once are those of the peaks above (each run once: at 5M events a
        # run of state_at takes minutes)
        bucketed, whole = _fresh("buckets", path), measured["state_at"]
        if bucketed["answer"] != whole["answer"]:
            raise AssertionError("state_at in buckets differs from state_at at once")
        rows.append(
            {
                "name": f"state_at, {BUCKETS} buckets of a Parquet scan (sample reducer)",
                "events": n,
                "seconds": round(bucketed["seconds"], 2),
                "events_per_s": round(n / bucketed["seconds"]),
                "baseline": "read the frame, state_at of it",
                "baseline_events_per_s": round(n / whole["seconds"]),
                "ratio": round(whole["seconds"] / bucketed["seconds"], 2),
                "peak_rss_mb": round(bucketed["peak_mb"], 1),
                "baseline_peak_rss_mb": round(whole["peak_mb"], 1),
                "note": (
                    f"answers equal; peak {bucketed['peak_mb']:,.0f} MB against "
                    f"{whole['peak_mb']:,.0f} MB ({bucketed['peak_mb'] / size:.2f}x and "
                    f"{whole['peak_mb'] / size:.2f}x the frame)"
                ),
            }
        )
        into = _fresh("into", path)
        if into["answer"] != whole["answer"]:
            raise AssertionError("state_at into= differs from state_at at once")
        rows.append(
            {
                "name": f"state_at into= a folder, {BUCKETS} buckets of a Parquet scan",
                "events": n,
                "seconds": round(into["seconds"], 2),
                "events_per_s": round(n / into["seconds"]),
                "baseline": f"state_at, {BUCKETS} buckets, every state kept",
                "baseline_events_per_s": round(n / bucketed["seconds"]),
                "ratio": round(bucketed["seconds"] / into["seconds"], 2),
                "peak_rss_mb": round(into["peak_mb"], 1),
                "baseline_peak_rss_mb": round(bucketed["peak_mb"], 1),
                "note": (
                    f"states read back equal; peak {into['peak_mb']:,.0f} MB against "
                    f"{bucketed['peak_mb']:,.0f} MB ({into['peak_mb'] / size:.2f}x and "
                    f"{bucketed['peak_mb'] / size:.2f}x the frame); load {_load()}"
                ),
            }
        )
        for name in ("latest", "lateness"):
            bucketed = _fresh(f"{name}_buckets", path)
            whole = next(r for r in rows if r["name"].startswith(f"peak: {name} "))
            if bucketed["answer"] != measured[name]["answer"]:
                raise AssertionError(f"{name} in buckets differs from {name} at once")
            rows.append(
                {
                    "name": f"{name}, {BUCKETS} buckets of a Parquet scan",
                    "events": n,
                    "seconds": round(bucketed["seconds"], 2),
                    "events_per_s": round(n / bucketed["seconds"]),
                    "baseline": f"read the frame, {name} of it",
                    "baseline_events_per_s": whole["events_per_s"],
                    "ratio": round(whole["seconds"] / bucketed["seconds"], 2),
                    "peak_rss_mb": round(bucketed["peak_mb"], 1),
                    "baseline_peak_rss_mb": whole["peak_rss_mb"],
                    "note": (
                        f"answers equal; peak {bucketed['peak_mb']:,.0f} MB against "
                        f"{whole['peak_rss_mb']:,.0f} MB ({bucketed['peak_mb'] / size:.2f}x "
                        f"and {whole['peak_rss_mb'] / size:.2f}x the frame)"
                    ),
                }
            )
        return rows
    finally:
        for name in os.listdir(folder):
            os.remove(os.path.join(folder, name))
        os.rmdir(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=5_000_000, help="events")
    args = parser.parse_args()
    for row in run(args.scale):
        print(json.dumps(row))


if __name__ == "__main__":
    main()
