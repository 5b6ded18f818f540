"""The CQL types of any table: a polars type for each, and raw cells decoded a column at a time.

A table of your own shape holds any CQL types. :func:`parse` reads a column's type as the
driver's metadata writes it (``"map<text, int>"``, ``"frozen<address>"``); :func:`dtype` says
which polars type its column becomes; :func:`decode` turns one column of a page's raw cells
(the bytes Cassandra sent, see :mod:`.raw_cells`) into that column:

===========================================  ==============================================
CQL                                          polars
===========================================  ==============================================
``text``, ``varchar``, ``ascii``             String (one Arrow buffer, UTF-8 checked once)
``int``, ``bigint``, ``smallint``,           Int32, Int64, Int16, Int8, Int64 (NumPy, at
``tinyint``, ``counter``                     once)
``float``, ``double``, ``boolean``           Float32, Float64, Boolean (NumPy, at once)
``timestamp``, ``date``, ``time``            Datetime(us, UTC), Date, Time (NumPy, at once)
``uuid``, ``timeuuid``                       String (NumPy, at once)
``blob``                                     Binary
``varint``, ``decimal``                      Int128, Float64 (a double, as a CSV reader
                                             gives): one value at a time
``inet``, ``duration``                       String (``"10.0.0.1"``, ``"1mo2d3ns"``)
collections, tuples, user types, vectors     String: JSON text (a map or user type is an
                                             object, a list, set, tuple or vector an
                                             array), so dotted paths reach into them
===========================================  ==============================================

Only collections and the rarer types are read one value at a time; a cell that cannot be read
sets its row aside with the reason (:class:`~.columns.Reasons`).

>>> column = decode([b"\\x00\\x00\\x00\\x07", None], parse("int"), Reasons(2), "n")
>>> column.to_list()
[7, None]
>>> decode([b"\\x00\\x00\\x00\\x01\\x00\\x00\\x00\\x01a\\x00\\x00\\x00\\x04\\x00\\x00\\x00\\x02"],
...        parse("map<text, int>"), Reasons(1), "m").to_list()
['{"a":2}']
"""

from __future__ import annotations

import datetime as dt
import decimal
import ipaddress
import struct
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import polars as pl

from concursus_lab.exceptions import SourceError
from concursus_lab.frame.schema import TIME
from concursus_lab.frame.timeuuid import uuid_texts
from concursus_lab.sources.cassandra.columns import Reasons, fixed_bytes, text_column


@dataclass(frozen=True)
class CqlType:
    """A parsed CQL type: its name, its arguments (element types; a vector's size is its
    second), and a user type's field names."""

    name: str
    args: tuple[CqlType | int, ...] = ()
    fields: tuple[str, ...] = ()

    def __str__(self) -> str:
        if self.fields:
            return f"{self.name}<{', '.join(self.fields)}>"
        return self.name + (f"<{', '.join(map(str, self.args))}>" if self.args else "")


#: Fixed-width types: (bytes, NumPy big-endian type, polars type).
_FIXED: dict[str, tuple[int, str, pl.DataType]] = {
    "int": (4, ">i4", pl.Int32),
    "bigint": (8, ">i8", pl.Int64),
    "counter": (8, ">i8", pl.Int64),
    "smallint": (2, ">i2", pl.Int16),
    "tinyint": (1, ">i1", pl.Int8),
    "float": (4, ">f4", pl.Float32),
    "double": (8, ">f8", pl.Float64),
    "boolean": (1, ">u1", pl.Boolean),
    "timestamp": (8, ">i8", TIME),
    "date": (4, ">u4", pl.Date),
    "time": (8, ">i8", pl.Time),
}
_TEXT = ("text", "varchar", "ascii")
_OTHER: dict[str, pl.DataType] = {
    "uuid": pl.String,
    "timeuuid": pl.String,
    "blob": pl.Binary,
    "varint": pl.Int128,
    "decimal": pl.Float64,
    "inet": pl.String,
    "duration": pl.String,
}
_COLLECTIONS = ("list", "set", "map", "tuple", "vector", "frozen")
_MAX_MS = (2**63 - 1) // 1000
_EPOCH_DAY = 2**31  # a CQL date is days since 1970-01-01, offset by 2**31


#: A user type's field names and field types (as text), by the type's name.
UserTypes = Callable[[str], tuple[tuple[str, ...], tuple[str, ...]]]


def parse(text: str, user_types: UserTypes | None = None) -> CqlType:
    """A CQL type as metadata writes it; ``user_types(name)`` gives a user type's field names
    and field types (as text)."""
    found, rest = _parse(text.strip(), user_types)
    if rest.strip():
        raise SourceError(f"cannot read the CQL type {text!r}.")
    return found


