"""Replay order: grouping rows by aggregate, causal order, and one delivery per identity.

The time-travel functions share these vectorised steps (NumPy and polars, no Python per
row):

* rows are grouped by a 64-bit hash of their aggregate; a second, independent hash must be
  constant within each group, so two aggregates are merged only if both collide (then the
  ids themselves are used);
* within an aggregate, rows are sorted by event time, then stream id (lexical), then, for
  deliveries of one identity, processing time and row; the deliveries of one identity are
  then neighbours, and the last (or first) processed is kept;
* causal order puts initial events first and terminal ones last, which is a stable regroup
  of each aggregate's rows by rank;
* creation: where initial events are declared, only an aggregate's first initial event
  creates a state, and the others are applied only if one was.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

from concursus_lab._schema import INITIAL, TERMINAL

#: Above this many bytes of fixed-width keys, strings are sorted by polars instead of NumPy.
NUMPY_SORT_BYTES = 2**29


def aggregate_hashes(frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Two independent 64-bit hashes of each row's aggregate (type and id); see
    :func:`row_keys`, which also returns the row's times."""
    first, second = _hash_expressions(frame)
    keys = frame.select(first.alias("h"), second.alias("h2"))
    return keys["h"].to_numpy(), keys["h2"].to_numpy()


def _hash_expressions(frame: pl.DataFrame) -> tuple[pl.Expr, pl.Expr]:
    several = frame.height > 0 and frame["aggregate_type"].n_unique() > 1
    first = pl.col("aggregate_id").hash(11)
    second = pl.col("aggregate_id").hash(23)
    if several:
        first = first ^ pl.col("aggregate_type").hash(13)
        second = second ^ pl.col("aggregate_type").hash(29)
    return first, second


def row_keys(frame: pl.DataFrame) -> tuple[np.ndarray, ...]:
    """Per row: two independent 64-bit hashes of its aggregate (type and id), and its event
    and processing times in epoch microseconds (one polars pass, columns in parallel).

    Rows are grouped by the first hash; :func:`identity_order` checks that the second is
    constant within each group, so two aggregates are merged only if both hashes collide.
    """
    first, second = _hash_expressions(frame)
    keys = frame.select(
        first.alias("h"),
        second.alias("h2"),
        pl.col("event_timestamp").dt.epoch("us").alias("ts"),
        pl.col("processing_timestamp").dt.epoch("us").alias("pts"),
    )
    return tuple(keys[c].to_numpy() for c in keys.columns)


def sorted_codes(column: pl.Series) -> tuple[np.ndarray, list[str]]:
    """Codes of a low-cardinality string column in the lexical order of its values."""
    values = column.unique().sort()
    return values.search_sorted(column).to_numpy().astype(np.int64), values.to_list()


def string_order(*columns: pl.Series) -> np.ndarray:
    """The stable permutation that sorts rows by string columns (by UTF-8 bytes, as polars
    does).

    Each column's bytes lose the prefix all its values share ("parcel-", "urn:bulb:"), and
    the rest is read as big-endian 64-bit words: NumPy then sorts integers, not strings,
    five times faster than it sorts fixed-width bytes (three million ids: 0.4 s, not 2.4).
    Words are padded with NUL bytes; where a value itself ends with one, the byte length
    breaks ties. Nulls, or words that would take too much memory, are sorted by polars.
    """
    n = columns[0].len()
    if n < 2:
        return np.arange(n)
    raws = [c.cast(pl.Binary) for c in columns]
    widths = [int(r.bin.size().max() or 0) for r in raws]
    if any(c.null_count() for c in columns) or sum(widths) * 2 * n > NUMPY_SORT_BYTES:
        frame = pl.DataFrame({f"k{i}": c for i, c in enumerate(columns)})
        keys = [f"k{i}" for i in range(len(columns))]
        return frame.select(pl.arg_sort_by(keys, maintain_order=True)).to_series().to_numpy()
    keys: list[np.ndarray] = []
    for raw, width in zip(raws, widths, strict=True):
        keys.extend(_words(raw, width))
        if raw.bin.ends_with(b"\x00").any():  # "a" and "a\0" have the same words
            keys.append(raw.bin.size().to_numpy())
    if len(keys) == 1:
        return _argsort(keys[0])
    return np.lexsort(keys[::-1])


