"""Helpers for your own CI: compare event frames, sanitise notebook outputs.

>>> import concursus_lab as cl
>>> from concursus_lab import testing
>>> a = cl.sample.fixture("messy")
>>> testing.assert_events_equal(a, a.reverse())
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from concursus_lab._schema import IDENTITY, SCHEMA, validate

#: The nbval sanitiser file that ``concursus-lab check`` applies; pass it to
#: ``pytest --nbval --nbval-sanitize-with`` yourself, or use ``--nbval-concursus-lab``.
SANITIZE_FILE: Path = Path(__file__).with_name("nbval.cfg")


def assert_events_equal(
    left: pl.DataFrame, right: pl.DataFrame, *, check_order: bool = False
) -> None:
    """Assert two event frames hold the same events (canonical columns only).

    Row order is ignored unless ``check_order``: sources return rows in different orders.
    On failure the message names how many rows differ and shows a few of them.
    """
    left = validate(left, check_parameters=False).select(SCHEMA.names())
    right = validate(right, check_parameters=False).select(SCHEMA.names())
    if not check_order:
        key = [*IDENTITY, "processing_timestamp", "processing_id"]
        left = left.sort(key, nulls_last=True)
        right = right.sort(key, nulls_last=True)
    if left.equals(right):
        return
    only_left = left.join(right, on=SCHEMA.names(), how="anti", nulls_equal=True)
    only_right = right.join(left, on=SCHEMA.names(), how="anti", nulls_equal=True)
    raise AssertionError(
        f"event frames differ: {left.height:,} vs {right.height:,} rows; "
        f"{only_left.height:,} only on the left, {only_right.height:,} only on the right.\n"
        f"left only (first 5):\n{only_left.head(5)}\nright only (first 5):\n{only_right.head(5)}"
    )


__all__ = ["SANITIZE_FILE", "assert_events_equal"]
