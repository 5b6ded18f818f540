"""CBOR payloads (Jackson's ``jackson-cbor`` serializer) as the JSON values they stand for.

Pekko's and Akka's ``jackson-cbor`` serializer writes each event with Jackson's CBOR
generator: an object as a map of text keys (of indefinite length, ``0xbf ... 0xff``), numbers
as CBOR integers and floats, ``java.time`` values as ISO 8601 text (Pekko's default
``WRITE_DATES_AS_TIMESTAMPS = off``). :func:`loads` reads one such item into the Python value
the JSON serializer would have written for the same event, so both read the same way:

* integers of any size (bignum tags 2 and 3) stay exact, ``BigDecimal`` (tag 4, a decimal
  fraction) becomes its exact decimal text (an :func:`orjson.Fragment`);
* byte strings become base64 text, as Jackson writes a ``byte[]`` in JSON;
* a map's keys become text; other tags give their content.

What is not CBOR, or holds a number JSON cannot (NaN, infinity), raises :class:`CborError`
with the reason, which the reader puts in the quarantine.

>>> loads(bytes.fromhex("bf656f776e657263626f62ff"))
{'owner': 'bob'}
>>> orjson.dumps(loads(bytes.fromhex("c482211903e8")))  # BigDecimal 10.00: tag 4, [-2, 1000]
b'10.00'
>>> loads(b"\\xff")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
concursus_lab.sources.pekko.cbor.CborError: not CBOR: a break (0xff) where a value should be ...
"""

from __future__ import annotations

import base64
import math
import struct
from decimal import Decimal
from typing import Any

import orjson

#: Deepest nesting read (as :data:`concursus_lab.frame.canonical_json.MAX_DEPTH`).
MAX_DEPTH = 254

_BREAK = object()
_FLOATS = {25: (">e", 2), 26: (">f", 4), 27: (">d", 8)}
_SIMPLE = {20: False, 21: True, 22: None, 23: None}


class CborError(ValueError):
    """A payload that is not one CBOR item of JSON values; the message says why."""


def loads(data: bytes) -> Any:
    """The one CBOR item ``data`` holds, as a JSON-ready Python value."""
    reader = _Reader(data)
    value = reader.item(0)
    if value is _BREAK:
        raise CborError("not CBOR: a break (0xff) where a value should be at byte 0")
    if reader.pos != len(data):
        raise CborError(f"not CBOR: {len(data) - reader.pos} bytes after the item")
    return value


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def _take(self, size: int) -> bytes:
        start, end = self.pos, self.pos + size
        if end > len(self.data):
            raise CborError(f"not CBOR: it ends inside a value (byte {start} of {len(self.data)})")
        self.pos = end
        return self.data[start:end]

    def _argument(self, info: int) -> int:
        if info < 24:
            return info
        if info == 24:
            return self._take(1)[0]
        if info in (25, 26, 27):
            return int.from_bytes(self._take(1 << (info - 24)), "big")
        raise CborError(f"not CBOR: additional information {info} at byte {self.pos - 1}")

    def item(self, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise CborError(f"nested deeper than {MAX_DEPTH} levels")
        at = self.pos
        head = self._take(1)[0]
        major, info = head >> 5, head & 0x1F
        if major == 7:
            return self._simple(info, at)
        if info == 31:
            return self._indefinite(major, depth, at)
        n = self._argument(info)
        if major == 0:
            return n
        if major == 1:
            return -1 - n
        if major == 2:
            return base64.b64encode(self._take(n)).decode()
        if major == 3:
            return self._text(self._take(n))
        if major == 4:
            return [self._value(depth + 1) for _ in range(n)]
        if major == 5:
            return {self._key(depth + 1): self._value(depth + 1) for _ in range(n)}
        return self._tagged(n, depth)

    def _value(self, depth: int) -> Any:
        value = self.item(depth)
        if value is _BREAK:
            raise CborError(
                f"not CBOR: a break (0xff) where a value should be at byte {self.pos - 1}"
            )
        return value

    def _key(self, depth: int) -> str:
        return _as_key(self._value(depth))

    def _simple(self, info: int, at: int) -> Any:
        if info == 31:
            return _BREAK
        if info in _FLOATS:
            code, size = _FLOATS[info]
            (value,) = struct.unpack(code, self._take(size))
            if not math.isfinite(value):
                raise CborError(f"the number {value} at byte {at}, which JSON cannot hold")
            return value
        if info in _SIMPLE:
            return _SIMPLE[info]
        raise CborError(f"not a JSON value: CBOR simple value {info} at byte {at}")

    def _text(self, raw: bytes) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise CborError(f"not UTF-8 text at byte {self.pos - len(raw)}") from None

    def _indefinite(self, major: int, depth: int, at: int) -> Any:
        if major in (2, 3):
            chunks = []
            while (chunk := self.item(depth + 1)) is not _BREAK:
                chunks.append(chunk)
            if major == 3 and all(isinstance(c, str) for c in chunks):
                return "".join(chunks)
            if major == 2 and all(isinstance(c, str) for c in chunks):
                raw = b"".join(base64.b64decode(c) for c in chunks)
                return base64.b64encode(raw).decode()
            raise CborError(f"not CBOR: a chunked string of other items at byte {at}")
        if major == 4:
            items = []
            while (value := self.item(depth + 1)) is not _BREAK:
                items.append(value)
            return items
        if major == 5:
            out = {}
            while (key := self.item(depth + 1)) is not _BREAK:
                out[_as_key(key)] = self._value(depth + 1)
            return out
        raise CborError(f"not CBOR: major type {major} of indefinite length at byte {at}")

    def _tagged(self, tag: int, depth: int) -> Any:
        at = self.pos
        value = self._value(depth + 1)
        if tag in (2, 3):  # bignums
            if not isinstance(value, str):
                raise CborError(f"not CBOR: bignum tag {tag} of no byte string at byte {at}")
            n = int.from_bytes(base64.b64decode(value), "big")
            return n if tag == 2 else -1 - n
        if tag in (4, 5):  # decimal fraction and bigfloat: [exponent, mantissa]
            if not (isinstance(value, list) and len(value) == 2 and all(_is_int(v) for v in value)):
                raise CborError(f"not CBOR: tag {tag} of no [exponent, mantissa] at byte {at}")
            exponent, mantissa = value
            if tag == 5:
                return float(mantissa * 2.0**exponent)
            return orjson.Fragment(_decimal_text(Decimal(mantissa).scaleb(exponent)))
        return value


def _as_key(key: Any) -> str:
    """A map key as JSON object keys are: text (a number or other value as its JSON text)."""
    if isinstance(key, str):
        return key
    return orjson.dumps(key).decode()


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _decimal_text(value: Decimal) -> str:
    """A decimal as JSON number text, as Java's ``BigDecimal.toString`` writes it."""
    text = str(value)
    return text.replace("E+", "E") if "E+" in text else text
