"""Protobuf bodies decoded into columns: one C parse per schema group, then a column per field.

The library is Google's ``protobuf`` package on its upb backend (C), the maintained one. A
group's bodies are joined as the wire form of one *batch* message, ``message Batch { repeated
<Message> items = 1; }`` (each body prefixed by its field tag and length, which is exactly how
protobuf writes a repeated message), and parsed in one call; each field then becomes a column
with one pass over the parsed messages. When the batch does not parse (a bad body), every body
is parsed on its own to name the bad ones, and the rest parsed together again.

Columns: numbers, text, bytes and booleans as themselves; an enum as its value's name; a
``google.protobuf.Timestamp`` as a UTC time; another message as a struct (null when unset); a
repeated field as a list; a map as a list of ``{key, value}``. A field with presence (a
message, ``optional``, a oneof member) is null when unset; a proto3 scalar without presence is
its default, as protobuf reads it.

Well-known types (``google/protobuf/timestamp.proto``, ...) are brought by this package:
confluent-kafka registers no reference for them.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from operator import attrgetter, methodcaller
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from concursus_lab.common.optional import require
from concursus_lab.exceptions import MissingDependency, SchemaError

_TIMESTAMP = "google.protobuf.Timestamp"
_WELL_KNOWN = (
    "timestamp_pb2",
    "duration_pb2",
    "wrappers_pb2",
    "struct_pb2",
    "any_pb2",
    "empty_pb2",
    "field_mask_pb2",
)


def _pb() -> Any:
    return require("google.protobuf", needed_by="Protobuf topics", extra="registry")


def descriptor_set_files(raw: bytes, what: str) -> tuple[bytes, ...]:
    """The files of a serialized FileDescriptorSet (``protoc --descriptor_set_out``)."""
    _pb()
    from google.protobuf import descriptor_pb2

    found = descriptor_pb2.FileDescriptorSet()
    try:
        found.ParseFromString(raw)
    except Exception as exc:
        raise SchemaError(f"{what} is not a Protobuf descriptor set ({exc}).") from None
    if not found.file:
        raise SchemaError(f"{what} is a descriptor set with no file in it.")
    return tuple(f.SerializeToString() for f in found.file)


def compile_proto(text: str, what: str) -> bytes:
    """A serialized FileDescriptorProto of .proto source, compiled by ``protoc``."""
    protoc = shutil.which("protoc")
    if protoc is None:
        raise MissingDependency(
            f"{what} is .proto source, which needs `protoc` to compile (Debian: `apt-get install "
            "protobuf-compiler`); or give a descriptor set: protoc --include_imports "
            "--descriptor_set_out=schema.desc schema.proto."
        )
    _pb()
    from google.protobuf import descriptor_pb2

    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "schema.proto"
        source.write_text(text, encoding="utf-8")
        out = Path(folder) / "schema.desc"
        done = subprocess.run(
            [protoc, f"-I{folder}", f"--descriptor_set_out={out}", str(source)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise SchemaError(f"{what} does not compile: {done.stderr.strip()[:500]}")
        found = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    return found.file[-1].SerializeToString()


class Files:
    """A descriptor pool of one schema's files (imports first), well-known types added."""

    def __init__(self, files: Sequence[bytes]):
        _pb()
        from google.protobuf import descriptor_pb2, descriptor_pool

        self.pool = descriptor_pool.DescriptorPool()
        protos = [descriptor_pb2.FileDescriptorProto.FromString(f) for f in files]
        have = {p.name for p in protos}
        for dependency in {d for p in protos for d in p.dependency} - have:
            well_known = _well_known(dependency)
            if well_known is not None:
                self.pool.Add(well_known)
        for proto in protos:
            try:
                self.pool.Add(proto)
            except Exception as exc:  # a clash or a missing import
                raise SchemaError(
                    f"the Protobuf file {proto.name!r} cannot be loaded: {exc}"
                ) from None
        self.file = self.pool.FindFileByName(protos[-1].name)

    def message(self, path: Sequence[int]) -> Any:
        """The message the indexes name (the first into the file, the rest into nested)."""
        messages: Sequence[Any] = list(self.file.message_types_by_name.values())
        message = None
        for index in path or (-1,):
            if not 0 <= index < len(messages):  # never Python's negative indexing
                raise IndexError(f"message index {list(path)} is not in {self.file.name!r}")
            message = messages[index]
            messages = message.nested_types
        return message

    def find(self, full_name: str) -> Any | None:
        try:
            return self.pool.FindMessageTypeByName(full_name)
        except KeyError:
            return None


