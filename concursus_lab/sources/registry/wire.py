"""The framings schema-registry serializers put around a value, split off every value at once.

Confluent's serializers (and Apicurio's in Confluent mode) frame each value as::

    0x00, schema id (4 bytes, big-endian), body            the classic wire format
    0x01, schema GUID (16 bytes), body                     the newer GUID format
    body, with header __value_schema_id = 0x00 + id        the id in a header (or 0x01 + GUID)

and a Protobuf body starts with the message indexes: zig-zag varints, a count and then the
path to the message in its file (a lone ``0x00`` for the file's first message). A header, when
a record has one, wins over the value's first bytes, as Confluent's deserializer reads them.

:func:`split` reads the framing of a whole batch with NumPy (the values joined once, their
first bytes gathered by offset), so a million values cost no Python loop over the common
case. What is framed by none of these is named, value by value, with the reason.

>>> framed = split([b"\\x00\\x00\\x00\\x00\\x07\\x02o1", b"{}", None, b"\\x00\\x00"])
>>> framed.refs, framed.starts.tolist()
([7, None, None, None], [5, 0, 0, 0])
>>> framed.reasons[1]
'not framed by a schema registry: the value starts with 0x7b, not 0x00 (schema id) or 0x01 (GUID)'
>>> message_indexes(b"\\x00\\x00\\x00\\x00\\x02\\x02\\x02\\x0a", 5)
((1,), 7)
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MAGIC_ID, MAGIC_GUID = 0, 1
#: Written after every value in an Avro block (see :mod:`~.avro`): a cut or overlong body
#: shows as a row whose sentinel is not this.
SENTINEL = b"\xc3\x5a\x96\x1e"
ID_FRAME, GUID_FRAME = 5, 17
VALUE_HEADER = "__value_schema_id"
#: What names a schema: its id (int) or its GUID (str).
Ref = int | str


@dataclass
class Framing:
    """Each value's schema id (``ids``, -1 where it has none or a GUID) and GUID (``guids``,
    index -> GUID), where its body starts, and the reason for each value with no schema
    (``reasons``, index -> text)."""

    ids: np.ndarray
    guids: dict[int, str]
    starts: np.ndarray
    reasons: dict[int, str]
    #: Every value followed by :data:`SENTINEL`, joined (None when some value is None): what
    #: the framing was read from, and the data of an Avro block of them all.
    block: bytes | None = None

    @property
    def refs(self) -> list[Ref | None]:
        """Each value's schema id or GUID (None: no schema)."""
        refs: list[Ref | None] = [None if i < 0 else i for i in self.ids.tolist()]
        for i, guid in self.guids.items():
            refs[i] = guid
        return refs


def split(
    values: Sequence[bytes | None],
    headers: Sequence[tuple[tuple[str, bytes | None], ...]] | None = None,
) -> Framing:
    """The framing of every value; see the module docstring."""
    n = len(values)
    block = None
    if None in values:
        lengths = np.fromiter((-1 if v is None else len(v) for v in values), np.int64, count=n)
        joined = np.frombuffer(b"".join(v for v in values if v), dtype=np.uint8)
        sizes = np.maximum(lengths, 0)
        offsets = np.cumsum(sizes) - sizes
    else:
        lengths = np.fromiter(map(len, values), np.int64, count=n)
        parts: list[bytes] = [SENTINEL] * (2 * n)
        parts[0::2] = values  # type: ignore[assignment]
        block = b"".join(parts)
        joined = np.frombuffer(block, dtype=np.uint8)
        sizes = lengths + len(SENTINEL)
        offsets = np.cumsum(sizes) - sizes
    framed = lengths >= ID_FRAME
    framed[framed] = joined[offsets[framed]] == MAGIC_ID
    ids = np.full(n, -1, dtype=np.int64)
    if framed.any():
        at = offsets[framed]
        head = joined[at[:, None] + np.arange(1, ID_FRAME)].astype(np.int64)
        ids[framed] = (head[:, 0] << 24) | (head[:, 1] << 16) | (head[:, 2] << 8) | head[:, 3]
    starts = np.where(framed, ID_FRAME, 0)
    guids: dict[int, str] = {}
    reasons: dict[int, str] = {}
    for i in np.flatnonzero(~framed).tolist():
        ref, why = _odd(values[i])
        if ref is None:
            reasons[i] = why
        else:
            guids[i] = ref
            starts[i] = GUID_FRAME
    if headers is not None and any(headers):
        _from_headers(headers, ids, guids, starts, reasons)
    return Framing(ids, guids, starts, reasons, block)


