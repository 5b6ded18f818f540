"""One column of raw cells -> one array: text, fixed-width numbers and UUID bytes.

A page's cells arrive as the bytes Cassandra sent (or None). Each function here turns one
column of them into a NumPy array or an Arrow-backed polars Series at once, never a Python
object per value, and records in :class:`Reasons` why a cell cannot be read (not UTF-8, the
wrong width, null where a value is needed), so the row goes to the quarantine instead.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa


class Reasons:
    """Why each row cannot be decoded, gathered column by column."""

    def __init__(self, n: int):
        self._mask = np.zeros(n, dtype=bool)
        self._by_row: dict[int, list[str]] = {}

    def add(self, mask: np.ndarray, why: str) -> None:
        if mask.any():
            self._mask |= mask
            for row in np.flatnonzero(mask).tolist():
                self._by_row.setdefault(row, []).append(why)

    def add_one(self, row: int, why: str) -> None:
        self._mask[row] = True
        self._by_row.setdefault(row, []).append(why)

    def mask(self) -> np.ndarray:
        return self._mask

    def texts(self, rows: np.ndarray) -> list[str]:
        return ["; ".join(self._by_row[r]) for r in rows.tolist()]


def text_column(cells: list, reasons: Reasons, column: str) -> pl.Series:
    """UTF-8 cells (bytes or None) as a String column, built from one buffer, not per value."""
    array = string_array(cells)
    try:
        array.validate(full=True)
    except pa.ArrowInvalid:  # Cassandra checks text on write, so this is only defence
        bad = np.fromiter((not _is_utf8(c) for c in cells), dtype=bool, count=len(cells))
        reasons.add(bad, f"{column} is not UTF-8")
        array = string_array([None if b else c for c, b in zip(cells, bad, strict=True)])
    return pl.Series(array)


def string_array(cells: list) -> pa.LargeStringArray:
    n = len(cells)
    validity = None
    try:  # the fast path: no null, so len() works on every cell
        lengths = np.fromiter(map(len, cells), dtype=np.int64, count=n)
    except TypeError:
        nulls = np.fromiter((c is None for c in cells), dtype=bool, count=n)
        cells = [b"" if c is None else c for c in cells]
        lengths = np.fromiter(map(len, cells), dtype=np.int64, count=n)
        validity = pa.py_buffer(np.packbits(~nulls, bitorder="little").tobytes())
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return pa.LargeStringArray.from_buffers(
        n, pa.py_buffer(offsets.tobytes()), pa.py_buffer(b"".join(cells)), validity
    )


def _is_utf8(cell: bytes | None) -> bool:
    try:
        if cell is not None:
            cell.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def fixed_bytes(
    cells: list, width: int, reasons: Reasons, column: str
) -> tuple[np.ndarray, np.ndarray]:
    """Cells of ``width`` bytes as an ``(n, width)`` uint8 array, and where they were null."""
    n = len(cells)
    null = np.zeros(n, dtype=bool)
    if None in cells:
        null = np.fromiter((c is None for c in cells), dtype=bool, count=n)
        cells = [b"\0" * width if c is None else c for c in cells]
    joined = b"".join(cells)
    if len(joined) != n * width:  # a cell of another width: never written by Cassandra
        wrong = np.fromiter((len(c) != width for c in cells), dtype=bool, count=n)
        reasons.add(wrong, f"{column} is not {width} bytes")
        cells = [b"\0" * width if w else c for c, w in zip(cells, wrong, strict=True)]
        joined = b"".join(cells)
    return np.frombuffer(joined, dtype=np.uint8).reshape(n, width), null


def fixed_width(
    cells: list,
    width: int,
    dtype: str,
    reasons: Reasons,
    column: str,
    *,
    null: int | None = None,
) -> np.ndarray:
    """Big-endian numbers of ``width`` bytes as native int64; nulls become ``null``."""
    raw, nulls = fixed_bytes(cells, width, reasons, column)
    values = raw.reshape(-1).view(dtype).astype(np.int64)
    if nulls.any():
        if null is None:
            reasons.add(nulls, f"{column} is null")
            null = 0
        values[nulls] = null
    return values
