"""Journal payloads by serializer id: the event's fields as one canonical JSON object, or why not.

Every row of a Pekko (or Akka) journal holds its event as the bytes one serializer wrote, and
that serializer's id (``ser_id``). These are the ones concursus-lab reads without the
application's classes, with the ids their ``reference.conf`` declares (the same in Pekko 1.x
and Akka 2.6.6 and later):

====  ======================  ==============================================================
id    serializer              the event's parameters
====  ======================  ==============================================================
31    ``jackson-json``        the JSON object itself; gzip (``1f 8b``) or LZ4 (Pekko's
                              ``87 d9 6d f6`` header) compressed payloads are unpacked first
32    ``jackson-cbor-264``    the same: JSON, as Akka 2.6.4 and earlier wrote ``jackson-cbor``
33    ``jackson-cbor``        the CBOR item, read as the JSON it stands for (:mod:`.cbor`)
20    ``primitive-string``    ``{"value": "<the text>"}``
4/21  ``bytes``,              ``{"value": "<base64>"}``
      ``primitive-bytestring``
18/19 ``primitive-long/int``  ``{"value": n}`` (little-endian, as Pekko's serializers write)
35    ``primitive-boolean``   ``{"value": true}``
====  ======================  ==============================================================

Java serialization (id 1) can only be read by a JVM holding the event's class, and a
serializer of the application's own (any other id) by that application: such rows go to the
quarantine with their id and manifest, never a guess. So does a payload that is not what its
serializer writes (not JSON, not one JSON object, not CBOR).

:func:`decode` works on whole columns: JSON payloads are parsed with orjson and written back
canonically in one call (:func:`~concursus_lab.frame.canonical_json.dumps_objects`), those
whose numbers need their exact text (a decimal point outside strings) one by one.

>>> out = decode([31, 20, 1], [b'{"b":1,"a":"x","at":"2026-03-01T09:00:00Z"}', b"hi", b"\\xac"],
...              Fields(read={"event_time": ("at",)}))
>>> out.parameters.to_list()
['{"a":"x","at":"2026-03-01T09:00:00Z","b":1}', '{"value":"hi"}', None]
>>> out.values["event_time"]
['2026-03-01T09:00:00Z', None, None]
>>> out.reasons
{2: 'serialized by Java serialization (serializer 1): only a JVM with the class can read it'}
"""

from __future__ import annotations

import base64
import dataclasses
import gzip
import operator
import uuid
import zlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import orjson
import polars as pl

from concursus_lab.frame import canonical_json
from concursus_lab.sources.pekko import cbor

JACKSON_JSON, JACKSON_CBOR_264, JACKSON_CBOR = 31, 32, 33
JAVA = 1
_JACKSON = (JACKSON_JSON, JACKSON_CBOR_264, JACKSON_CBOR)

#: Serializer id -> its name in ``reference.conf`` (for messages and docs).
NAMES: dict[int, str] = {
    1: "java",
    4: "bytes",
    18: "primitive-long",
    19: "primitive-int",
    20: "primitive-string",
    21: "primitive-bytestring",
    31: "jackson-json",
    32: "jackson-cbor-264",
    33: "jackson-cbor",
    35: "primitive-boolean",
}

_GZIP = b"\x1f\x8b"
_LZ4 = b"\x87\xd9\x6d\xf6"  # JacksonSerializer.LZ4Meta.LZ4_MAGIC, then the length, then a block
#: A number whose text orjson would rewrite (:data:`canonical_json.RISKY`: a fraction or an
#: exponent, 19 digits or more, a negative zero), outside strings. In JSON such a number
#: follows ``:``, ``,`` or ``[`` and ends before ``,``, ``}`` or ``]`` (whitespace aside);
#: the ISO time in almost every Jackson event (``"...T09:07:04.492Z"``) does not, so it is
#: not sent the careful way. Text in a string that looks so (``"at 1:1.5]"``) only is.
RISKY_NUMBER = (
    r"[:,\[]\s*(?:-?[0-9]+(?:\.[0-9]+)?[eE][+-]?[0-9]+|-?[0-9]+\.[0-9]+|-?[0-9]{19,}|-0)"
    r"\s*[,}\]]"
)


@dataclasses.dataclass(frozen=True)
class Fields:
    """Where in each event's fields the parameters are (a path of keys; ``()``: the whole
    event), and the fields to read besides, as text (name -> path: the event time, a stream
    id)."""

    parameters: tuple[str, ...] = ()
    read: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Decoded:
    """Per row: the parameters (a String column of canonical JSON object text), each field
    read besides as text (a JSON string's text, a number's exact digits; None where the event
    has none), and why a row has no parameters (row -> reason)."""

    parameters: pl.Series
    values: dict[str, list[str | None]]
    reasons: dict[int, str]


