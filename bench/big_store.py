"""The 100M-event local store of issue 34: written a chunk at a time, then folded in buckets.

``python -m bench.big_store write PATH [--chunks 16] [--parcels 2000000] [--buckets 128]``
appends ``chunks`` sample histories of ``parcels`` parcels each (about 3.25 events a parcel;
16 x 2M is about 104M events) to a new local store, never holding more than one chunk: chunk
``c`` is ``cl.sample.parcels(parcels, seed=c)`` with its ids renamed ``parcel-CC-NNNNNNN``,
so that the chunks' aggregates are all different.

``python -m bench.big_store fold PATH [--buckets 64] [--into FOLDER]`` folds the whole store
with ``cl.state_at`` (the sample reducer) a bucket at a time and prints the wall, the peak
resident memory (the whole process, sampled every 5 ms with the kernel's high-water mark), the
events/s and the load; with ``--into`` (a new or empty folder) the states are written there a
bucket at a time instead of kept (``state_at(..., into=)``).

``python -m bench.big_store check PATH [--chunks 3]`` folds the first ``chunks`` chunks' aggregates
both ways, from the store in buckets and read into memory at once, and says whether the answers
(frame, counts) are equal.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import polars as pl

from bench.bench_memory import sampler


def chunk(c: int, parcels: int) -> pl.DataFrame:
    """Chunk ``c``: a sample history whose aggregate ids no other chunk has."""
    import concursus_lab as cl

    frame = cl.sample.parcels(parcels, seed=c)
    return frame.with_columns(
        pl.col("aggregate_id").str.replace("parcel-", f"parcel-{c:02d}-", literal=True)
    )


def write(path: str, chunks: int, parcels: int, buckets: int) -> None:
    import concursus_lab as cl
    from concursus_lab.sources.local.store import LocalStore

    store = LocalStore(path, create=True, buckets=buckets)
    total, start = 0, time.perf_counter()
    for c in range(chunks):
        t = time.perf_counter()
        frame = chunk(c, parcels)
        made = time.perf_counter() - t
        total += store.append(frame, progress=False)
        del frame
        print(
            json.dumps(
                {
                    "chunk": c,
                    "events": total,
                    "generate_s": round(made, 1),
                    "append_s": round(time.perf_counter() - t - made, 1),
                    "wall_s": round(time.perf_counter() - start, 1),
                    "load": os.getloadavg(),
                }
            ),
            flush=True,
        )
    del cl


def fold(path: str, buckets: int, subset: int | None = None, into: str | None = None) -> dict:
    import concursus_lab as cl
    from concursus_lab.sample import parcel_state, parcel_types

    peak, done = sampler()
    events = cl.open(path)
    if subset is not None:
        events = events.scan(duplicates="keep").filter(_subset(subset))
    start = time.perf_counter()
    answer = cl.state_at(
        events, parcel_state, types=parcel_types, buckets=buckets, progress=True, into=into
    )
    seconds = time.perf_counter() - start
    done.set()
    return {
        "buckets": buckets,
        "into": into,
        "seconds": round(seconds, 1),
        "events_per_s": round(answer.counts["read"] / seconds),
        "peak_rss_mb": round(peak[0] / 2**20),
        "states": len(answer),
        "counts": answer.counts,
        "load": os.getloadavg(),
    }


def _subset(chunks: float) -> pl.Expr:
    """The aggregates of the first ``chunks`` chunks (1.55: chunk 0 and 55% of chunk 1)."""
    whole = int(chunks)
    below = f"parcel-{whole:02d}-{round((chunks - whole) * 2_000_000):07d}"
    return pl.col("aggregate_id") < below


def check(path: str, chunks: float, buckets: int) -> None:
    import concursus_lab as cl
    from concursus_lab.sample import parcel_state, parcel_types

    bucketed = cl.state_at(
        cl.open(path).scan(duplicates="keep").filter(_subset(chunks)),
        parcel_state,
        types=parcel_types,
        buckets=buckets,
        progress=False,
    )
    expected = (bucketed.frame, bucketed.counts)
    del bucketed  # its states (Python objects): not held beside the second answer
    frame = cl.open(path).scan(duplicates="keep").filter(_subset(chunks)).collect()
    whole = cl.state_at(frame, parcel_state, types=parcel_types)
    print(
        json.dumps(
            {
                "events": frame.height,
                "states": whole.frame.height,
                "equal_frame": expected[0].equals(whole.frame),
                "equal_counts": expected[1] == whole.counts,
                "load": os.getloadavg(),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("write", "fold", "check"))
    parser.add_argument("path")
    parser.add_argument("--chunks", type=float, default=16)
    parser.add_argument("--parcels", type=int, default=2_000_000)
    parser.add_argument("--buckets", type=int, default=None)
    parser.add_argument("--into", default=None, help="fold: write the states to this folder")
    args = parser.parse_args()
    if args.what == "write":
        write(args.path, int(args.chunks), args.parcels, args.buckets or 128)
    elif args.what == "fold":
        print(json.dumps(fold(args.path, args.buckets or 64, into=args.into), default=str))
    else:
        check(args.path, args.chunks, args.buckets or 16)


if __name__ == "__main__":
    main()
