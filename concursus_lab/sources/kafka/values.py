"""Record values of a topic of your own shape, as one frame of records that a mapping reads.

A topic read through a :class:`~concursus_lab.Mapping` turns a batch of record values into a
frame, one row per record and one column per top-level field of the value (nested objects
as struct columns, so that dotted paths such as ``"payload.order.id"`` reach into them). The
values' format is decoded in one place: a :data:`ValueDecoder` (:func:`json_objects` for
JSON; other formats plug in beside it), which says for every value it could not use, why.

JSON values are decoded in bulk by polars' NDJSON reader (the batch's values joined by
newlines, each value's own line breaks, which JSON allows only between tokens, made spaces),
not one Python object per value. Only when the batch does not read as a whole (a value that
is not JSON, or not an object) are the values checked one by one, to name the bad ones.

>>> frame, used, bad = json_objects(
...     [b'{"order":"o1","total":12.5}', b"{oops", None, b'{"order":"o2"}', b"[1]"])
>>> frame.rows(), used.tolist()
([('o1', 12.5), ('o2', None)], [0, 3])
>>> for index, why in bad:
...     print(index, why)
1 not JSON: unexpected character, expected a string key: line 1 column 2 (char 1)
2 no value (a tombstone)
4 not a JSON object but an array
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence

import numpy as np
import orjson
import polars as pl

#: Turns record values into (frame of the good ones, their indexes, (index, reason) of the
#: others). Every format a mapped topic reads has one.
ValueDecoder = Callable[
    [Sequence[bytes | None]], tuple[pl.DataFrame, np.ndarray, list[tuple[int, str]]]
]

_KINDS = {list: "an array", str: "a string", int: "a number", float: "a number"}


def json_objects(
    values: Sequence[bytes | None],
) -> tuple[pl.DataFrame, np.ndarray, list[tuple[int, str]]]:
    """JSON object values as one frame; see the module docstring.

    Returns the frame (a column per top-level field, every field any value has; null where
    a value lacks it), the index in ``values`` of each of its rows, and ``(index, reason)``
    for every value that is not a JSON object.
    """
    bad: list[tuple[int, str]] = []
    used = np.arange(len(values), dtype=np.int64)
    if None in values or b"" in values:
        used = np.fromiter((i for i, v in enumerate(values) if v), dtype=np.int64)
        bad = [
            (i, "no value (a tombstone)" if v is None else "an empty value")
            for i, v in enumerate(values)
            if not v
        ]
        values = [values[i] for i in used.tolist()]
    frame = _read(values)
    if frame is None:  # some value is not a JSON object: find which, then read the others
        keep, more = _objects(values)
        bad.extend((int(used[i]), why) for i, why in more)
        used = used[keep]
        frame = _read([values[i] for i in keep.tolist()])
        if frame is None:  # objects, but their fields' types cannot be joined: one by one
            frame = _from_objects([values[i] for i in keep.tolist()])
    bad.sort()
    return _plain_nulls(frame), used, bad


def _read(values: Sequence[bytes]) -> pl.DataFrame | None:
    """The values as one frame, read at once; None when they do not all read as objects."""
    if not values:
        return pl.DataFrame()
    joined = b"\n".join(values)
    if joined.count(b"\n") != len(values) - 1 or b"\r" in joined:  # breaks inside a value
        joined = b"\n".join(v.replace(b"\n", b" ").replace(b"\r", b" ") for v in values)
    try:
        frame = pl.read_ndjson(io.BytesIO(joined), infer_schema_length=None)
    except (pl.exceptions.PolarsError, ValueError):
        return None
    return frame if frame.height == len(values) else None


def _objects(values: Sequence[bytes]) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """Which values are JSON objects, and why each other one is not."""
    keep, bad = [], []
    for i, value in enumerate(values):
        try:
            parsed = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            bad.append((i, f"not JSON: {exc}"))
            continue
        if isinstance(parsed, dict):
            keep.append(i)
        else:
            kind = "null" if parsed is None else _KINDS.get(type(parsed), "a value")
            bad.append((i, f"not a JSON object but {kind}"))
    return np.array(keep, dtype=np.int64), bad


def _from_objects(values: Sequence[bytes]) -> pl.DataFrame:
    """Objects whose fields hold different kinds of value in different records: read one by
    one, a field's values as text where they do not share a type."""
    objects = [orjson.loads(v) for v in values]
    try:
        return pl.DataFrame(objects, infer_schema_length=None, strict=False)
    except (pl.exceptions.PolarsError, TypeError, ValueError):
        names = list(dict.fromkeys(k for o in objects for k in o))
        return pl.DataFrame(
            {n: [_text(o.get(n)) for o in objects] for n in names},
            schema=dict.fromkeys(names, pl.String),
        )


def _text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def _plain_nulls(frame: pl.DataFrame) -> pl.DataFrame:
    """Fields that were null in every value of the batch, as text columns (not polars'
    Null type, which a time or an id cannot be read from)."""
    nulls = [c for c, t in frame.schema.items() if t == pl.Null]
    return frame.with_columns(pl.col(nulls).cast(pl.String)) if nulls else frame
