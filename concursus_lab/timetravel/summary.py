"""The printed summary of a ``state_at`` answer, in memory or written to files: the question
and what became of every delivery, in a few deterministic lines (nbval compares them)."""

from __future__ import annotations

import datetime as dt

import polars as pl

from concursus_lab.common.time import when
from concursus_lab.events.decoded import reason_counts


def summary_lines(
    states: int,
    aggregate_type: str,
    at: dt.datetime | None,
    known_at: dt.datetime | None,
    counts: dict[str, int],
    undecodable: pl.DataFrame,
) -> list[str]:
    """The question (``states``: how many the answer holds), then the counts' lines."""
    c = counts
    asked = f"at {_when(at)}, as known at {_when(known_at)}"
    lines = [
        f"{states:,} {aggregate_type} states {asked}",
        f"{c['read']:,} deliveries: {c['applied']:,} applied, {c['skipped']:,} "
        f"skipped, {c['duplicate']:,} duplicate, "
        + (f"{c['conflicting']:,} conflicting, " if c.get("conflicting") else "")
        + f"{c['after_at']:,} after `at`, "
        f"{c['not_known_yet']:,} not known yet, {c['undecodable']:,} undecodable",
    ]
    if c.get("upcast"):
        split = f"; splits made {c['split']:,} more events" if c.get("split") else ""
        lines.append(f"({c['upcast']:,} deliveries upcast from older versions{split})")
    if c["other_aggregate_types"]:
        lines.append(f"({c['other_aggregate_types']:,} rows of other aggregate types ignored)")
    if c["undecodable"]:
        for reason, count in reason_counts(undecodable):
            lines.append(f"  undecodable: {count:,} x {reason}")
    return lines


def _when(value: dt.datetime | None) -> str:
    return "any time" if value is None else f"{when(value)} UTC"
