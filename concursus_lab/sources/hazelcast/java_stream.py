"""Java's object serialization stream, read in full grammar and written for one shape.

Hazelcast stores a key that is a plain ``java.io.Serializable`` object as the bytes of
``ObjectOutputStream.writeObject`` (its serializer type id -100). Concursus's idempotency filter
keys its map with such an object, so reading a live filter means reading that stream. The
protocol is the one in the *Java Object Serialization Specification*, chapter 6: this module
reads objects, class descriptors, strings, nulls, back references and block data, enough for
any object graph made of strings, boxed and primitive fields and externalizable values such as
``java.time.Instant`` (whose ``writeReplace`` writes a ``java.time.Ser`` holding a type byte, the
epoch second and the nanosecond). Arrays, enums and custom ``writeObject`` data of other shapes
raise :class:`JavaStreamError` naming what was met, so a caller can quarantine the key.

:func:`write_object` writes a flat object of string and ``Instant`` fields byte for byte as
``ObjectOutputStream`` does (distinct strings, fields in Java's order: by name).
"""

from __future__ import annotations

import datetime as dt
import struct
from dataclasses import dataclass, field
from typing import Any

MAGIC = b"\xac\xed\x00\x05"
_NULL, _REFERENCE, _CLASSDESC, _OBJECT, _STRING = 0x70, 0x71, 0x72, 0x73, 0x74
_BLOCKDATA, _ENDBLOCKDATA, _LONGSTRING, _BLOCKDATALONG = 0x77, 0x78, 0x7C, 0x7A
_BASE_HANDLE = 0x7E0000
_SC_WRITE_METHOD, _SC_SERIALIZABLE, _SC_EXTERNALIZABLE, _SC_BLOCK_DATA = 0x01, 0x02, 0x04, 0x08
_PRIMITIVES = {
    "B": (">b", 1),
    "C": (">H", 2),
    "D": (">d", 8),
    "F": (">f", 4),
    "I": (">i", 4),
    "J": (">q", 8),
    "S": (">h", 2),
    "Z": (">?", 1),
}
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_INSTANT_CLASS, _INSTANT_SUID, _INSTANT_TYPE = "java.time.Ser", 0x955D84BA1B2248B2, 2


class JavaStreamError(ValueError):
    """The bytes are not a Java serialization stream of a shape this module reads."""


@dataclass
class ClassDesc:
    """One class descriptor: its name, ``serialVersionUID``, flags and fields in stream order."""

    name: str
    suid: int
    flags: int
    fields: list[tuple[str, str]] = field(default_factory=list)  # (type code, field name)
    parent: ClassDesc | None = None


@dataclass
class JavaObject:
    """An object read from the stream: its class name and its fields by name."""

    class_name: str
    fields: dict[str, Any]


