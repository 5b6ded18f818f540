"""Kafka's default partitioner over a whole column of keys: where a keyed record is written.

A producer with the default partitioner (Java's and kafka-python's alike) writes a record
with key ``k`` to partition ``(murmur2(k) & 0x7fffffff) % partitions``. When every record of
a topic sits where that puts it, all records of one key are in one partition; a Spark read
that keeps each Kafka partition in one task then holds whole keys per task, with no shuffle
(:mod:`~concursus_lab.spark.one_pass`). :func:`default_partitions` computes it for a batch's
keys at once (numpy over the keys of each length), not a Python loop per record.

For example::

    default_partitions(pa.array([b"p1", b"p2", None]), 6)  # array([ 3,  0, -1])
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_SEED = 0x9747B28C
_M = np.uint64(0x5BD1E995)
_MASK = np.uint64(0xFFFFFFFF)


def default_partitions(keys: pa.Array, partitions: int) -> np.ndarray:
    """The partition the default partitioner gives each key (``-1`` for no key)."""
    keys = pc.cast(keys, pa.binary())
    if isinstance(keys, pa.ChunkedArray):
        keys = keys.combine_chunks()
    out = np.full(len(keys), -1, dtype=np.int64)
    if len(keys) == 0:
        return out
    _, offset_buffer, data_buffer = keys.buffers()
    offsets = np.frombuffer(offset_buffer, np.int32, len(keys) + 1, keys.offset * 4)
    data = np.frombuffer(data_buffer, np.uint8) if data_buffer is not None else np.zeros(0)
    lengths = np.diff(offsets)
    valid = keys.is_valid().to_numpy(zero_copy_only=False)
    for length in np.unique(lengths[valid]):
        rows = np.nonzero(valid & (lengths == length))[0]
        cells = data[offsets[rows][:, None] + np.arange(length)].astype(np.uint64)
        hashed = murmur2(cells, int(length))
        out[rows] = ((hashed & np.uint64(0x7FFFFFFF)) % np.uint64(partitions)).astype(np.int64)
    return out


def murmur2(cells: np.ndarray, length: int) -> np.ndarray:
    """Kafka's murmur2 of each row of ``cells`` (one key of ``length`` bytes a row)."""
    h = np.full(len(cells), (_SEED ^ length) & 0xFFFFFFFF, dtype=np.uint64)
    for i in range(0, length - length % 4, 4):
        k = cells[:, i] | cells[:, i + 1] << 8 | cells[:, i + 2] << 16 | cells[:, i + 3] << 24
        k = (k * _M) & _MASK
        k ^= k >> np.uint64(24)
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    base, extra = length & ~3, length % 4
    if extra >= 3:
        h ^= cells[:, base + 2] << np.uint64(16)
    if extra >= 2:
        h ^= cells[:, base + 1] << np.uint64(8)
    if extra >= 1:
        h = ((h ^ cells[:, base]) * _M) & _MASK
    h ^= h >> np.uint64(13)
    h = (h * _M) & _MASK
    return h ^ (h >> np.uint64(15))
