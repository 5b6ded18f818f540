"""Your own events in: a mapped CSV or Parquet file against polars' own read of that file plus
the same column expressions (the goal: >= 0.8x), and the cost of a content identity."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import polars as pl

import concursus_lab as cl
from bench._harness import measure, row
from concursus_lab.mapping import Plan

MAX_SCALE = 10_000_000
EVENTS_PER_ORDER = 4
TYPES = ("created", "paid", "packed", "shipped")


def orders(n: int) -> pl.DataFrame:
    """``n`` events of orders in a team's own export shape: ISO text times, a sequence."""
    rng = np.random.default_rng(7)
    order = np.arange(n) // EVENTS_PER_ORDER
    seq = np.arange(n) % EVENTS_PER_ORDER + 1
    start = 1_772_000_000_000 + order * 60_000
    occurred = start + seq * 600_000
    ingested = occurred + rng.integers(0, 120_000, n)

    def iso(ms: np.ndarray) -> pl.Series:
        return pl.from_epoch(pl.Series(ms), time_unit="ms").dt.to_string("%Y-%m-%dT%H:%M:%S%.3fZ")

    return pl.DataFrame(
        {
            "order_id": pl.Series(order).cast(pl.String).str.pad_start(8, "0"),
            "seq": seq,
            "event_type": pl.Series(np.array(TYPES)[seq - 1]),
            "occurred_at": iso(occurred),
            "ingested_at": iso(ingested),
            "amount": rng.integers(100, 100_000, n) / 100,
            "sku": pl.Series(rng.integers(0, 500, n)).cast(pl.String),
        }
    )


MAPPING = cl.Mapping(
    aggregate_type="order",
    aggregate_id="order_id",
    name="event_type",
    event_time="occurred_at",
    processing_time="ingested_at",
    sequence="seq",
    initial=["created"],
    terminal=["shipped"],
)


def run(scale: int, quick: bool) -> list[dict]:
    repeat = 1 if quick or scale >= 10_000_000 else 3
    data = orders(scale)
    folder = Path(tempfile.mkdtemp(prefix="cl-bench-mapping-"))
    rows = []
    try:
        data.write_csv(folder / "orders.csv")
        data.write_parquet(folder / "orders.parquet")
        plan = Plan(MAPPING, data.schema)
        for name, scan in (("csv", pl.scan_csv), ("parquet", pl.scan_parquet)):
            path = folder / f"orders.{name}"
            source = cl.open(path, mapping=MAPPING)
            ours = measure(lambda s=source: s.events(duplicates="keep"), repeat=repeat)
            plain = measure(
                lambda p=path, s=scan: plan.canonical(s(p)).collect(), repeat=repeat
            )
            rows.append(
                row(
                    f"mapped {name} file (.events(), every delivery)",
                    ours.result.height,
                    ours,
                    f"polars scan_{name} + the same column expressions",
                    plain,
                    goal=">= 0.8x",
                )
            )
        content = cl.Mapping(**{**_fields(MAPPING), "sequence": None})
        by_content = measure(lambda: cl.from_polars(data, content), repeat=repeat)
        by_sequence = measure(lambda: cl.from_polars(data, MAPPING), repeat=repeat)
        rows.append(
            row(
                "from_polars, content identity (no sequence named)",
                by_content.result.height,
                by_content,
                "from_polars with a sequence",
                by_sequence,
                note="the content digest: BLAKE2b per event",
            )
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return rows


def _fields(mapping: cl.Mapping) -> dict:
    names = ("aggregate_type", "aggregate_id", "name", "event_time", "processing_time")
    out = {n: getattr(mapping, n) for n in names}
    return {**out, "initial": mapping.initial, "terminal": mapping.terminal}