def decode(
    ser_ids: Sequence[int], payloads: Sequence[bytes | None], fields: Fields | None = None
) -> Decoded:
    """Each payload's parameters and the fields ``fields`` reads (see :class:`Decoded`)."""
    fields = fields or Fields()
    n = len(payloads)
    values: list[Any] = [None] * n
    reasons: dict[int, str] = {}
    if _plain_json(ser_ids, payloads):  # the common journal: Jackson JSON, nothing compressed
        _parse_json(range(n), payloads, ser_ids, values, reasons)  # type: ignore[arg-type]
        return _fields(values, reasons, fields, ser_ids)
    rows: list[int] = []  # JSON payloads, parsed together
    texts: list[bytes] = []
    for row, (ser_id, raw) in enumerate(zip(ser_ids, payloads, strict=True)):
        if raw is None:
            reasons[row] = "no event: the payload is null"
            continue
        try:
            if ser_id in _JACKSON:
                data = unpack(raw)
                if ser_id == JACKSON_CBOR:
                    values[row] = cbor.loads(data)
                else:
                    rows.append(row)
                    texts.append(data)
            elif ser_id in _PLAIN:
                values[row] = _PLAIN[ser_id](raw)
            else:
                reasons[row] = _unreadable(ser_id)
        except ValueError as why:
            reasons[row] = f"{_serializer(ser_id)} payload is {why}"
    _parse_json(rows, texts, [ser_ids[r] for r in rows], values, reasons)
    return _fields(values, reasons, fields, ser_ids)


def _plain_json(ser_ids: Sequence[int], payloads: Sequence[bytes | None]) -> bool:
    """True when every payload is Jackson JSON text (no null, nothing compressed): one pass
    in C over the whole page instead of a look at each row."""
    if set(ser_ids) - {JACKSON_JSON, JACKSON_CBOR_264} or None in payloads:
        return False
    firsts = set(map(operator.itemgetter(slice(0, 1)), payloads))
    return not firsts & {_GZIP[:1], _LZ4[:1], b""}


def _serializer(ser_id: int) -> str:
    return f"the {NAMES.get(ser_id, 'unknown')} (serializer {ser_id})"


def _unreadable(ser_id: int) -> str:
    if ser_id == JAVA:
        return (
            "serialized by Java serialization (serializer 1): only a JVM with the class can read it"
        )
    return (
        f"serializer {ser_id} is not one concursus-lab reads (it reads Jackson JSON and CBOR "
        "and Pekko's plain string, bytes and number serializers): only the application that "
        "registered it can read this payload"
    )


def _parse_json(
    rows: Sequence[int], raw: Sequence[bytes], ids: Sequence[int], values: list, reasons: dict
) -> None:
    """JSON payloads (at ``rows``) parsed; those whose numbers need their exact text go the
    exact way (a decimal point or exponent outside strings: orjson would rewrite it)."""
    if not raw:
        return
    column = pl.Series(raw, dtype=pl.Binary).cast(pl.String, strict=False)
    risky = column.str.contains(RISKY_NUMBER)
    exact = np.flatnonzero(risky.fill_null(True).to_numpy())
    try:
        parsed = list(map(orjson.loads, raw))  # in C; a bad payload sends all the careful way
    except orjson.JSONDecodeError:
        exact = np.arange(len(raw))
        parsed = [None] * len(raw)
    for k in exact.tolist():
        try:
            parsed[k] = canonical_json.exact_loads(raw[k])
        except (ValueError, canonical_json.NotCanonical) as why:
            text = str(why)
            if not text.startswith(("not ", "nested")):
                text = f"not valid JSON ({text})"
            reasons[rows[k]] = f"{_serializer(ids[k])} payload is {text}"
            parsed[k] = None
    if len(raw) == len(values):
        values[:] = parsed
    else:
        for row, value in zip(rows, parsed, strict=True):
            values[row] = value


def _fields(values: list, reasons: dict, fields: Fields, ser_ids: Sequence[int]) -> Decoded:
    """The parameters and the fields read out of each event's value, written canonically."""
    n = len(values)
    if not reasons and set(map(type, values)) == {dict}:  # all objects: columns at once, in C
        rows = list(range(n))
        objects = values
    else:
        rows = []
        for row, value in enumerate(values):
            if row in reasons:
                continue
            if type(value) is not dict:
                reasons[row] = (
                    f"{_serializer(ser_ids[row])} payload is {canonical_json.kind_name(value)}, "
                    "not an object of the event's fields"
                )
                continue
            rows.append(row)
        objects = [values[row] for row in rows]
    read = {name: _texts(objects, path, rows, n) for name, path in fields.read.items()}
    if fields.parameters:
        objects = [_at(o, fields.parameters) for o in objects]
        bad = [k for k, o in enumerate(objects) if type(o) is not dict]
        shown = ".".join(fields.parameters)
        for k in bad:
            what = "no field" if objects[k] is None else canonical_json.kind_name(objects[k])
            reasons[rows[k]] = f"the event's {shown!r} is {what}, not an object of parameters"
        if bad:
            keep = sorted(set(range(len(rows))) - set(bad))
            rows, objects = [rows[k] for k in keep], [objects[k] for k in keep]
    return Decoded(_written(objects, rows, n, reasons), read, reasons)


