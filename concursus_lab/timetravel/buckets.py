"""Histories larger than memory: whole aggregates in hash buckets, read and folded one at a time.

A fold needs only each aggregate's own events, so a history can be cut by aggregate into
``buckets`` parts (:func:`~concursus_lab.frame.keys.bucket_of`, the hash the in-memory
replay groups by) and each part read, folded and let go before the next is read: the peak
is set by one bucket, not by the history. The parts' answers are then put together
(:mod:`~concursus_lab.timetravel.state_at`).

What can be read a bucket at a time (:func:`bucket_reader`): a polars ``LazyFrame`` (a
Parquet scan, say: each bucket is a streaming scan with the bucket's filter), a source with
a lazy ``scan`` (the local store: ``cl.open("data/big")``), read with every delivery, so
that the question's own ``duplicates`` rule decides, as for ``source.events(duplicates=
"keep")``; or a frame already in memory (each bucket a filtered copy, so a fold's working
memory is a bucket's). A local store keeps its files bucketed by aggregate already, so
part ``b`` of ``n`` is read from its buckets ``s`` with ``s % n == b`` alone (``scan_part``):
whole aggregates again, with no pass over the rest of the store; ``buckets`` above the
store's own count leave some parts empty.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import polars as pl

from concursus_lab.common.progress import bar
from concursus_lab.exceptions import SchemaError
from concursus_lab.frame.keys import bucket_of

#: Buckets when a lazy frame or a source is folded and ``buckets`` is not given.
DEFAULT_BUCKETS = 16


def is_bucketed(events: Any, buckets: int | None) -> bool:
    """Whether a question about ``events`` is answered a bucket at a time."""
    return buckets is not None or not isinstance(events, pl.DataFrame)


def bucket_reader(events: Any, buckets: int | None) -> tuple[int, Callable[[int], pl.DataFrame]]:
    """(how many buckets, ``read(b)``: bucket ``b``'s rows as a frame) for ``events``."""
    n = DEFAULT_BUCKETS if buckets is None else buckets
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise SchemaError(f"`buckets` must be a positive int or None, got {buckets!r}.")
    if isinstance(events, pl.DataFrame):
        ids = events.select(bucket_of(n)).to_series().to_numpy()
        return n, lambda b: events.filter(pl.Series(ids == b))
    if callable(getattr(events, "scan_part", None)):  # a local store: its own buckets' files
        return n, lambda b: events.scan_part(b, n).collect(engine="streaming")
    lazy = _lazy(events)
    return n, lambda b: lazy.filter(bucket_of(n) == b).collect(engine="streaming")


def each_bucket(
    events: Any, buckets: int | None, fold: Callable[[pl.DataFrame], Any], *, progress, what: str
) -> Iterator[Any]:
    """``fold(rows)`` of each bucket's rows in turn, with a progress bar of buckets."""
    n, read = bucket_reader(events, buckets)
    with bar(progress, total=n, what=what, unit="buckets") as shown:
        for b in range(n):
            rows = read(b)
            shown.set_postfix_str(f"bucket {b + 1}/{n}: {rows.height:,} rows", refresh=False)
            answer = fold(rows)
            del rows
            shown.update(1)
            yield answer


def _lazy(events: Any) -> pl.LazyFrame:
    if isinstance(events, pl.LazyFrame):
        return events
    scan = getattr(events, "scan", None)
    if callable(scan):
        return scan(duplicates="keep")
    hint = (
        "Convert it with `cl.from_pandas(df)`."
        if type(events).__module__.startswith("pandas")
        else "Read other sources with `.events()` first, or copy them into a local store "
        "(`concursus-lab copy`)."
    )
    raise SchemaError(
        f"`events` must be a polars DataFrame or LazyFrame, or a source that can be scanned "
        f"lazily (a local store), got {type(events).__name__}. {hint}"
    )


def merged_order(ids: list[str]) -> np.ndarray:
    """The positions that sort ``ids`` (every bucket's, one after another) as one frame."""
    from concursus_lab.frame.keys import string_order

    return string_order(pl.Series(ids, dtype=pl.String))