def _well_known(name: str) -> Any:
    from google.protobuf import descriptor_pb2

    for module in _WELL_KNOWN:
        pb2 = __import__(f"google.protobuf.{module}", fromlist=[module])
        if pb2.DESCRIPTOR.name == name:
            proto = descriptor_pb2.FileDescriptorProto()
            pb2.DESCRIPTOR.CopyToProto(proto)
            return proto
    return None


def decode(bodies: Sequence[bytes], message: Any) -> tuple[pl.DataFrame, list[tuple[int, str]]]:
    """Bodies of one message type as a frame (a column per field); ``(index, reason)`` for
    bodies that do not parse."""
    batch = _batch_class(message)
    items = _parse(batch, bodies)
    bad: list[tuple[int, str]] = []
    if items is None:
        cls = _message_class(message)
        good = []
        for i, body in enumerate(bodies):
            try:
                cls.FromString(body)
            except Exception as exc:
                bad.append((i, f"the Protobuf body does not parse as {message.full_name}: {exc}"))
            else:
                good.append(body)
        items = _parse(batch, good) or []
    return _columns(list(items), message), bad


def _parse(batch: Any, bodies: Sequence[bytes]) -> Any:
    """``bodies`` as the items of one batch message, parsed at once (None: some body is bad)."""
    prefixes = _PREFIXES
    parts: list[bytes] = [b""] * (2 * len(bodies))
    parts[1::2] = bodies
    parts[0::2] = [
        prefixes[n] if n < len(prefixes) else b"\x0a" + _varint(n) for n in map(len, bodies)
    ]
    try:
        return batch.FromString(b"".join(parts)).items
    except Exception:
        return None


def _varint(n: int) -> bytes:
    """``n`` as a protobuf varint."""
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


#: A batch item's tag and length, for the common lengths.
_PREFIXES = [b"\x0a" + _varint(n) for n in range(4096)]


def _message_class(message: Any) -> Any:
    from google.protobuf import message_factory

    return message_factory.GetMessageClass(message)


_BATCHES: dict[int, tuple[Any, Any]] = {}


def _batch_class(message: Any) -> Any:
    """``message Batch { repeated <message> items = 1; }`` in the message's own pool."""
    known = _BATCHES.get(id(message))
    if known is not None and known[0] is message:
        return known[1]
    from google.protobuf import descriptor_pb2

    proto = descriptor_pb2.FileDescriptorProto(
        name=f"concursus_lab_batch/{message.full_name}.proto",
        package="concursus_lab_batch",
        syntax="proto3",
        dependency=[message.file.name],
    )
    batch = proto.message_type.add(name="Batch_" + message.full_name.replace(".", "_"))
    batch.field.add(
        name="items",
        number=1,
        type=descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE,
        label=descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED,
        type_name="." + message.full_name,
    )
    pool = message.file.pool
    with contextlib.suppress(Exception):  # added before, by an earlier read of the same pool
        pool.Add(proto)
    cls = _message_class(pool.FindMessageTypeByName(f"concursus_lab_batch.{batch.name}"))
    _BATCHES[id(message)] = (message, cls)
    return cls


# -- columns -----------------------------------------------------------------------------------

