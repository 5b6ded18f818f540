"""Time-based UUIDs (version 1): processing time in, processing time out.

Concursus stamps every logged event with a time-based UUID, its ``processingId``; the
processing time is the UUID's 60-bit timestamp, in milliseconds as Concursus reads it:
``(uuid.time - 0x01B21DD213814000) // 10000``. Ids written by Java Concursus often carry a
malformed variant (``c4f74bc0-e9f0-11f1-ffff-ffffffffff65``: Python's ``uuid.UUID(...).version``
is None for them), so only the version nibble decides here, never the variant.

Both directions work on whole columns at once (polars reads, NumPy writes), with no Python
code per id.

>>> import concursus_lab as cl
>>> cl.frame.processing_time("c4f74bc0-e9f0-11f1-ffff-ffffffffff65")
datetime.datetime(2026, 11, 26, 23, 26, 13, 116000, tzinfo=datetime.timezone.utc)
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from typing import overload

import numpy as np
import polars as pl
import pyarrow as pa

from concursus_lab.exceptions import SchemaError

#: 100-ns intervals between the Gregorian epoch (1582-10-15) and the Unix epoch.
GREGORIAN_OFFSET = 0x01B21DD213814000

_UUID_LEN = 36
#: byte -> its two lower-case hex characters, as one little-endian uint16 (low byte first).
_HEX_PAIRS = np.array(
    [ord(f"{b:02x}"[0]) | (ord(f"{b:02x}"[1]) << 8) for b in range(256)], dtype="<u2"
)


@overload
def processing_time(ids: str | uuid.UUID | None) -> dt.datetime | None: ...
@overload
def processing_time(ids: pl.Series) -> pl.Series: ...


def processing_time(ids):
    """The processing time (UTC, millisecond precision) of time-based UUIDs.

    Given a Series of id strings, returns a ``Datetime(us, UTC)`` Series, null where the id is
    null, empty or not a version-1 UUID (so a caller can fall back to another clock with
    ``fill_null``). Given one id, returns one datetime or None.
    """
    if isinstance(ids, pl.Series):
        return _processing_times(ids)
    if ids is None:
        return None
    value = _processing_times(pl.Series([str(ids)], dtype=pl.String)).item()
    return None if value is None else value.replace(tzinfo=dt.UTC)


def _processing_times(ids: pl.Series) -> pl.Series:
    return pl.DataFrame([ids.cast(pl.String)]).select(_TIME.alias(ids.name)).to_series()


#: A version-1 UUID's text (either case, any variant): ``tttttttt-tttt-1ttt-vxxx-nnnnnnnnnnnn``.
_SHAPE = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-1[0-9a-fA-F]{3}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


def _processing_time(ids: pl.Expr) -> pl.Expr:
    """Processing time (ms precision) of id texts, null unless version 1: the 60-bit time is
    time_hi (after the version nibble), time_mid, time_low, read as one hex number. Polars
    does this in 1.5 s of CPU per 10M ids, less than the NumPy pass it replaced
    (docs/hand-written.md)."""
    ticks = pl.concat_str(ids.str.slice(15, 3), ids.str.slice(9, 4), ids.str.slice(0, 8))
    millis = (ticks.str.to_integer(base=16, strict=False) - GREGORIAN_OFFSET) // 10_000
    return pl.when(ids.str.contains(_SHAPE)).then(millis * 1000).cast(pl.Datetime("us", "UTC"))


_TIME = _processing_time(pl.first())


def is_time_uuid(ids: pl.Series) -> pl.Series:
    """True where the id is a time-based (version 1) UUID, of any variant."""
    return processing_time(ids).is_not_null()


def time_uuids(
    timestamps: pl.Series, *, seed: int | None = None, node: int | None = None
) -> pl.Series:
    """Fresh time-based UUIDs (RFC 4122 variant) whose time is each timestamp, to the ms.

    Events processed within the same millisecond get increasing sub-millisecond ticks, as
    Java's ``UUIDs.timeBased()`` does, so the ids are unique and sort by processing time.
    ``seed`` makes the clock sequence and node repeatable (the sample data uses it);
    ``node`` sets the 48-bit node. A null, or a time a version-1 UUID cannot hold (before
    1582-10-15, or after 5236), is a :class:`~concursus_lab.exceptions.SchemaError` naming
    its row, never an id of another time.
    """
    millis = _checked_millis(timestamps, seed, node).to_numpy().astype(np.int64)
    n = len(millis)
    rng = np.random.default_rng(
        seed if seed is not None else int.from_bytes(os.urandom(8), "little")
    )
    clock_seq = int(rng.integers(0, 1 << 14))
    if node is None:
        node = int(rng.integers(0, 1 << 48)) | (1 << 40)  # multicast bit: not a MAC address
    order = np.argsort(millis, kind="stable")
    sorted_ms = millis[order]
    starts = np.r_[True, sorted_ms[1:] != sorted_ms[:-1]] if n else np.zeros(0, dtype=bool)
    run_start = np.maximum.accumulate(np.where(starts, np.arange(n), 0)) if n else order
    counter = np.empty(n, dtype=np.int64)
    counter[order] = (np.arange(n) - run_start) % 10_000
    ticks = (millis * 10_000 + GREGORIAN_OFFSET + counter).astype(np.uint64)

    raw = np.empty((n, 16), dtype=np.uint8)
    raw[:, 0:4] = (ticks & np.uint64(0xFFFFFFFF)).astype(">u4").view(np.uint8).reshape(n, 4)
    raw[:, 4:6] = (
        ((ticks >> np.uint64(32)) & np.uint64(0xFFFF)).astype(">u2").view(np.uint8).reshape(n, 2)
    )
    raw[:, 6:8] = (
        (((ticks >> np.uint64(48)) & np.uint64(0x0FFF)) | np.uint64(0x1000))
        .astype(">u2")
        .view(np.uint8)
        .reshape(n, 2)
    )
    raw[:, 8] = 0x80 | ((clock_seq >> 8) & 0x3F)  # RFC 4122 variant
    raw[:, 9] = clock_seq & 0xFF
    raw[:, 10:16] = np.frombuffer(node.to_bytes(6, "big"), dtype=np.uint8)
    return uuid_texts(raw).alias("processing_id")


#: The milliseconds since the Unix epoch a version-1 UUID holds: its 60-bit timestamp
#: counts 100 ns from 1582-10-15, and a millisecond's ticks run up to 9,999 more.
_MS_RANGE = (-(GREGORIAN_OFFSET // 10_000), ((1 << 60) - GREGORIAN_OFFSET) // 10_000 - 1)


def _checked_millis(timestamps: object, seed: object, node: object) -> pl.Series:
    """The epoch milliseconds of ``timestamps``, or a :class:`SchemaError` for what
    :func:`time_uuids` cannot make ids of."""
    if not isinstance(timestamps, pl.Series):
        raise SchemaError(
            f"`timestamps` must be a polars Series of times, got {type(timestamps).__name__}; "
            "e.g. frame['processing_timestamp']."
        )
    if not isinstance(timestamps.dtype, pl.Datetime):
        raise SchemaError(f"`timestamps` must be a Datetime series, got {timestamps.dtype}.")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
        raise SchemaError(f"`seed` must be a non-negative int or None, got {seed!r}.")
    if node is not None and (
        not isinstance(node, int) or isinstance(node, bool) or not 0 <= node < 1 << 48
    ):
        raise SchemaError(f"`node` must be an int in [0, 2**48) or None, got {node!r}.")
    nulls = timestamps.null_count()
    if nulls:
        row = int(timestamps.is_null().arg_true()[0])
        raise SchemaError(
            f"`timestamps` has {nulls:,} null(s), the first at row {row}; a time-based UUID "
            "holds a time: fill or drop them first."
        )
    millis = timestamps.dt.epoch("ms")
    if millis.len() and (millis.min() < _MS_RANGE[0] or millis.max() > _MS_RANGE[1]):
        outside = (millis < _MS_RANGE[0]) | (millis > _MS_RANGE[1])
        row = int(outside.arg_true()[0])
        raise SchemaError(
            f"`timestamps` has {int(outside.sum()):,} time(s) a time-based UUID cannot hold "
            f"(before 1582-10-15 or after 5236), the first at row {row}: "
            f"{timestamps[row]}."
        )
    return millis


def uuid_texts(raw: np.ndarray) -> pl.Series:
    """The canonical lower-case text of each UUID in an ``(n, 16)`` uint8 array of its bytes."""
    n = len(raw)
    raw = np.ascontiguousarray(raw, dtype=np.uint8).reshape(n, 16)
    hexed = _HEX_PAIRS[raw].view(np.uint8).reshape(n, 32)
    text = np.full((n, _UUID_LEN), ord("-"), dtype=np.uint8)
    for (src, dst), width in zip(
        ((0, 0), (8, 9), (12, 14), (16, 19), (20, 24)), (8, 4, 4, 4, 12), strict=True
    ):
        text[:, dst : dst + width] = hexed[:, src : src + width]
    offsets = np.arange(0, (n + 1) * _UUID_LEN, _UUID_LEN, dtype=np.int64)
    array = pa.LargeStringArray.from_buffers(
        n, pa.py_buffer(offsets.tobytes()), pa.py_buffer(text.tobytes())
    )
    return pl.Series("uuid", array, dtype=pl.String)


def time_uuid(at: dt.datetime) -> str:
    """One fresh time-based UUID whose time is ``at`` (to the millisecond)."""
    series = pl.Series([at]).cast(pl.Datetime("us", "UTC"))
    return time_uuids(series).item()