def _words(raw: pl.Series, width: int) -> list[np.ndarray]:
    """Binary values as big-endian uint64 words (NUL-padded), without the bytes that all of
    them start with; read a byte position at a time from the Arrow buffers."""
    n = raw.len()
    array = raw.to_arrow(compat_level=pl.CompatLevel.oldest())  # offsets and bytes
    if not pa.types.is_large_binary(array.type):
        array = array.cast(pa.large_binary())
    buffers = array.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int64)[array.offset : array.offset + n + 1]
    data = np.frombuffer(buffers[2], dtype=np.uint8) if buffers[2] is not None else None
    starts = offsets[:-1]
    lengths = offsets[1:] - starts
    shortest = int(lengths.min())

    def byte(j: int) -> np.ndarray:
        if j < shortest:
            return data[starts + j].astype(np.uint64)
        out = np.zeros(n, dtype=np.uint64)
        has = lengths > j
        out[has] = data[starts[has] + j]
        return out

    cut = 0
    while cut < shortest and (byte(cut) == data[starts[0] + cut]).all():
        cut += 1
    words = []
    for first in range(cut, max(width, cut + 1), 8):
        word = np.zeros(n, dtype=np.uint64)
        for j in range(first, min(first + 8, width)):
            word |= byte(j) << np.uint64(56 - 8 * (j - first))
        words.append(word)
    return words


def gather_rows(column: pl.Series, rows: np.ndarray) -> pl.Series:
    """``column.gather(rows)`` for distinct rows scattered over a long column, 5x faster.

    polars gathers strings from a long column one cache miss at a time; a mask picks the
    same rows in one sequential pass, and the short result is then put in ``rows``' order.
    """
    if len(rows) < 2 or len(rows) * 16 < column.len():
        return column.gather(pl.Series(rows, dtype=pl.Int64))
    mask = np.zeros(column.len(), dtype=bool)
    mask[rows] = True
    picked = column.filter(pl.Series(mask))
    if picked.len() != len(rows):  # a row asked for twice
        return column.gather(pl.Series(rows, dtype=pl.Int64))
    position = np.cumsum(mask, dtype=np.int64) - 1
    return picked.gather(pl.Series(position[rows], dtype=pl.Int64))


def pack_instant(ts: np.ndarray, stream: np.ndarray, n_streams: int) -> tuple[np.ndarray, ...]:
    """(event time, stream) as one int64 sort key when it fits, else the two columns."""
    if len(ts) == 0:
        return (ts,)
    low = int(ts.min())
    span = int(ts.max()) - low + 1
    if span * max(n_streams, 1) < 2**62:
        return ((ts - low) * max(n_streams, 1) + stream,)
    return (ts, stream)


def identity_order(
    h: np.ndarray,
    h2: np.ndarray,
    instant: tuple[np.ndarray, ...],
    pts: np.ndarray,
    duplicates: str,
    frame: pl.DataFrame,
) -> tuple[np.ndarray, np.ndarray]:
    """Rows sorted by aggregate, event time and stream, then (deliveries of one identity)
    by processing time and row; one delivery per identity unless ``duplicates == "keep"``.

    Returns the row positions and a flag marking each aggregate's first row. The big sort
    is one polars sort of the keys with the row numbers alongside (no gathers after it),
    with no processing-time or row key, and need not be stable: only the few identities
    delivered more than once are then put in processing order, then row order. When two
    aggregates share the first hash (the second differs within a group), they are grouped
    by their ids instead.
    """
    n = len(h)
    if n < 2:
        return np.arange(n, dtype=np.int64), np.ones(n, dtype=bool)
    names = [f"i{k}" for k in range(len(instant))]
    keys = pl.DataFrame({"h": h, "h2": h2, **dict(zip(names, instant, strict=True))})
    ordered = keys.with_row_index("row").sort(["h", *names], maintain_order=False)
    order = ordered["row"].to_numpy().astype(np.int64)
    hs = ordered["h"].to_numpy()
    start = np.ones(n, dtype=bool)
    start[1:] = hs[1:] != hs[:-1]
    h2s = ordered["h2"].to_numpy()
    if (h2s[1:] != h2s[:-1])[~start[1:]].any():
        exact = frame.select(pl.struct("aggregate_type", "aggregate_id").rank("dense"))
        h = exact.to_series().to_numpy().astype(np.uint64)
        return identity_order(h, h, instant, pts, duplicates, frame)
    same = ~start[1:]  # row p and row p + 1 are deliveries of one identity
    for name in names:
        column = ordered[name].to_numpy()
        same &= column[1:] == column[:-1]
    if not same.any():
        return order, start
    # deliveries of one identity are neighbours (a run): processing order, then row order
    pairs = np.flatnonzero(same)
    repeated = np.union1d(pairs, pairs + 1)
    run_start = np.ones(len(repeated), dtype=bool)
    run_start[1:] = ~((repeated[1:] == repeated[:-1] + 1) & same[repeated[:-1]])
    rows = order[repeated]
    by_processing = np.lexsort((rows, pts[rows], np.cumsum(run_start)))
    order[repeated] = rows[by_processing]
    if duplicates == "keep":
        return order, start
    run_end = np.r_[run_start[1:], True]
    if duplicates == "last":  # the last of each run wins, and starts its aggregate if the
        losers = repeated[~run_end]  # run did
        start[repeated[run_end][start[repeated[run_start]]]] = True
    else:
        losers = repeated[~run_start]
    kept = np.ones(n, dtype=bool)
    kept[losers] = False
    return order[kept], start[kept]


