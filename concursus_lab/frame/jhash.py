"""Java's ``String.hashCode``, vectorised: Concursus's Catalogue buckets and the local store's.

``h = 31 * h + c`` over UTF-16 code units, wrapping at 32 bits. ASCII ids (nearly all ids)
are hashed column-wise with NumPy; any other id falls back to an exact per-value loop.

>>> import polars as pl
>>> java_hash(pl.Series(["id1", "", "parcel-000001"])).to_list()
[104054, 0, -50622395]
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa


def java_hash(values: pl.Series) -> pl.Series:
    """Java ``String.hashCode()`` of each string, as Int32 (nulls stay null)."""
    unique = values.cast(pl.String).unique(maintain_order=True)
    hashes = _hash_unique(unique)
    lookup = pl.DataFrame({"v": unique, "h": pl.Series(hashes, dtype=pl.Int32)})
    return (
        pl.DataFrame({"v": values.cast(pl.String)})
        .join(lookup, on="v", how="left", maintain_order="left", nulls_equal=False)
        .get_column("h")
        .alias(values.name)
    )


def bucket(values: pl.Series, buckets: int) -> pl.Series:
    """``abs(hashCode) % buckets`` as Concursus's Catalogue computes it (Int32)."""
    h = java_hash(values).cast(pl.Int64)
    return (h.abs() % buckets).cast(pl.Int32)


def _hash_unique(values: pl.Series) -> np.ndarray:
    n = values.len()
    out = np.zeros(n, dtype=np.int64)
    if not n:
        return out.astype(np.int32)
    array = values.to_arrow()
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    array = array.cast(pa.large_string())
    buffers = array.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int64)[array.offset : array.offset + n + 1]
    data = (
        np.frombuffer(buffers[2], dtype=np.uint8)
        if buffers[2] is not None
        else np.zeros(1, np.uint8)
    )
    starts = offsets[:-1]
    lengths = np.diff(offsets)
    mask32 = np.int64(0xFFFFFFFF)
    for k in range(int(lengths.max()) if n else 0):
        live = np.flatnonzero(lengths > k)
        out[live] = (out[live] * 31 + data[starts[live] + k]) & mask32
    # rows with a non-ASCII byte: recompute exactly over UTF-16 code units
    if len(data) and (data[offsets[0] : offsets[-1]] >= 0x80).any():
        for i, text in enumerate(values.to_list()):
            if text is not None and not text.isascii():
                out[i] = _java_hash_one(text) & 0xFFFFFFFF
    out = np.where(out >= 1 << 31, out - (1 << 32), out)
    return out.astype(np.int32)


def _java_hash_one(text: str) -> int:
    h = 0
    encoded = text.encode("utf-16-be")
    for i in range(0, len(encoded), 2):
        h = (31 * h + ((encoded[i] << 8) | encoded[i + 1])) & 0xFFFFFFFF
    return h
