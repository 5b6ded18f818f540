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

A large frame already in memory is answered in buckets of itself too (:func:`chosen_buckets`):
``state_at`` of a frame of at least :data:`AUTO_ROWS` rows folds it in one bucket per
:data:`ROWS_PER_BUCKET` rows when ``buckets`` is not given, so that its working memory beside
the frame is a bucket's (issue 34: at 5M events a fold at once peaked at 3.4x the frame, in
buckets 3.06x, at the same CPU: 9.65/10.36 s against 9.80/11.03 s at 2.6M). The answer is the
same, row for row and column for column; ``buckets=`` still wins. ``latest`` answers a frame
in memory at once: in buckets of itself it took 15.4 instead of 10.7-12.5 CPU s at 10.2M
events (its "< 5 s at 10M" goal) for a peak of 3,253 instead of 3,724 MB.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import polars as pl

from concursus_lab.common.progress import bar
from concursus_lab.exceptions import SchemaError
from concursus_lab.frame.keys import bucket_of
from concursus_lab.frame.schema import validate

#: Buckets when a lazy frame or a source is folded and ``buckets`` is not given.
DEFAULT_BUCKETS = 16
#: A frame in memory of at least this many rows is answered by ``state_at`` in buckets of
#: itself when ``buckets`` is not given (:func:`chosen_buckets`).
AUTO_ROWS = 2_000_000
#: ... one bucket per this many rows (rounded up): 5M rows in 10 buckets.
ROWS_PER_BUCKET = 500_000


def chosen_buckets(events: Any, buckets: int | None) -> int | None:
    """``buckets`` as asked, else, for a frame in memory of at least :data:`AUTO_ROWS` rows,
    one bucket per :data:`ROWS_PER_BUCKET` rows; else None (a frame answered at once, a lazy
    frame or a source in :data:`DEFAULT_BUCKETS`)."""
    if buckets is not None or not isinstance(events, pl.DataFrame):
        return buckets
    return auto_buckets(events.height)


def auto_buckets(rows: int) -> int | None:
    """The buckets a frame of ``rows`` rows is answered in when none are asked (None: at once)."""
    return None if rows < AUTO_ROWS else -(-rows // ROWS_PER_BUCKET)


def is_bucketed(events: Any, buckets: int | None) -> bool:
    """Whether a question about ``events`` is answered a bucket at a time."""
    return buckets is not None or not isinstance(events, pl.DataFrame)


def bucket_reader(events: Any, buckets: int | None) -> tuple[int, Callable[[int], pl.DataFrame]]:
    """(how many buckets, ``read(b)``: bucket ``b``'s rows as a frame) for ``events``."""
    n = DEFAULT_BUCKETS if buckets is None else buckets
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise SchemaError(f"`buckets` must be a positive int or None, got {buckets!r}.")
    if isinstance(events, pl.DataFrame):  # its problems named as the whole's would be
        events = validate(events, check_parameters=False)
        ids = events.select(bucket_of(n).cast(_small(n))).to_series().to_numpy()
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


def _small(n: int) -> pl.DataType:
    """The narrowest integer type of ``0 .. n - 1``: a frame's bucket of every row kept
    while its buckets are read (5M rows: 5 MB, not 40)."""
    return pl.UInt8 if n <= 256 else pl.UInt16 if n <= 65536 else pl.Int64


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


def put_together(
    frames: list[pl.DataFrame],
    order_of: Callable[[pl.DataFrame], np.ndarray],
    columns: Callable[[Sequence[str]], Sequence[str]] = list,
) -> tuple[pl.DataFrame, np.ndarray]:
    """The buckets' answers as one frame, its rows in ``order_of(frame)``'s order, and that
    order; ``columns`` (of the names) puts the columns in order.

    ``frames`` is emptied: the caller holds no other reference to them, so that the rows are
    copied once, a column at a time, each of the parts' columns let go once gathered. The
    peak is the answer and one column, not the parts and the answer (at 5M events, the
    answer is 0.2-0.4x the events' frame)."""
    frame = pl.concat(frames, how="diagonal_relaxed", rechunk=False)  # no copy
    frames.clear()
    frame = frame.select(columns(frame.columns))
    order = order_of(frame)
    if len(order) == frame.height and not (np.diff(order) != 1).any():
        return frame, order
    rows, gathered = pl.Series(order, dtype=pl.Int64), []
    for name in frame.columns:
        gathered.append(frame.get_column(name).gather(rows))
        frame = frame.drop(name)
    return pl.DataFrame(gathered), order