_SCALARS = {
    1: pl.Float64,  # double
    2: pl.Float32,  # float
    3: pl.Int64,  # int64
    4: pl.UInt64,  # uint64
    5: pl.Int32,  # int32
    6: pl.UInt64,  # fixed64
    7: pl.UInt32,  # fixed32
    8: pl.Boolean,
    9: pl.String,
    12: pl.Binary,
    13: pl.UInt32,  # uint32
    15: pl.Int32,  # sfixed32
    16: pl.Int64,  # sfixed64
    17: pl.Int32,  # sint32
    18: pl.Int64,  # sint64
}
_ENUM, _MESSAGE = 14, 11


def _columns(items: list, message: Any) -> pl.DataFrame:
    return pl.DataFrame([_column(items, f) for f in message.fields], height=len(items))


def _column(items: list, field: Any) -> pl.Series:
    name = field.name
    if field.type == _MESSAGE and field.message_type.GetOptions().map_entry:
        entry = field.message_type
        key, value = entry.fields_by_name["key"], entry.fields_by_name["value"]
        pairs = [[(k, m[k]) for k in m] for m in map(attrgetter(name), items)]
        keys = [[k for k, _ in p] for p in pairs]
        values = [[v for _, v in p] for p in pairs]
        return _lists(name, keys, values, key, value)
    if _is_repeated(field):
        lists = [list(v) for v in map(attrgetter(name), items)]
        flat = [v for row in lists for v in row]
        inner = _values(name, flat, field, flat)
        return _split(inner, [len(row) for row in lists]).alias(name)
    series = _values(name, items, field, None)
    if field.has_presence:
        present = pl.Series(list(map(methodcaller("HasField", name), items)), dtype=pl.Boolean)
        if not present.all():
            series = series.to_frame().select(pl.when(present).then(pl.col(name))).to_series()
    return series


def _is_repeated(field: Any) -> bool:
    is_repeated = getattr(field, "is_repeated", None)
    if is_repeated is not None:
        return bool(is_repeated)
    return field.label == field.LABEL_REPEATED


def _values(name: str, items: list, field: Any, values: list | None) -> pl.Series:
    """The field ``name`` of each of ``items`` (or ``values`` themselves, when given)."""
    if field.type == _MESSAGE and field.message_type.full_name == _TIMESTAMP:
        seconds = (
            list(map(attrgetter(f"{name}.seconds"), items))
            if values is None
            else [v.seconds for v in values]
        )
        nanos = (
            list(map(attrgetter(f"{name}.nanos"), items))
            if values is None
            else [v.nanos for v in values]
        )
        micros = np.array(seconds, dtype=np.int64) * 1_000_000 + np.array(nanos, np.int64) // 1000
        return pl.Series(name, micros, dtype=pl.Int64).cast(pl.Datetime("us", "UTC"))
    if values is None:
        values = list(map(attrgetter(name), items))
    if field.type == _ENUM:
        names = {v.number: v.name for v in field.enum_type.values}
        return pl.Series(name, [names.get(v, str(v)) for v in values], dtype=pl.String)
    if field.type == _MESSAGE:
        inner = _columns(values, field.message_type)
        if inner.width == 0:
            return pl.Series(name, [{}] * len(values))
        return inner.to_struct(name)
    return pl.Series(name, values, dtype=_SCALARS.get(field.type))


def _split(inner: pl.Series, lengths: list[int]) -> pl.Series:
    """``inner``'s values cut into consecutive lists of ``lengths`` (through Arrow's offsets)."""
    import numpy as np
    import pyarrow as pa

    offsets = np.zeros(len(lengths) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    lists = pa.ListArray.from_arrays(pa.array(offsets), inner.to_arrow())
    return pl.Series(inner.name, pl.from_arrow(lists), dtype=pl.List(inner.dtype))


def _lists(name: str, keys: list, values: list, key: Any, value: Any) -> pl.Series:
    flat = [k for row in keys for k in row]
    flat_keys = _values("key", flat, key, flat)
    flat = [v for row in values for v in row]
    flat_values = _values("value", flat, value, flat)
    entries = pl.DataFrame([flat_keys, flat_values]).to_struct("entry")
    return _split(entries, [len(row) for row in keys]).alias(name)