def _written(objects: list[dict], rows: list[int], n: int, reasons: dict) -> pl.Series:
    """Each object as canonical JSON text, at its row (null elsewhere)."""
    texts = _dumps_apart(objects)
    if texts is None:  # something orjson cannot write alone (a big integer): the careful way
        too_deep: dict[int, str] = {}
        written = canonical_json.dumps_objects(objects, too_deep)
        texts = pl.Series([], dtype=pl.String) if written is None else written
        if too_deep:
            for k, why in too_deep.items():
                reasons[rows[k]] = why.replace("`parameters`", "the event")
            texts = texts.scatter(list(too_deep), None)
    if len(rows) == n:
        return texts.alias("parameters")
    out = pl.Series("parameters", [None] * n, dtype=pl.String)
    return out.scatter(rows, texts) if rows else out


def _dumps_apart(objects: list[dict]) -> pl.Series | None:
    """Each object written as orjson writes it with sorted keys, from one ``dumps`` of them
    all: between every two a marker string no event holds (random, of control characters), cut
    at again with ``bytes.split``. Some times faster than a ``dumps`` per object, whose call
    costs more than the writing. None when orjson cannot write them."""
    if not objects:
        return pl.Series([], dtype=pl.String)
    mark = "\x00\x01" + uuid.uuid4().hex
    items: list[Any] = [mark] * (2 * len(objects) - 1)
    items[0::2] = objects
    try:
        text = orjson.dumps(items, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return None
    parts = text[1:-1].split(b"," + orjson.dumps(mark) + b",")
    if len(parts) != len(objects):  # cannot be, unless an event held the marker
        return None
    return pl.Series(parts, dtype=pl.Binary).cast(pl.String)


def _texts(objects: list[dict], path: tuple[str, ...], rows: list[int], n: int) -> list:
    """The value at ``path`` of each object, as text, at its row."""
    if len(path) == 1:
        found = list(map(operator.methodcaller("get", path[0]), objects))
    else:
        found = [_at(o, path) for o in objects]
    if not set(map(type, found)) <= {str, type(None)}:
        found = list(map(_text, found))
    if len(rows) == n:
        return found
    out: list[str | None] = [None] * n
    for row, value in zip(rows, found, strict=True):
        out[row] = value
    return out


def _at(value: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if type(value) is not dict:
            return None
        value = value.get(key)
    return value


def _text(value: Any) -> str | None:
    """A field's JSON value as text: a string as it is, a number as its exact digits."""
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value).decode()  # a number exactly (a Fragment as written)


def unpack(data: bytes) -> bytes:
    """A Jackson payload as written before compression: gzip and Pekko's LZ4 unpacked."""
    if data[:2] == _GZIP:
        try:
            return gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(f"not gzip, though it starts as gzip does ({exc})") from None
    if data[:4] == _LZ4 and len(data) >= 8:
        return lz4_block(data[8:], int.from_bytes(data[4:8], "big"))
    return data


def lz4_block(block: bytes, size: int) -> bytes:
    """One raw LZ4 block (as lz4-java's compressors write) of ``size`` bytes, unpacked."""
    out = bytearray()
    pos, end = 0, len(block)
    try:
        while pos < end:
            token = block[pos]
            pos += 1
            literals = token >> 4
            if literals == 15:
                while True:
                    more = block[pos]
                    pos += 1
                    literals += more
                    if more != 255:
                        break
            out += block[pos : pos + literals]
            pos += literals
            if pos >= end:
                break
            offset = block[pos] | (block[pos + 1] << 8)
            pos += 2
            length = token & 15
            if length == 15:
                while True:
                    more = block[pos]
                    pos += 1
                    length += more
                    if more != 255:
                        break
            length += 4
            if offset == 0 or offset > len(out):
                raise ValueError("not LZ4: a match before the start")
            start = len(out) - offset
            for i in range(length):  # a match may overlap what it copies
                out.append(out[start + i])
    except IndexError:
        raise ValueError("not LZ4: it ends inside a sequence") from None
    if len(out) != size:
        raise ValueError(f"not LZ4: {len(out)} bytes unpacked where the header says {size}")
    return bytes(out)


def _little(width: int) -> Callable[[bytes], dict]:
    def read(raw: bytes) -> dict:
        if len(raw) != width:
            raise ValueError(f"{len(raw)} bytes, not {width}")
        return {"value": int.from_bytes(raw, "little", signed=True)}

    return read


def _boolean(raw: bytes) -> dict:
    if raw not in (b"\x00", b"\x01"):
        raise ValueError(f"the bytes {raw[:4].hex()}, not 00 or 01")
    return {"value": raw == b"\x01"}


def _string(raw: bytes) -> dict:
    try:
        return {"value": raw.decode("utf-8")}
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None


def _bytes(raw: bytes) -> dict:
    return {"value": base64.b64encode(raw).decode()}


_PLAIN: dict[int, Callable[[bytes], dict]] = {
    4: _bytes,
    18: _little(8),
    19: _little(4),
    20: _string,
    21: _bytes,
    35: _boolean,
}

__all__ = ["NAMES", "Decoded", "Fields", "decode", "lz4_block", "unpack"]
