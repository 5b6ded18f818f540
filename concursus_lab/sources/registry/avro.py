"""Avro bodies of one writer schema decoded in one columnar call, then resolved onto the reader's.

polars reads Avro object-container files in Rust. A schema group's framed values become one
such file: a header holding a *wrapper* schema, and one block of all the values. The wrapper
is a record of the framing bytes (a ``fixed`` the size of the frame, so the values need not be
sliced), the writer schema's record, and a 4-byte ``fixed`` sentinel that is written after
every value::

    record __concursus_lab_frame { fixed(5) __frame; <writer> __value; fixed(4) __end; }

A value that is cut short, or longer than its schema says, moves every later field off its
place, so its row's sentinel is not the sentinel: such groups are checked value by value with
fastavro (which must consume each body exactly) and the bad values quarantined, the rest read
again in one call. What polars cannot read is rewritten to the same bytes in a form it can:
an ``enum`` as its index (``int``; the symbol is put back after), a ``map`` as an array of
``{key, value}`` records. A schema with unions of several non-null branches is decoded by
fastavro value by value (correct, slower).

Resolution (polars does none): each writer group is decoded with its own schema, then its
columns are resolved onto the reader schema as Avro's rules say: fields matched by name or
alias, fields the writer lacks filled with the reader's default, fields the reader lacks
dropped, numbers promoted (int -> long -> float -> double, string <-> bytes).

>>> import io, fastavro
>>> v1 = {"type": "record", "name": "Order", "fields": [{"name": "id", "type": "string"}]}
>>> v2 = {"type": "record", "name": "Order", "fields": [{"name": "id", "type": "string"},
...       {"name": "note", "type": "string", "default": "-"}]}
>>> def framed(schema_id, schema, record):
...     out = io.BytesIO(); fastavro.schemaless_writer(out, fastavro.parse_schema(schema), record)
...     return b"\\x00" + schema_id.to_bytes(4, "big") + out.getvalue()
>>> values = [framed(1, v1, {"id": "o1"}), framed(1, v1, {"id": "o2"}) + b"??"]
>>> frame, bad = decode(values, 5, v1, reader=v2)
>>> frame.rows(), bad
([('o1', '-')], [(1, 'the Avro body does not match its schema: 2 byte(s) left after the record')])
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from typing import Any

import polars as pl

from concursus_lab.common.optional import require
from concursus_lab.sources.registry.wire import SENTINEL

_SYNC = bytes(range(16))
_VALUE, _END, _FRAME = "__value", "__end", "__frame"
_PRIMITIVE = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}
_PROMOTE = {
    ("int", "long"),
    ("int", "float"),
    ("int", "double"),
    ("long", "float"),
    ("long", "double"),
    ("float", "double"),
    ("string", "bytes"),
    ("bytes", "string"),
}


class Unresolvable(Exception):
    """A writer schema the reader schema cannot read; the message says which field."""


def decode(
    values: Sequence[bytes],
    start: int,
    writer: Any,
    *,
    reader: Any = None,
    block: bytes | None = None,
) -> tuple[pl.DataFrame, list[tuple[int, str]]]:
    """The Avro bodies (each after ``start`` framing bytes) of one writer schema as a frame in
    the reader's columns (the writer's when no reader); ``(index, reason)`` for bad bodies.
    ``block``: the values already joined, each followed by the sentinel (saves a copy)."""
    bad: list[tuple[int, str]] = []
    keep = list(range(len(values)))
    frame = None
    if _polars_reads(writer):
        frame = _bulk(values, start, writer, block)
        if frame is None:  # some body is bad: find which, read the rest at once
            bad = _check(values, start, writer)
            wrong = {i for i, _ in bad}
            keep = [i for i in keep if i not in wrong]
            frame = _bulk([values[i] for i in keep], start, writer)
            if frame is None:  # pragma: no cover - fastavro and polars disagree
                raise Unresolvable("polars could not read bodies that fastavro reads")
    else:
        frame, bad = _one_by_one(values, start, writer)
    if reader is not None:
        frame = resolve(frame, writer, reader)
    return frame, bad


# -- the bulk read -----------------------------------------------------------------------------


def _bulk(
    values: Sequence[bytes], start: int, writer: Any, block: bytes | None = None
) -> pl.DataFrame | None:
    """One container block of every value; None when a sentinel is off (a bad body)."""
    rewritten, fixes = _readable(writer, {}, None)
    fields = [{"name": _VALUE, "type": rewritten}, _fixed(_END, "__concursus_lab_end", 4)]
    if start:
        fields.insert(0, _fixed(_FRAME, "__concursus_lab_prefix", start))
    wrapper = {"type": "record", "name": "__concursus_lab_frame", "fields": fields}
    if block is None:
        block = SENTINEL.join(values) + SENTINEL if values else b""
    header = _map({"avro.schema": json.dumps(wrapper).encode(), "avro.codec": b"null"})
    parts = [b"Obj\x01", header, _SYNC]
    if values:
        parts += [_long(len(values)), _long(len(block)), block, _SYNC]
    try:
        read = pl.read_avro(io.BytesIO(b"".join(parts)), columns=[_VALUE, _END])
    except BaseException as exc:  # polars raises ComputeError, or panics, on a bad body
        if isinstance(exc, KeyboardInterrupt | SystemExit | MemoryError):
            raise
        return None
    if read.height != len(values):
        return None
    if not read.select((pl.col(_END) == pl.lit(SENTINEL, pl.Binary)).all()).item():
        return None
    value = read[_VALUE]
    frame = value.struct.unnest() if isinstance(value.dtype, pl.Struct) else value.to_frame("value")
    return frame.with_columns(fix(pl.col(name)).alias(name) for name, fix in fixes.items())


def _fixed(name: str, type_name: str, size: int) -> dict:
    return {"name": name, "type": {"type": "fixed", "name": type_name, "size": size}}


def _long(n: int) -> bytes:
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _map(entries: dict[str, bytes]) -> bytes:
    out = _long(len(entries))
    for key, value in entries.items():
        out += _long(len(key)) + key.encode() + _long(len(value)) + value
    return out + b"\x00"


def _fullname(schema: dict, namespace: str | None) -> tuple[str, str | None]:
    name = schema["name"]
    if "." in name:
        return name, name.rsplit(".", 1)[0]
    ns = schema.get("namespace", namespace)
    return (f"{ns}.{name}" if ns else name), ns


def _readable(schema: Any, names: dict, namespace: str | None) -> tuple[Any, dict]:
    """``schema`` rewritten for polars (enums as int, maps as arrays of entries), and for the
    top-level fields that changed, an expression that puts the values back."""
    rewritten = _rewrite(schema, names, namespace)
    fixes: dict = {}
    top = _deref(schema, names, namespace)
    if isinstance(top, dict) and top.get("type") == "record":
        _, ns = _fullname(top, namespace)
        for f in top["fields"]:
            fix = _fix_of(f["type"], names, ns)
            if fix is not None:
                fixes[f["name"]] = fix
    return rewritten, fixes


def _deref(schema: Any, names: dict, namespace: str | None) -> Any:
    if isinstance(schema, str) and schema not in _PRIMITIVE:
        full = schema if "." in schema or not namespace else f"{namespace}.{schema}"
        return names.get(full, names.get(schema, schema))
    return schema


def _rewrite(schema: Any, names: dict, namespace: str | None) -> Any:
    if isinstance(schema, list):
        return [_rewrite(s, names, namespace) for s in schema]
    if isinstance(schema, str):
        found = _deref(schema, names, namespace)
        return "int" if isinstance(found, dict) and found.get("type") == "enum" else schema
    kind = schema.get("type")
    if kind in ("record", "error", "enum", "fixed"):
        full, ns = _fullname(schema, namespace)
        names[full] = schema
        if kind == "enum":
            return "int"
        if kind in ("record", "error"):
            fields = [{**f, "type": _rewrite(f["type"], names, ns)} for f in schema["fields"]]
            for f in fields:
                f.pop("default", None)  # defaults are the reader's business, not the writer's
            return {**schema, "fields": fields}
        return schema
    if kind == "array":
        return {**schema, "items": _rewrite(schema["items"], names, namespace)}
    if kind == "map":
        entry = {
            "type": "record",
            "name": f"__concursus_lab_entry{len(names)}",
            "fields": [
                {"name": "key", "type": "string"},
                {"name": "value", "type": _rewrite(schema["values"], names, namespace)},
            ],
        }
        names[entry["name"]] = entry
        return {"type": "array", "items": entry}
    return schema


def _fix_of(schema: Any, names: dict, namespace: str | None):
    """A function of an expression that turns enum indexes back into symbols (None: nothing to
    turn), through unions, arrays, maps and records."""
    schema = _deref(schema, names, namespace)
    if isinstance(schema, list):
        branches = [s for s in schema if s != "null"]
        return _fix_of(branches[0], names, namespace) if len(branches) == 1 else None
    if not isinstance(schema, dict):
        return None
    kind = schema["type"]
    if kind == "enum":
        symbols = schema["symbols"]
        return lambda e: e.replace_strict(
            list(range(len(symbols))), symbols, default=None, return_dtype=pl.String
        )
    if kind == "array":
        inner = _fix_of(schema["items"], names, namespace)
        return None if inner is None else (lambda e: e.list.eval(inner(pl.element())))
    if kind == "map":
        inner = _fix_of(schema["values"], names, namespace)
        if inner is None:
            return None
        return lambda e: e.list.eval(pl.element().struct.with_fields(inner(pl.field("value"))))
    if kind in ("record", "error"):
        _, ns = _fullname(schema, namespace)
        inner = {f["name"]: _fix_of(f["type"], names, ns) for f in schema["fields"]}
        inner = {k: v for k, v in inner.items() if v is not None}
        if not inner:
            return None
        return lambda e: e.struct.with_fields(v(pl.field(k)).alias(k) for k, v in inner.items())
    return None


def _polars_reads(schema: Any) -> bool:
    """False when ``schema`` has a union of several non-null branches (polars cannot)."""
    if isinstance(schema, list):
        return len([s for s in schema if s != "null"]) <= 1 and all(map(_polars_reads, schema))
    if isinstance(schema, dict):
        kind = schema.get("type")
        if kind in ("record", "error"):
            return all(_polars_reads(f["type"]) for f in schema["fields"])
        if kind == "array":
            return _polars_reads(schema["items"])
        if kind == "map":
            return _polars_reads(schema["values"])
        if isinstance(kind, dict | list):
            return _polars_reads(kind)
    return True


# -- bad bodies, and schemas polars cannot read ---------------------------------------------


def _fastavro() -> Any:
    return require("fastavro", needed_by="Avro topics", extra="registry")


def _check(values: Sequence[bytes], start: int, writer: Any) -> list[tuple[int, str]]:
    """The values whose body fastavro cannot read exactly (cut short, or bytes left over)."""
    fastavro = _fastavro()
    parsed = fastavro.parse_schema(writer)
    bad = []
    for i, value in enumerate(values):
        body = io.BytesIO(value)
        body.seek(start)
        try:
            fastavro.schemaless_reader(body, parsed, None)
        except Exception as exc:
            bad.append((i, f"the Avro body does not match its schema: {type(exc).__name__} {exc}"))
            continue
        left = len(value) - body.tell()
        if left:
            what = f"{left} byte(s) left after the record"
            bad.append((i, f"the Avro body does not match its schema: {what}"))
    return bad


def _one_by_one(
    values: Sequence[bytes], start: int, writer: Any
) -> tuple[pl.DataFrame, list[tuple[int, str]]]:
    fastavro = _fastavro()
    parsed = fastavro.parse_schema(writer)
    bad = _check(values, start, writer)
    wrong = {i for i, _ in bad}
    records = []
    for i, value in enumerate(values):
        if i not in wrong:
            body = io.BytesIO(value)
            body.seek(start)
            records.append(fastavro.schemaless_reader(body, parsed, None))
    if records and not isinstance(records[0], dict):
        return pl.DataFrame({"value": records}, strict=False), bad
    return pl.DataFrame(records, infer_schema_length=None, strict=False), bad


# -- resolution ---------------------------------------------------------------------------------


def empty(schema: Any) -> pl.DataFrame:
    """The columns (and dtypes) a schema's records decode to, with no rows."""
    return _bulk([], 0, schema) if _polars_reads(schema) else pl.DataFrame()


