"""Kafka record batches (message format v2), parsed a whole fetch at a time.

kafka-python turns every record of a fetch into two Python objects, reading each varint in
Python; for small JSON events that costs more than decoding the JSON. Here a fetch's
batches are checked (CRC-32C, in C) and decompressed one batch at a time, a short Python loop
finds where each record starts, and every other field of every record (timestamp and
offset deltas, key and value lengths) is read with NumPy at once. What comes out is one
:class:`Records` per fetch: the values, their offsets and timestamps, and (when asked, for
topics read through a mapping) their keys and headers.

The layout parsed is Kafka's own, stable since 0.11 (``DefaultRecordBatch``)::

    RecordBatch: baseOffset int64, length int32, partitionLeaderEpoch int32, magic int8 (2),
                 crc uint32, attributes int16, lastOffsetDelta int32, baseTimestamp int64,
                 maxTimestamp int64, producerId int64, producerEpoch int16,
                 baseSequence int32, records [Record]
    Record:      length varint, attributes int8, timestampDelta varlong,
                 offsetDelta varint, key bytes, value bytes, headers [Header]

Older formats (magic 0 and 1) raise :class:`Unsupported`, and kafka-python reads them
record by record.

:func:`concursus_lab.sources.kafka.private.read_whole_fetches` makes a kafka-python
consumer's ``poll()`` return one :class:`Records` per partition fetch; :func:`chunks` turns
any ``poll()`` answer (whole fetches or kafka-python's record objects) into
``(partition, Records)`` pairs. Nothing here touches kafka-python's private API.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

_HEADER = struct.Struct(">qiibIhiqqqhii")
_HEADER_SIZE = _HEADER.size  # 61
_LOG_OVERHEAD = 12  # baseOffset + length
_MAGIC_AT = 16
_CRC_FROM = 21  # the CRC covers attributes to the end of the batch
_CODEC_MASK = 0x07
_LOG_APPEND_TIME = 0x08
_CONTROL = 0x20
_CODECS = {1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}
_PACKAGES = {"snappy": "python-snappy", "lz4": "lz4", "zstd": "zstandard"}


class Unsupported(Exception):
    """The fetch holds a record format older than v2."""


class CorruptRecords(Exception):
    """A batch failed its CRC check or its records do not add up."""


@dataclass
class Records:
    """The records of one fetch of one partition, in offset order."""

    values: list[bytes | None]
    offsets: np.ndarray  # int64
    timestamps: np.ndarray  # int64, epoch milliseconds
    next_offset: int  # where the next fetch starts: after the last complete batch
    bytes: int = 0
    #: kafka-python skips records whose ``.offset`` is before the fetch position (see
    #: :mod:`concursus_lab.sources.kafka.private`): the first offset, or where it would be.
    offset: int = field(default=0)
    #: Each record's key (None: no key), when the fetch was parsed ``with_keys``.
    keys: list[bytes | None] | None = None
    #: Each record's headers as ``(name, value)`` pairs, when parsed ``with_keys``; None
    #: also when no record of the fetch has any.
    headers: list[tuple[tuple[str, bytes | None], ...]] | None = None

    def __len__(self) -> int:
        return len(self.values)

    @classmethod
    def empty(cls, next_offset: int) -> Records:
        none = np.zeros(0, dtype=np.int64)
        return cls([], none, none.copy(), next_offset, 0, next_offset)


def parse(
    buffer: bytes | bytearray | memoryview,
    *,
    fetch_offset: int = 0,
    check_crcs: bool = True,
    with_keys: bool = False,
) -> Records:
    """Every record of the complete v2 batches in ``buffer``, from ``fetch_offset`` on.

    Control batches (transaction markers) are skipped but still move ``next_offset`` on.
    A batch cut short at the end of the buffer (a fetch size limit) is left for the next
    fetch. ``with_keys`` also reads each record's key and headers (a mapping may name them).
    """
    import crc32c

    view = memoryview(buffer).cast("B")
    size = len(view)
    pos = 0
    next_offset = fetch_offset
    bodies: list[bytes] = []
    batches: list[tuple[int, int, int, int, int]] = []  # base, first ts, max ts, log-append, n
    while pos + _LOG_OVERHEAD <= size:
        base_offset, length = struct.unpack_from(">qi", view, pos)
        end = pos + _LOG_OVERHEAD + length
        if end > size or pos + _MAGIC_AT >= size:
            break  # cut short by the fetch size: the next fetch starts here
        if view[pos + _MAGIC_AT] != 2:
            raise Unsupported(f"record format v{view[pos + _MAGIC_AT]} at offset {base_offset}")
        if length < _HEADER_SIZE - _LOG_OVERHEAD:
            raise CorruptRecords(f"the record batch at offset {base_offset} is too short")
        (_, _, _, _, crc, attributes, last_delta, first_ts, max_ts, _, _, _, count) = (
            _HEADER.unpack_from(view, pos)
        )
        if check_crcs and crc32c.crc32c(view[pos + _CRC_FROM : end]) != crc:
            raise CorruptRecords(f"the record batch at offset {base_offset} fails its CRC check")
        next_offset = max(next_offset, base_offset + last_delta + 1)
        if not attributes & _CONTROL and count > 0 and base_offset + last_delta >= fetch_offset:
            body = view[pos + _HEADER_SIZE : end]
            codec = attributes & _CODEC_MASK
            bodies.append(_decompress(codec, body, base_offset) if codec else bytes(body))
            batches.append(
                (base_offset, first_ts, max_ts, int(bool(attributes & _LOG_APPEND_TIME)), count)
            )
        pos = end
    if not batches:
        return Records.empty(next_offset)
    data = b"".join(bodies)
    starts, lengths, batch_of = _record_bounds(data, [len(b) for b in bodies], batches)
    fields = _fields(data, starts, lengths, batch_of, np.array(batches, dtype=np.int64), with_keys)
    values, offsets, timestamps, keys, headers = fields
    if offsets.size and offsets[0] < fetch_offset:  # a batch that began before the position
        keep = np.flatnonzero(offsets >= fetch_offset).tolist()
        values = [values[i] for i in keep]
        keys = None if keys is None else [keys[i] for i in keep]
        headers = None if headers is None else [headers[i] for i in keep]
        offsets, timestamps = offsets[keep], timestamps[keep]
    first = int(offsets[0]) if offsets.size else next_offset
    return Records(values, offsets, timestamps, next_offset, pos, first, keys, headers)


def _decompress(codec: int, body: memoryview, base_offset: int) -> bytes:
    from kafka import codec as codecs

    name = _CODECS.get(codec)
    if name is None:
        raise CorruptRecords(f"unknown compression type {codec} at offset {base_offset}")
    if not getattr(codecs, f"has_{name}")():
        from concursus_lab.exceptions import MissingDependency

        raise MissingDependency(
            f"the records at offset {base_offset} are {name}-compressed; install "
            f"`pip install {_PACKAGES.get(name, name)}` to read them."
        )
    decode = getattr(codecs, f"{name}_decode")
    return bytes(decode(body if name == "gzip" else body.tobytes()))


def _record_bounds(
    data: bytes, body_sizes: list[int], batches: list[tuple[int, int, int, int, int]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where each record's body starts, its length, and its batch: the one sequential step
    (each record's length says where the next begins)."""
    starts: list[int] = []
    lengths: list[int] = []
    add_start, add_length = starts.append, lengths.append
    pos = 0
    for body_size, batch in zip(body_sizes, batches, strict=True):
        end = pos + body_size
        try:
            for _ in range(batch[4]):
                b = data[pos]
                if b < 0x80:
                    v = b
                    pos += 1
                else:
                    b1 = data[pos + 1]
                    if b1 < 0x80:
                        v = (b & 0x7F) | (b1 << 7)
                        pos += 2
                    else:
                        v, pos = _varint(data, pos)
                add_start(pos)
                length = (v >> 1) ^ -(v & 1)
                add_length(length)
                pos += length
        except IndexError:
            pos = end + 1
        if pos != end:
            raise CorruptRecords(
                f"the records of the batch at offset {batch[0]} do not fill it exactly"
            )
    counts = np.array([b[4] for b in batches], dtype=np.int64)
    batch_of = np.repeat(np.arange(len(batches), dtype=np.int64), counts)
    return np.array(starts, dtype=np.int64), np.array(lengths, dtype=np.int64), batch_of


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7


