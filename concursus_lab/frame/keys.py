"""Row keys: the integers that rows are grouped and sorted by, made fast.

Sorting and grouping millions of rows by strings is slow; these helpers turn the columns
that replay order needs into integers first (NumPy and polars, no Python per row):

* an aggregate (type and id) becomes two independent 64-bit hashes; rows are grouped by
  the first, and the second must be constant within each group, so two aggregates are
  merged only if both collide (then the ids themselves are used, see ``order.py``);
* a low-cardinality string column (stream ids, thread names) becomes codes in the lexical
  order of its values; an instant and its stream become one int64 when they fit;
* string columns are sorted as big-endian 64-bit words, and scattered strings are picked
  by a mask instead of a gather.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

#: Above this many bytes of fixed-width keys, strings are sorted by polars instead of NumPy.
NUMPY_SORT_BYTES = 2**29


def aggregate_hashes(frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Two independent 64-bit hashes of each row's aggregate (type and id); see
    :func:`row_keys`, which also returns the row's times."""
    first, second = _hash_expressions(frame)
    keys = frame.select(first.alias("h"), second.alias("h2"))
    return keys["h"].to_numpy(), keys["h2"].to_numpy()


def shared_hash(h2: np.ndarray, start: np.ndarray) -> bool:
    """Whether rows grouped by the first hash hold two aggregates somewhere: the second
    hash (``h2``, in the grouped order; ``start`` marks each group's first row) changes
    within a group. Then group by :func:`exact_aggregates` instead."""
    return bool((h2[1:] != h2[:-1])[~start[1:]].any())


def exact_aggregates(frame: pl.DataFrame) -> np.ndarray:
    """Each row's aggregate (type and id) as a dense code (uint64, as the hashes are): the
    group key where two aggregates share a hash (:func:`shared_hash`); slower, exact."""
    exact = frame.select(pl.struct("aggregate_type", "aggregate_id").rank("dense"))
    return exact.to_series().to_numpy().astype(np.uint64)


def _hash_expressions(frame: pl.DataFrame) -> tuple[pl.Expr, pl.Expr]:
    """hash(id) ^ hash(type), twice with other seeds; the type's hash is computed once
    when the frame holds one type (the usual case), giving the same values."""
    types = frame["aggregate_type"].unique() if frame.height else pl.Series([""])
    kind = pl.lit(types[0]) if types.len() == 1 else pl.col("aggregate_type")
    return _first_hash(kind), pl.col("aggregate_id").hash(23) ^ kind.hash(29)


def _first_hash(kind: pl.Expr) -> pl.Expr:
    """The first hash of an aggregate (``kind``: its type, a column or a literal)."""
    return pl.col("aggregate_id").hash(11) ^ kind.hash(13)


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


def sorted_codes(column: pl.Series) -> tuple[np.ndarray, list]:
    """Each value's position among the column's distinct values in sorted order (nulls
    coded last), and those values: integer sort keys for a low-cardinality column.

    >>> codes, values = sorted_codes(pl.Series(["b", None, "a", "b"]))
    >>> codes.tolist(), values
    ([1, 2, 0, 1], ['a', 'b'])
    """
    values = column.drop_nulls().unique().sort()
    if not column.null_count():
        if values.len() <= 1:  # one value (streams, usually): zeros, no page touched
            return np.zeros(column.len(), dtype=np.int64), values.to_list()
        return values.search_sorted(column).to_numpy().astype(np.int64), values.to_list()
    codes = np.full(column.len(), values.len(), dtype=np.int64)
    present = column.is_not_null().to_numpy()
    codes[present] = values.search_sorted(column.drop_nulls()).to_numpy()
    return codes, values.to_list()


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
    return pack([(ts, None), (stream, max(n_streams, 1))])


def instant_keys(
    frame: pl.DataFrame, ts: np.ndarray, stream: np.ndarray, n_streams: int
) -> tuple[np.ndarray, ...]:
    """The sort keys of causal order within a rank (``order.py``): event time, then
    ``sequence`` when the frame has one, then stream, then ``event_id`` when it has one
    (lexical), packed into one int64 when they fit. Without the optional columns this is
    :func:`pack_instant`."""
    optional = [c for c in ("sequence", "event_id") if c in frame.columns]
    if not optional or len(ts) == 0:
        return pack_instant(ts, stream, n_streams)
    columns: list[tuple[np.ndarray, int | None]] = [(ts, None)]
    if "sequence" in optional:
        columns.append((frame["sequence"].to_numpy(), None))
    columns.append((stream, max(n_streams, 1)))
    if "event_id" in optional:
        codes, values = sorted_codes(frame["event_id"])
        columns.append((codes, max(len(values), 1)))
    return pack(columns)


def pack(columns: list[tuple[np.ndarray, int | None]]) -> tuple[np.ndarray, ...]:
    """Integer sort keys (each with its number of values, or None: taken from its range) as
    one int64 key in the same order, when their ranges multiply to less than 2**62; else
    the columns themselves."""
    spans = []
    for values, span in columns:
        if span is None:
            low = int(values.min())
            span = int(values.max()) - low + 1
        spans.append(span)
    if int(np.prod(np.array(spans, dtype=object))) >= 2**62:
        return tuple(values for values, _ in columns)
    # one new array, worked in place (each step of ``key * span + values`` made two)
    key = np.array(columns[0][0], dtype=np.int64)
    if columns[0][1] is None:
        key -= int(key.min())
    for (values, given), span in zip(columns[1:], spans[1:], strict=True):
        if span > 1:
            np.multiply(key, span, out=key)
            shifted = values if given is not None else values - int(values.min())
            np.add(key, shifted, out=key, casting="unsafe")
    return (key,)


def _argsort(key: np.ndarray) -> np.ndarray:
    """The stable permutation sorting ``key``, sorted by polars on both cores."""
    if len(key) < 2:
        return np.arange(len(key))
    order = pl.DataFrame({"k": key}).select(pl.arg_sort_by("k", maintain_order=True))
    return order.to_series().to_numpy().astype(np.int64, copy=False)


def bucket_of(buckets: int) -> pl.Expr:
    """Each row's hash bucket of whole aggregates, ``0 .. buckets - 1``: the first hash of
    :func:`aggregate_hashes` modulo ``buckets``, as an expression (lazy frames too), so
    every row of an aggregate lands in one bucket.

    >>> frame = pl.DataFrame({"aggregate_type": ["p", "p", "t"], "aggregate_id": ["a", "a", "a"]})
    >>> b = frame.select(bucket_of(4)).to_series().to_list()
    >>> b[0] == b[1], all(0 <= x < 4 for x in b)
    (True, True)
    """
    first = _first_hash(pl.col("aggregate_type"))
    return (first % buckets).cast(pl.Int64).alias("__bucket")