def resolve(frame: pl.DataFrame, writer: Any, reader: Any) -> pl.DataFrame:
    """``frame`` (decoded with ``writer``) in the reader schema's top-level fields."""
    if writer == reader:
        return frame
    w, r = _deref(writer, {}, None), _deref(reader, {}, None)
    if not (isinstance(w, dict) and isinstance(r, dict) and r.get("type") == "record"):
        raise Unresolvable("only record schemas are resolved onto a reader schema")
    target = empty(reader)
    by_name = {f["name"]: f for f in w.get("fields", [])}
    columns = []
    defaults = []
    for f in r["fields"]:
        found = next((by_name[n] for n in [f["name"], *f.get("aliases", [])] if n in by_name), None)
        dtype = target.schema.get(f["name"])
        if found is None:
            if "default" not in f:
                raise Unresolvable(
                    f"the reader's field {f['name']!r} has no default and the writer schema "
                    "lacks it"
                )
            defaults.append(f)
            continue
        _check_types(found["type"], f["type"], f["name"])
        column = pl.col(found["name"])
        if dtype is not None and frame.schema[found["name"]] != dtype:
            column = column.cast(dtype, strict=False)
        columns.append(column.alias(f["name"]))
    out = frame.select(columns) if columns else pl.DataFrame(height=frame.height)
    if defaults:
        filled = _defaults(defaults, reader)
        out = out.with_columns(pl.lit(filled[c.name]).first().alias(c.name) for c in filled)
    return out.select(target.columns) if target.width else out