def _parse(text: str, user_types: Any) -> tuple[CqlType, str]:
    name, sep, rest = _name(text)
    if not sep:
        return _simple(name, user_types), rest
    args: list[CqlType | int] = []
    while True:
        rest = rest.lstrip()
        if rest[:1].isdigit():  # a vector's size
            digits = len(rest) - len(rest.lstrip("0123456789"))
            args.append(int(rest[:digits]))
            rest = rest[digits:]
        else:
            arg, rest = _parse(rest, user_types)
            args.append(arg)
        rest = rest.lstrip()
        if rest[:1] == ",":
            rest = rest[1:]
            continue
        if rest[:1] != ">":
            raise SourceError(f"cannot read the CQL type {text!r}.")
        rest = rest[1:]
        break
    if name == "frozen":  # frozen or not, a value reads the same
        return args[0], rest  # type: ignore[return-value]
    return CqlType(name, tuple(args)), rest


def _name(text: str) -> tuple[str, str, str]:
    end = 0
    quoted = text.startswith('"')
    if quoted:
        end = text.index('"', 1) + 1
    while end < len(text) and text[end] not in "<>, ":
        end += 1
    name = text[:end].strip('"') if quoted else text[:end].lower()
    rest = text[end:].lstrip()
    if rest[:1] == "<":
        return name, "<", rest[1:]
    return name, "", rest


def _simple(name: str, user_types: Any) -> CqlType:
    if name in _FIXED or name in _TEXT or name in _OTHER:
        return CqlType(name)
    if user_types is not None:
        names, types = user_types(name)
        return CqlType("udt", tuple(parse(t, user_types) for t in types), tuple(names))
    raise SourceError(f"the CQL type {name!r} is not one this source reads.")


def dtype(t: CqlType) -> pl.DataType:
    """The polars type a column of ``t`` becomes (see the table in the module docstring)."""
    if t.name in _FIXED:
        return _FIXED[t.name][2]
    if t.name in _TEXT:
        return pl.String
    return _OTHER.get(t.name, pl.String)  # collections, tuples, user types: JSON text


def decode(cells: list, t: CqlType, reasons: Reasons, column: str) -> pl.Series:
    """One column of raw cells (bytes, or None for null) as a polars Series of :func:`dtype`."""
    if t.name in _TEXT:
        return text_column(cells, reasons, column).alias(column)
    if t.name in _FIXED:
        return _fixed(cells, t.name, reasons, column)
    if t.name in ("uuid", "timeuuid"):
        raw, null = fixed_bytes(_empty_as_null(cells), 16, reasons, column)
        return _with_nulls(uuid_texts(raw).alias(column), null)
    if t.name == "blob":
        return pl.Series(column, cells, dtype=pl.Binary)
    read = _value(t)
    values: list = [None] * len(cells)
    for row, cell in enumerate(cells):
        if not cell:
            continue
        try:
            values[row] = read(cell)
        except (ValueError, IndexError, struct.error, UnicodeDecodeError, TypeError):
            reasons.add_one(row, f"{column} cannot be read as {t}")
    if t.name in _OTHER:
        return pl.Series(column, values, dtype=_OTHER[t.name], strict=False)
    texts = [None if v is None else orjson.dumps(v, option=orjson.OPT_NON_STR_KEYS) for v in values]
    return pl.Series(column, texts, dtype=pl.Binary).cast(pl.String)


def _empty_as_null(cells: list) -> list:
    """An empty cell of a non-text type (old Thrift writes make them) reads as null."""
    return [None if c == b"" else c for c in cells] if b"" in cells else cells


def _fixed(cells: list, name: str, reasons: Reasons, column: str) -> pl.Series:
    width, code, kind = _FIXED[name]
    raw, null = fixed_bytes(_empty_as_null(cells), width, reasons, column)
    values = raw.reshape(-1).view(code)
    if name == "boolean":
        series = pl.Series(column, values != 0)
    elif name == "timestamp":
        millis = values.astype(np.int64)
        outside = np.abs(millis) > _MAX_MS
        reasons.add(outside & ~null, f"{column} is out of range")
        null = null | outside
        series = pl.Series(column, np.where(outside, 0, millis) * 1000).cast(TIME)
    elif name == "date":
        days = values.astype(np.int64) - _EPOCH_DAY
        series = pl.Series(column, days.astype(np.int32)).cast(pl.Date)
    elif name == "time":
        series = pl.Series(column, values.astype(np.int64)).cast(pl.Time)
    else:
        series = pl.Series(column, values.astype(code.replace(">", "=")), dtype=kind)
    return _with_nulls(series, null)


def _with_nulls(series: pl.Series, null: np.ndarray) -> pl.Series:
    return series.scatter(np.flatnonzero(null), None) if null.any() else series


# -- one value at a time: the rarer types, and the elements of collections ------------------