def _fields(
    data: bytes,
    starts: np.ndarray,
    lengths: np.ndarray,
    batch_of: np.ndarray,
    batches: np.ndarray,
    with_keys: bool = False,
) -> tuple[list[bytes | None], np.ndarray, np.ndarray, list | None, list | None]:
    raw = np.frombuffer(data, dtype=np.uint8)
    pos = starts + 1  # skip the record's attributes byte
    ts_delta, size = _varints(raw, pos, 10)
    pos = pos + size
    offset_delta, size = _varints(raw, pos, 5)
    pos = pos + size
    key_len, size = _varints(raw, pos, 5)
    key_start = pos + size
    pos = key_start + np.maximum(key_len, 0)
    value_len, size = _varints(raw, pos, 5)
    value_start = pos + size
    value_end = value_start + np.maximum(value_len, 0)
    ends = starts + lengths
    if (value_end > ends).any() or (lengths < 0).any():
        raise CorruptRecords("a record's key or value runs past the end of the record")
    base, first_ts, max_ts, log_append = (batches[batch_of, c] for c in range(4))
    offsets = base + offset_delta
    timestamps = np.where(log_append == 1, max_ts, first_ts + ts_delta)
    values = _slices(data, value_start, value_len)
    if not with_keys:
        return values, offsets, timestamps, None, None
    keys = _slices(data, key_start, key_len)
    return values, offsets, timestamps, keys, _headers(data, raw, value_end, ends)