def _check_types(w: Any, r: Any, name: str) -> None:
    """Refuse what Avro's rules refuse at the top of a field (named types by name only)."""
    kw, kr = _kind(w), _kind(r)
    if kw == kr or (kw, kr) in _PROMOTE or "union" in (kw, kr):
        return
    raise Unresolvable(f"field {name!r} is {kw} in the writer schema and {kr} in the reader's")


def _kind(schema: Any) -> str:
    if isinstance(schema, list):
        branches = [s for s in schema if s != "null"]
        return _kind(branches[0]) if len(branches) == 1 else "union"
    if isinstance(schema, dict):
        kind = schema["type"]
        return _kind(kind) if isinstance(kind, dict | list) else kind
    return schema if schema in _PRIMITIVE else "named"


def _defaults(fields: list[dict], reader: dict) -> pl.DataFrame:
    """One row of the reader's defaults for ``fields``, in their dtypes (written by fastavro
    in the reader's types and read back by polars, so every type comes out as a read would)."""
    fastavro = _fastavro()
    schema = {**reader, "fields": fields}
    out = io.BytesIO()
    record = {f["name"]: _default_value(f) for f in fields}
    fastavro.schemaless_writer(out, fastavro.parse_schema(schema), record)
    frame = _bulk([out.getvalue()], 0, schema)
    assert frame is not None
    return frame


def _default_value(field: dict) -> Any:
    """A JSON default as fastavro writes it: bytes and fixed defaults are code points."""
    value = field["default"]
    kind = _kind(field["type"])
    if kind in ("bytes", "fixed") and isinstance(value, str):
        return value.encode("latin-1")
    return value