def read_object(data: bytes) -> Any:
    """The one object that the stream ``data`` holds (a :class:`JavaObject`, a string, None,
    or a UTC datetime for a ``java.time.Instant``).

    >>> read_object(bytes.fromhex("aced0005740002" + "6869"))
    'hi'
    """
    if not data.startswith(MAGIC):
        raise JavaStreamError(f"not a Java serialization stream (starts {data[:4].hex()})")
    reader = _Reader(data)
    value = reader.content()
    if reader.at != len(data):
        raise JavaStreamError(f"{len(data) - reader.at} bytes left after the object")
    return value


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, len(MAGIC)
        self.handles: list[Any] = []

    def take(self, size: int) -> bytes:
        if self.at + size > len(self.data):
            raise JavaStreamError(f"the stream ends inside a value at byte {self.at}")
        chunk = self.data[self.at : self.at + size]
        self.at += size
        return chunk

    def unpack(self, fmt: str, size: int) -> Any:
        return struct.unpack(fmt, self.take(size))[0]

    def utf(self, long: bool = False) -> str:
        size = self.unpack(">Q", 8) if long else self.unpack(">H", 2)
        return _from_modified_utf8(self.take(size))

    def content(self) -> Any:
        tag = self.unpack(">B", 1)
        if tag == _NULL:
            return None
        if tag == _REFERENCE:
            handle = self.unpack(">I", 4) - _BASE_HANDLE
            if not 0 <= handle < len(self.handles):
                raise JavaStreamError(f"a back reference to handle {handle} that does not exist")
            return self.handles[handle]
        if tag in (_STRING, _LONGSTRING):
            text = self.utf(long=tag == _LONGSTRING)
            self.handles.append(text)
            return text
        if tag == _CLASSDESC:
            return self.class_desc_body()
        if tag == _OBJECT:
            return self.object_body()
        raise JavaStreamError(f"stream element 0x{tag:02x} at byte {self.at - 1} is not read here")

    def class_desc(self) -> ClassDesc | None:
        desc = self.content()
        if desc is not None and not isinstance(desc, ClassDesc):
            raise JavaStreamError(f"expected a class descriptor, found {desc!r}")
        return desc

    def class_desc_body(self) -> ClassDesc:
        desc = ClassDesc(self.utf(), self.unpack(">q", 8), 0)
        self.handles.append(desc)
        desc.flags = self.unpack(">B", 1)
        for _ in range(self.unpack(">H", 2)):
            code = chr(self.unpack(">B", 1))
            name = self.utf()
            if code in "L[":
                self.content()  # the field's type as a class-name string; not needed
            elif code not in _PRIMITIVES:
                raise JavaStreamError(f"field {name!r} has unknown type code {code!r}")
            desc.fields.append((code, name))
        self.skip_annotations()
        desc.parent = self.class_desc()
        return desc

    def skip_annotations(self) -> None:
        while self.data[self.at : self.at + 1] != bytes([_ENDBLOCKDATA]):
            if self.at >= len(self.data):
                raise JavaStreamError("the stream ends inside a class annotation")
            self.content()
        self.at += 1

    def block_data(self) -> bytes:
        """Block data up to the closing TC_ENDBLOCKDATA, joined."""
        chunks = []
        while True:
            tag = self.unpack(">B", 1)
            if tag == _ENDBLOCKDATA:
                return b"".join(chunks)
            if tag == _BLOCKDATA:
                chunks.append(self.take(self.unpack(">B", 1)))
            elif tag == _BLOCKDATALONG:
                chunks.append(self.take(self.unpack(">I", 4)))
            else:
                raise JavaStreamError(f"custom object data 0x{tag:02x} is not read here")

    def object_body(self) -> Any:
        desc = self.class_desc()
        if desc is None:
            raise JavaStreamError("an object without a class descriptor")
        slot = len(self.handles)
        self.handles.append(None)
        if desc.flags & _SC_EXTERNALIZABLE:
            if not desc.flags & _SC_BLOCK_DATA:
                raise JavaStreamError(f"{desc.name} is externalized in the old protocol")
            value: Any = _external(desc, self.block_data())
        else:
            chain = []
            while desc is not None:
                chain.append(desc)
                desc = desc.parent
            values: dict[str, Any] = {}
            for part in reversed(chain):  # a superclass's fields come first
                for code, name in part.fields:
                    if code in _PRIMITIVES:
                        values[name] = self.unpack(*_PRIMITIVES[code])
                    else:
                        values[name] = self.content()
                if part.flags & _SC_WRITE_METHOD:
                    self.block_data()  # what a custom writeObject wrote after its fields
            value = JavaObject(chain[0].name, values)
        self.handles[slot] = value
        return value