def _value(t: CqlType) -> Callable[[bytes], Any]:
    """How one cell of ``t`` becomes a Python value (for JSON, or for a Series)."""
    simple = _SIMPLE.get(t.name)
    if simple is not None:
        return simple
    if t.name in ("list", "set"):
        element = _value(t.args[0])  # type: ignore[arg-type]
        return lambda cell: [None if e is None else element(e) for e in _items(cell)]
    if t.name == "map":
        key, value = _value(t.args[0]), _value(t.args[1])  # type: ignore[arg-type]

        def read_map(cell: bytes) -> dict:
            items = _items(cell, pairs=True)
            return {
                key(k): None if v is None else value(v)
                for k, v in zip(*[iter(items)] * 2, strict=True)
            }

        return read_map
    if t.name in ("tuple", "udt"):
        parts = [_value(a) for a in t.args]  # type: ignore[arg-type]

        def read_fields(cell: bytes) -> Any:
            values = [
                None if e is None else read(e)
                for read, e in zip(parts, _fields(cell, len(parts)), strict=False)
            ]
            return dict(zip(t.fields, values, strict=False)) if t.fields else values

        return read_fields
    if t.name == "vector":
        return _vector(t)
    raise SourceError(f"the CQL type {t} is not one this source reads.")


def _items(cell: bytes, *, pairs: bool = False) -> list[bytes | None]:
    """The elements of a serialised list, set or map (keys and values in turn)."""
    (count,) = struct.unpack_from(">i", cell)
    pos, out = 4, []
    for _ in range(count * (2 if pairs else 1)):
        (size,) = struct.unpack_from(">i", cell, pos)
        pos += 4
        out.append(None if size < 0 else cell[pos : pos + size])
        pos += max(size, 0)
    if pos != len(cell):
        raise ValueError("trailing bytes")
    return out


def _fields(cell: bytes, most: int) -> list[bytes | None]:
    """The fields of a serialised tuple or user type (a value written before a field was
    added to its type has fewer)."""
    pos, out = 0, []
    while pos < len(cell) and len(out) < most:
        (size,) = struct.unpack_from(">i", cell, pos)
        pos += 4
        out.append(None if size < 0 else cell[pos : pos + size])
        pos += max(size, 0)
    return out


def _vector(t: CqlType) -> Callable[[bytes], list]:
    element, size = t.args
    if not isinstance(element, CqlType) or element.name not in _FIXED or not isinstance(size, int):
        raise SourceError(
            f"the CQL type {t} is not one this source reads (vectors of numbers are)."
        )
    code = _FIXED[element.name][1]
    return lambda cell: np.frombuffer(cell, dtype=code, count=size).tolist()


def _timestamp(cell: bytes) -> str:
    (millis,) = struct.unpack(">q", cell)
    at = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=millis)
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _decimal(cell: bytes) -> float:
    (scale,) = struct.unpack_from(">i", cell)
    return float(decimal.Decimal(int.from_bytes(cell[4:], "big", signed=True)).scaleb(-scale))


def _duration(cell: bytes) -> str:
    parts, pos = [], 0
    for unit in ("mo", "d", "ns"):
        value = shift = 0
        while True:
            b = cell[pos]
            pos += 1
            value |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                break
        parts.append(f"{(value >> 1) ^ -(value & 1)}{unit}")
    return "".join(parts)


def _date(cell: bytes) -> str:
    (days,) = struct.unpack(">I", cell)
    return (dt.date(1970, 1, 1) + dt.timedelta(days=days - _EPOCH_DAY)).isoformat()


def _time(cell: bytes) -> str:
    (nanos,) = struct.unpack(">q", cell)
    seconds, nanos = divmod(nanos, 1_000_000_000)
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}:{seconds:02d}.{nanos:09d}"


def _unpack(code: str) -> Callable[[bytes], Any]:
    return lambda cell: struct.unpack(code, cell)[0]


_SIMPLE: dict[str, Callable[[bytes], Any]] = {
    **dict.fromkeys(_TEXT, lambda cell: cell.decode("utf-8")),
    "int": _unpack(">i"),
    "bigint": _unpack(">q"),
    "counter": _unpack(">q"),
    "smallint": _unpack(">h"),
    "tinyint": _unpack(">b"),
    "float": _unpack(">f"),
    "double": _unpack(">d"),
    "boolean": lambda cell: cell != b"\0",
    "timestamp": _timestamp,
    "date": _date,
    "time": _time,
    "uuid": lambda cell: str(uuid.UUID(bytes=cell)),
    "timeuuid": lambda cell: str(uuid.UUID(bytes=cell)),
    "blob": lambda cell: "0x" + cell.hex(),
    "varint": lambda cell: int.from_bytes(cell, "big", signed=True),
    "decimal": _decimal,
    "inet": lambda cell: str(ipaddress.ip_address(cell)),
    "duration": _duration,
}


# -- the driver's public path -----------------------------------------------------------------


def as_sent(rows: list[tuple], types: list[Any], protocol_version: int) -> list[tuple]:
    """Rows of the driver's Python values back as the bytes Cassandra sent, by the driver's
    own serialisers (``types``: its cqltypes classes, one per column)."""
    if not rows:
        return []
    columns = [
        [None if value is None else kind.serialize(value, protocol_version) for value in column]
        for kind, column in zip(types, zip(*rows, strict=True), strict=True)
    ]
    return list(zip(*columns, strict=True))
