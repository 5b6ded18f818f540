"""Helpers for your own CI: compare event frames and states, redeliver histories in
hypothesis tests, check upcasters against a stored history (:func:`check_upcasters`),
sanitise notebook outputs.

>>> import concursus_lab as cl
>>> from concursus_lab import testing
>>> a = cl.sample.fixture("messy")
>>> testing.assert_events_equal(a, a.reverse())
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import polars as pl

from concursus_lab.common.optional import require
from concursus_lab.frame.identity import IDENTITY
from concursus_lab.frame.schema import SCHEMA, columns_of, validate
from concursus_lab.testing.upcasters import UpcasterReport, check_upcasters

#: The nbval sanitiser file that ``concursus-lab check`` applies; pass it to
#: ``pytest --nbval --nbval-sanitize-with`` yourself, or use ``--nbval-concursus-lab``.
SANITIZE_FILE: Path = Path(__file__).with_name("nbval.cfg")


def assert_events_equal(
    left: pl.DataFrame, right: pl.DataFrame, *, check_order: bool = False
) -> None:
    """Assert two event frames hold the same events (canonical columns, and the optional
    identity columns ``sequence`` and ``event_id`` when either frame has them).

    Row order is ignored unless ``check_order``: sources return rows in different orders.
    On failure the message names how many rows differ and shows a few of them.
    """
    left = validate(left, check_parameters=False)
    right = validate(right, check_parameters=False)
    columns = list(dict.fromkeys([*columns_of(left), *columns_of(right)]))
    missing = [c for c in columns if c not in left.columns or c not in right.columns]
    if missing:
        raise AssertionError(
            f"event frames differ: only one has the identity column(s) {missing}."
        )
    left, right = left.select(columns), right.select(columns)
    if not check_order:
        optional = columns[len(SCHEMA) :]
        key = [*IDENTITY, *optional, "processing_timestamp", "processing_id"]
        left = left.sort(key, nulls_last=True)
        right = right.sort(key, nulls_last=True)
    if left.equals(right):
        return
    only_left = left.join(right, on=columns, how="anti", nulls_equal=True)
    only_right = right.join(left, on=columns, how="anti", nulls_equal=True)
    raise AssertionError(
        f"event frames differ: {left.height:,} vs {right.height:,} rows; "
        f"{only_left.height:,} only on the left, {only_right.height:,} only on the right.\n"
        f"left only (first 5):\n{only_left.head(5)}\nright only (first 5):\n{only_right.head(5)}"
    )


def assert_states_equal(left: Any, right: Any) -> None:
    """Assert two ``cl.state_at`` results hold the same states (and the same counts).

    Accepts the results themselves or their ``.frame``; rows are compared by
    ``aggregate_id`` whatever their order.
    """
    frames = [getattr(x, "frame", x) for x in (left, right)]
    for frame in frames:
        if not isinstance(frame, pl.DataFrame) or "aggregate_id" not in frame.columns:
            raise TypeError(
                f"expected a state_at result or its .frame, got {type(frame).__name__}."
            )
    a, b = (f.sort("aggregate_id") for f in frames)
    if not a.equals(b):
        only_a = a.join(b, on=a.columns, how="anti", nulls_equal=True)
        only_b = b.join(a, on=b.columns, how="anti", nulls_equal=True)
        raise AssertionError(
            f"states differ: {a.height:,} vs {b.height:,} aggregates; "
            f"{only_a.height:,} rows only on the left, {only_b.height:,} only on the right.\n"
            f"left only (first 5):\n{only_a.head(5)}\nright only (first 5):\n{only_b.head(5)}"
        )
    counts = [getattr(x, "counts", None) for x in (left, right)]
    if None not in counts and counts[0] != counts[1]:
        raise AssertionError(f"states agree but counts differ: {counts[0]} vs {counts[1]}")


def redeliveries(
    events: pl.DataFrame,
    *,
    max_repeats: int = 5,
    max_delay: dt.timedelta = dt.timedelta(hours=1),
) -> Any:
    """A hypothesis strategy: ``events`` delivered again, as real systems deliver them.

    Each example holds every row of ``events`` in a random order, plus up to
    ``max_repeats`` rows delivered a second time, processed up to ``max_delay`` after the
    original (same identity, same payload, a fresh processing id). A reducer, projection
    or view that is right should give the same answer for every example:

    >>> import concursus_lab as cl
    >>> from hypothesis import given, settings
    >>> from concursus_lab.sample import parcel_state, parcel_types
    >>> from concursus_lab.testing import assert_states_equal, redeliveries
    >>> history = cl.sample.fixture("messy").unique(cl.IDENTITY, keep="last")
    >>> expected = cl.state_at(history, parcel_state, types=parcel_types)
    >>> @settings(max_examples=20, deadline=None)
    ... @given(redeliveries(history))
    ... def check(delivered):
    ...     assert_states_equal(
    ...         cl.state_at(delivered, parcel_state, types=parcel_types).frame, expected.frame
    ...     )
    >>> check()
    """
    st = require("hypothesis.strategies", needed_by="redeliveries (a hypothesis strategy)")
    frame = validate(events, check_parameters=False)
    n = frame.height
    limit = max(int(max_delay.total_seconds() * 1_000_000) // 1000, 1)

    @st.composite
    def delivered(draw: Any) -> pl.DataFrame:
        order = draw(st.permutations(list(range(n))))
        again = draw(st.lists(st.integers(0, n - 1), max_size=max_repeats)) if n else []
        shuffled = frame[list(order)]
        if not again:
            return shuffled
        delays = [draw(st.integers(1, limit)) for _ in again]
        repeats = frame[again].with_columns(
            (
                pl.col("processing_timestamp")
                + pl.Series(delays, dtype=pl.Int64).cast(pl.Duration("ms"))
            ).cast(SCHEMA["processing_timestamp"])
        )
        from concursus_lab.frame.timeuuid import time_uuids

        repeats = repeats.with_columns(time_uuids(repeats["processing_timestamp"]))
        return pl.concat([shuffled, repeats])

    return delivered()


__all__ = [
    "SANITIZE_FILE",
    "UpcasterReport",
    "assert_events_equal",
    "assert_states_equal",
    "check_upcasters",
    "redeliveries",
]