def _argsort(key: np.ndarray) -> np.ndarray:
    """The stable permutation sorting ``key``, sorted by polars on both cores."""
    if len(key) < 2:
        return np.arange(len(key))
    order = pl.DataFrame({"k": key}).select(pl.arg_sort_by("k", maintain_order=True))
    return order.to_series().to_numpy().astype(np.int64, copy=False)


def restart(start: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Group-start flags after dropping rows: a kept row starts a group if a dropped row did."""
    group = np.cumsum(start) - 1
    kept_group = group[keep]
    new = np.ones(len(kept_group), dtype=bool)
    new[1:] = kept_group[1:] != kept_group[:-1]
    return new


def creation_mask(kinds: np.ndarray, start: np.ndarray, declares_initial: bool) -> np.ndarray:
    """Which rows (decodable, causally sorted, ``start`` marking each aggregate's first)
    the reducer sees.

    Where initial events are declared, an aggregate's first initial event creates its state
    (initial events sort first, so it is the aggregate's first row), later initial events
    are skipped, and the other events are applied only if a state was created. Otherwise
    every event is applied.
    """
    if not declares_initial:
        return np.ones(len(kinds), dtype=bool)
    segment = np.cumsum(start) - 1
    is_initial = kinds == INITIAL
    created = np.zeros(int(start.sum()), dtype=bool)
    created[segment[is_initial]] = True
    return np.where(is_initial, start, created[segment])


def duplicate_losers(frame: pl.DataFrame, keep: str) -> np.ndarray | None:
    """Rows that lose to another delivery of their identity (None when there are none).

    Identities are compared by a 64-bit hash first (fast); rows that share a hash are then
    resolved on the identity columns themselves, so a collision never merges two events.
    Among deliveries of one identity the last (or first) processed wins; ties on
    ``processing_timestamp`` go to row order, as ``_query.resolve_duplicates`` does.
    """
    if frame.height < 2:
        return None
    identity = pl.struct("aggregate_type", "aggregate_id", "event_timestamp", "stream_id")
    suspects = frame.select(identity.hash().is_duplicated()).to_series()
    if not suspects.any():
        return None
    rows = np.flatnonzero(suspects.to_numpy())
    sub = frame.select(
        "aggregate_type",
        "aggregate_id",
        "event_timestamp",
        "stream_id",
        "processing_timestamp",
    )[rows].with_columns(pl.Series("__at", rows))
    ordered = sub.sort(
        "aggregate_type",
        "aggregate_id",
        "event_timestamp",
        "stream_id",
        "processing_timestamp",
        "__at",
    )
    winner = identity.is_last_distinct() if keep == "last" else identity.is_first_distinct()
    lose = ordered.filter(~winner)["__at"].to_numpy()
    mask = np.zeros(frame.height, dtype=bool)
    mask[lose] = True
    return mask


def causal_order(frame: pl.DataFrame, kinds: np.ndarray, *, keep: bool = False) -> np.ndarray:
    """Row positions of ``frame`` (one aggregate type) in causal replay order.

    Aggregates are grouped by their id; within one: initial events, others, terminal;
    then event timestamp, stream id, processing timestamp and row.
    """
    rank = np.where(kinds == INITIAL, 0, np.where(kinds == TERMINAL, 2, 1)).astype(np.int8)
    keys = frame.select(
        "aggregate_id",
        pl.Series("__rank", rank),
        "event_timestamp",
        "stream_id",
        "processing_timestamp",
    ).with_row_index("__row")
    return (
        keys.select(
            pl.arg_sort_by(
                "aggregate_id",
                "__rank",
                "event_timestamp",
                "stream_id",
                "processing_timestamp",
                "__row",
            )
        )
        .to_series()
        .to_numpy()
    )