def _odd(value: bytes | None) -> tuple[Ref | None, str]:
    """A value that is not ``0x00`` + id: a GUID frame, or why it has no schema."""
    if value is None:
        return None, "no value (a tombstone)"
    if not value:
        return None, "an empty value"
    if value[0] == MAGIC_GUID and len(value) >= GUID_FRAME:
        return str(uuid.UUID(bytes=value[1:GUID_FRAME])), ""
    if value[0] in (MAGIC_ID, MAGIC_GUID):
        size = ID_FRAME if value[0] == MAGIC_ID else GUID_FRAME
        return None, (
            f"truncated: {len(value)} byte(s), shorter than the {size}-byte frame of a "
            f"schema {'id' if value[0] == MAGIC_ID else 'GUID'}"
        )
    return None, (
        f"not framed by a schema registry: the value starts with 0x{value[0]:02x}, not 0x00 "
        "(schema id) or 0x01 (GUID)"
    )


def _from_headers(headers, ids, guids, starts, reasons) -> None:
    """Records whose ``__value_schema_id`` header names the schema: the value is all body."""
    for i, pairs in enumerate(headers):
        if not pairs:
            continue
        found = [value for name, value in pairs if name == VALUE_HEADER]
        if not found:
            continue
        ref = header_ref(found[-1])
        reasons.pop(i, None)
        guids.pop(i, None)
        ids[i], starts[i] = -1, 0
        if isinstance(ref, tuple):
            reasons[i] = ref[0]
        elif isinstance(ref, str):
            guids[i] = ref
        else:
            ids[i] = ref


def header_ref(raw: bytes | None) -> Ref | tuple[str]:
    """The schema a ``__value_schema_id`` header names, or ``(reason,)``.

    >>> header_ref(b"\\x00\\x00\\x00\\x00\\x04"), header_ref(b"\\x02")
    (4, ('the __value_schema_id header 02 is neither 0x00 + 4-byte id nor 0x01 + 16-byte GUID',))
    """
    if raw is not None and len(raw) == ID_FRAME and raw[0] == MAGIC_ID:
        return int.from_bytes(raw[1:], "big")
    if raw is not None and len(raw) == GUID_FRAME and raw[0] == MAGIC_GUID:
        return str(uuid.UUID(bytes=raw[1:]))
    shown = "null" if raw is None else raw[:20].hex()
    return (
        f"the {VALUE_HEADER} header {shown} is neither 0x00 + 4-byte id nor 0x01 + 16-byte GUID",
    )


def message_indexes(value: bytes, start: int) -> tuple[tuple[int, ...], int]:
    """A Protobuf body's message indexes (the path to its message in the file) and where the
    message itself starts. Raises ValueError when they run past the value."""
    count, at = _zigzag(value, start)
    if count == 0:
        return (0,), at
    if count < 0 or count > 64:
        raise ValueError(f"message index count {count} is not a count")
    path = []
    for _ in range(count):
        index, at = _zigzag(value, at)
        path.append(index)
    return tuple(path), at


def _zigzag(value: bytes, at: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if at >= len(value) or shift > 63:
            raise ValueError("the message indexes run past the end of the value")
        b = value[at]
        at += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return (result >> 1) ^ -(result & 1), at
        shift += 7
