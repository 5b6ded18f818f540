"""The local store and the canonical frame: generation, append, load, bytes per event."""

from __future__ import annotations

import glob
import shutil
import tempfile

import polars as pl

import concursus_lab as cl
from bench._harness import measure, row

MAX_SCALE = 10_000_000
EVENTS_PER_PARCEL = 3.25


def run(scale: int, quick: bool) -> list[dict]:
    parcels = max(1, int(scale / EVENTS_PER_PARCEL))
    repeat = 1 if quick or scale >= 10_000_000 else 3
    rows = []
    generated = measure(lambda: cl.sample.parcels(parcels, seed=1), repeat=1)
    frame = generated.result
    n = frame.height
    rows.append(row("sample.parcels (generate)", n, generated, note=f"{parcels:,} parcels"))
    folder = tempfile.mkdtemp(prefix="cl-bench-")
    try:
        store = cl.open(f"{folder}/store", create=True)
        appended = measure(lambda: store.append(frame), repeat=1)
        rows.append(row("local store append (validate + resolve + write)", n, appended))
        files = glob.glob(f"{folder}/store/events/*/*.parquet")
        read = store.events()
        loaded = measure(store.events, repeat=repeat)
        plain = measure(lambda: pl.read_parquet(files), repeat=repeat)
        rows.append(
            row(
                "local store load (.events())",
                read.height,
                loaded,
                "polars.read_parquet of the same files",
                plain,
                goal=">= 0.8x",
            )
        )
        keep = measure(lambda: store.events(duplicates="keep"), repeat=repeat)
        rows.append(row("local store load, every delivery", n, keep))
        known = measure(lambda: store.events(known_at="2026-03-09"), repeat=repeat)
        rows.append(row("local store load, known_at (two-axis)", read.height, known))
        bytes_per_event = read.estimated_size() / max(read.height, 1)
        rows.append(
            {
                "name": "canonical frame in memory",
                "events": read.height,
                "note": f"{bytes_per_event:.0f} bytes per event",
                "bytes_per_event": round(bytes_per_event),
            }
        )
        profile = measure(lambda: cl.lateness(frame), repeat=1)
        rows.append(row("lateness profile", n, profile))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return rows


if __name__ == "__main__":
    import sys

    for r in run(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000, quick=False):
        print(r)
