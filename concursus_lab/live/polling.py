"""Following a source that cannot be followed, by reading it again: a growing local store.

A local store (or any source with ``events()`` and no ``follow()``) keeps no offsets that a
follower could go on from: an append adds files and may rewrite others. :func:`polled`
reads the source whole every ``poll_timeout`` seconds and yields the deliveries that the
live fold has not read yet: every delivery read, minus the ones the fold holds, counted as
a multiset over the canonical columns (so a delivery stored twice, identical, is read
twice). Each poll costs a read of the whole source; the fold costs only what is new.
Nothing is kept but the fold's own deliveries, so a follow that stopped goes on from them,
losing and repeating nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import polars as pl

from concursus_lab.frame.schema import columns_of

_COPY = "_copy"  # which copy of identical deliveries a row is (0 the first)


def unread(every: pl.DataFrame, read: pl.DataFrame) -> pl.DataFrame:
    """The rows of ``every`` that ``read`` does not hold (as many copies of a row as
    ``every`` has more than ``read``), in ``every``'s order, with its columns."""
    keys = [c for c in columns_of(every) if c in read.columns]
    if read.height == 0:
        return every
    numbered = every.with_columns(pl.int_range(pl.len()).over(keys).alias(_COPY))
    held = read.select(keys).with_columns(pl.int_range(pl.len()).over(keys).alias(_COPY))
    return numbered.join(held, on=[*keys, _COPY], how="anti", nulls_equal=True).drop(_COPY)


def polled(
    source: Any,
    aggregate_type: str,
    read: Callable[[], pl.DataFrame],
    *,
    batch: int,
    poll_timeout: float,
    idle_timeout: float | None,
) -> Iterator[pl.DataFrame]:
    """Frames of at most ``batch`` deliveries of ``aggregate_type`` that ``source`` holds and
    ``read()`` (the live fold's deliveries, asked again before each poll) does not; reads
    the source every ``poll_timeout`` seconds, and stops once nothing new came for
    ``idle_timeout`` seconds (never, if None)."""
    quiet_since = time.monotonic()
    while True:
        every = source.events(aggregate_type, duplicates="keep")
        new = unread(every, read())
        if new.height:
            for start in range(0, new.height, batch):
                yield new[start : start + batch]
            quiet_since = time.monotonic()
        elif idle_timeout is not None and time.monotonic() - quiet_since >= idle_timeout:
            return
        else:
            time.sleep(poll_timeout)