def _external(desc: ClassDesc, data: bytes) -> Any:
    if desc.name == _INSTANT_CLASS and data[:1] == bytes([_INSTANT_TYPE]) and len(data) == 13:
        seconds, nanos = struct.unpack(">qi", data[1:])
        # Python keeps microseconds: nanoseconds below that are dropped (Concursus's are 0).
        return _EPOCH + dt.timedelta(seconds=seconds, microseconds=nanos // 1000)
    raise JavaStreamError(f"externalized {desc.name} ({data[:1].hex()}...) is not read here")


def write_object(class_name: str, suid: int, fields: dict[str, str | dt.datetime]) -> bytes:
    """The stream ``ObjectOutputStream.writeObject`` writes for an object of ``class_name``
    whose only fields are strings and ``Instant``\\ s (``fields`` by name; every string value is
    written in full, as for distinct ``String`` objects; field type names are shared, as Java's
    are).

    >>> write_object("X", 1, {"a": "hi"}).hex()
    'aced0005737200015800000000000000010200014c0001617400124c6a6176612f6c616e672f537472696e673b78707400026869'
    """
    out = _Writer()
    names = sorted(fields)  # Java's order for fields of object type: by name
    out.put(bytes([_OBJECT, _CLASSDESC]) + _utf(class_name) + struct.pack(">q", suid))
    out.handle()  # the class descriptor
    out.put(struct.pack(">BH", _SC_SERIALIZABLE, len(names)))
    for name in names:
        out.put(b"L" + _utf(name))
        out.shared(
            _INSTANT_SIGNATURE if isinstance(fields[name], dt.datetime) else _STRING_SIGNATURE
        )
    out.put(bytes([_ENDBLOCKDATA, _NULL]))
    out.handle()  # the object
    for name in names:
        value = fields[name]
        if isinstance(value, dt.datetime):
            out.instant(value)
        else:
            out.handle()
            out.put(bytes([_STRING]) + _utf(value))
    return bytes(out.buffer)


_STRING_SIGNATURE, _INSTANT_SIGNATURE = "Ljava/lang/String;", "Ljava/time/Instant;"


class _Writer:
    def __init__(self) -> None:
        self.buffer = bytearray(MAGIC)
        self.handles = 0
        self.strings: dict[str, int] = {}

    def put(self, chunk: bytes) -> None:
        self.buffer.extend(chunk)

    def handle(self) -> int:
        self.handles += 1
        return self.handles - 1

    def shared(self, text: str) -> None:
        if text in self.strings:
            self.put(struct.pack(">BI", _REFERENCE, _BASE_HANDLE + self.strings[text]))
        else:
            self.strings[text] = self.handle()
            self.put(bytes([_STRING]) + _utf(text))

    def instant(self, moment: dt.datetime) -> None:
        """A ``java.time.Instant``, as its ``writeReplace`` stand-in ``java.time.Ser``."""
        if moment.tzinfo is None:
            raise JavaStreamError(f"an Instant needs a timezone-aware time, got {moment!r}")
        since = moment - _EPOCH
        seconds = since.days * 86_400 + since.seconds
        self.put(bytes([_OBJECT, _CLASSDESC]) + _utf(_INSTANT_CLASS))
        flags = _SC_EXTERNALIZABLE | _SC_BLOCK_DATA
        self.put(struct.pack(">qBH", _INSTANT_SUID - (1 << 64), flags, 0))
        self.put(bytes([_ENDBLOCKDATA, _NULL]))
        self.handle()  # its class descriptor
        self.handle()  # the object
        body = struct.pack(">Bqi", _INSTANT_TYPE, seconds, since.microseconds * 1000)
        self.put(bytes([_BLOCKDATA, len(body)]) + body + bytes([_ENDBLOCKDATA]))


def _from_modified_utf8(raw: bytes) -> str:
    """Java's "modified UTF-8": NUL is C0 80 and a character beyond U+FFFF is its two UTF-16
    surrogates, three bytes each."""
    text = raw.replace(b"\xc0\x80", b"\x00").decode("utf-8", errors="surrogatepass")
    return text.encode("utf-16-le", errors="surrogatepass").decode("utf-16-le", "surrogatepass")


def _to_modified_utf8(text: str) -> bytes:
    units = text.encode("utf-16-le", errors="surrogatepass")
    halves = "".join(chr(a | b << 8) for a, b in zip(units[::2], units[1::2], strict=True))
    return halves.encode("utf-8", errors="surrogatepass").replace(b"\x00", b"\xc0\x80")


def _utf(text: str) -> bytes:
    raw = _to_modified_utf8(text)
    if len(raw) > 0xFFFF:
        raise JavaStreamError(f"a string of {len(raw):,} bytes is longer than Java's short UTF")
    return struct.pack(">H", len(raw)) + raw