def _slices(data: bytes, start: np.ndarray, length: np.ndarray) -> list[bytes | None]:
    """``data[start:start + length]`` for each record; None where the length is -1 (null)."""
    end = start + np.maximum(length, 0)
    out: list[bytes | None] = [data[a:b] for a, b in zip(start.tolist(), end.tolist(), strict=True)]
    if (length < 0).any():
        for k in np.flatnonzero(length < 0).tolist():
            out[k] = None
    return out


def _headers(data: bytes, raw: np.ndarray, at: np.ndarray, ends: np.ndarray) -> list | None:
    """Each record's headers, read after its value: None when no record has any (the common
    case, found with one vectorised read of the counts), else ``(name, value)`` pairs."""
    if not len(at):
        return None
    counts, size = _varints(raw, np.minimum(at, len(raw) - 1), 5)
    counts = np.where(at < ends, counts, 0)
    if not counts.any():
        return None
    out: list[tuple] = [()] * len(at)
    for k in np.flatnonzero(counts > 0).tolist():
        pos, pairs = int(at[k] + size[k]), []
        try:
            for _ in range(int(counts[k])):
                n, pos = _signed_varint(data, pos)
                name = data[pos : pos + n].decode("utf-8", "replace")
                pos += n
                n, pos = _signed_varint(data, pos)
                pairs.append((name, None if n < 0 else data[pos : pos + n]))
                pos += max(n, 0)
        except IndexError:
            raise CorruptRecords("a record's headers run past the end of the record") from None
        if pos > ends[k]:
            raise CorruptRecords("a record's headers run past the end of the record")
        out[k] = tuple(pairs)
    return out


def _signed_varint(data: bytes, pos: int) -> tuple[int, int]:
    value, pos = _varint(data, pos)
    return (value >> 1) ^ -(value & 1), pos


_SHIFTS = (7 * np.arange(10, dtype=np.uint64)).astype(np.uint64)


def _varints(raw: np.ndarray, pos: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Zig-zag varints at each position: (values, sizes in bytes)."""
    index = pos[:, None] + np.arange(width)
    np.minimum(index, len(raw) - 1, out=index)
    window = raw[index]
    last = window < 0x80
    if not last.any(axis=1).all():
        raise CorruptRecords("a varint in a record runs on for too long")
    size = last.argmax(axis=1) + 1
    used = np.arange(width) < size[:, None]
    parts = (window & 0x7F).astype(np.uint64) << _SHIFTS[:width]
    value = np.where(used, parts, np.uint64(0)).sum(axis=1, dtype=np.uint64)
    signed = (value >> np.uint64(1)).astype(np.int64) ^ -(value & np.uint64(1)).astype(np.int64)
    return signed, size


# -- kafka-python's record objects (its public path) -------------------------------------


def from_consumer_records(records: list[Any], next_offset: int) -> Records:
    """kafka-python's record objects (``ConsumerRecord``) as one :class:`Records`, keys and
    headers included."""
    offsets = np.fromiter((r.offset for r in records), dtype=np.int64, count=len(records))
    timestamps = np.fromiter((r.timestamp for r in records), dtype=np.int64, count=len(records))
    first = int(offsets[0]) if len(records) else next_offset
    keys = [r.key for r in records]
    headers = [tuple(r.headers or ()) for r in records]
    return Records(
        [r.value for r in records],
        offsets,
        timestamps,
        next_offset,
        0,
        first,
        keys,
        headers if any(headers) else None,
    )


def chunks(polled: Mapping[Any, list[Any]]) -> list[tuple[Any, Records]]:
    """``poll()``'s answer as (partition, Records) pairs, whichever way it was read."""
    out = []
    for tp, items in polled.items():
        if not items:
            continue
        if all(isinstance(i, Records) for i in items):
            out.extend((tp, i) for i in items)
        else:
            last = items[-1].offset + 1
            out.append((tp, from_consumer_records(list(items), last)))
    return out


def head(records: Records, n: int) -> Records:
    return _piece(records, 0, n, int(records.offsets[n - 1]) + 1 if n else records.offset)


def _piece(records: Records, start: int, stop: int, next_offset: int) -> Records:
    """Records ``start`` to ``stop`` of ``records``, keys and headers too."""
    keys, headers = records.keys, records.headers
    return Records(
        records.values[start:stop],
        records.offsets[start:stop],
        records.timestamps[start:stop],
        next_offset,
        0,
        records.offset if start == 0 else int(records.offsets[start]),
        None if keys is None else keys[start:stop],
        None if headers is None else headers[start:stop],
    )


def split(chunks: list[tuple[Any, Records]], size: int) -> Iterator[list[tuple[Any, Records]]]:
    """Group chunks into lists of at most ``size`` records (cutting chunks where needed)."""
    group: list[tuple[Any, Records]] = []
    count = 0
    for tp, records in chunks:
        start = 0
        while start < len(records):
            take = min(size - count, len(records) - start)
            piece = (
                records
                if (start == 0 and take == len(records))
                else _piece(records, start, start + take, 0)
            )
            group.append((tp, piece))
            count += take
            start += take
            if count >= size:
                yield group
                group, count = [], 0
    if group:
        yield group
