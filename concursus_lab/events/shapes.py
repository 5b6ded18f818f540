"""Parameters texts as polars frames, one frame per shape, and frames back as texts.

An upcaster's columnar form is given the parameters of a version group as a polars frame:
one row per event, one column per key. JSON lets a key hold a string in one event and a
number in the next, which one polars column cannot hold without changing a value, so the
texts are split by *shape* (their keys and each key's JSON kind, ``json_kinds.py``): every
frame here holds texts of one shape, and its values are exactly the texts' (no key dropped,
no kind changed). Usually a version group has one shape, and one frame.

The common case is vectorised: a few texts are parsed to learn the shapes present, and each
shape of flat strings, integers, other numbers and booleans becomes one regular expression
that polars matches against every text and cuts into typed columns (as decoding does, see
``decode.py``). Texts no such expression matches (nulls, arrays, objects, escapes in
strings) are parsed one by one and grouped by shape.

>>> frames = frames_of(pl.Series(['{"a":1,"b":"x"}', '{"a":"1"}', '{"a":2,"b":"y"}']))
>>> [(positions.tolist(), frame.columns) for positions, frame in frames.groups]
[([0, 2], ['a', 'b']), ([1], ['a'])]
>>> texts_of(pl.DataFrame({"b": ["x", None], "a": [1, 2]})).to_list()
['{"a":1,"b":"x"}', '{"a":2}']
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import orjson
import polars as pl

from concursus_lab.common.text import shown
from concursus_lab.events.fast import fast_columns
from concursus_lab.events.parameters import FAST, Parameter
from concursus_lab.frame import canonical_json
from concursus_lab.frame.json_kinds import shape_of

#: Texts parsed to learn the shapes present, per round; rounds before the rest are parsed
#: one by one.
SAMPLE, ROUNDS = 64, 8

#: A JSON number that is not an integer (an integer matches ``FAST["int"]``).
_FRACTION = (
    r"(-?(?:0|[1-9][0-9]{0,17})(?:\.[0-9]{1,17}(?:[eE][+-]?[0-9]{1,3})?|[eE][+-]?[0-9]{1,3}))"
)
_PATTERNS = {"string": FAST["str"], "int": FAST["int"], "float": _FRACTION, "bool": FAST["bool"]}
_AS = {"string": "str", "int": "int", "float": "float", "bool": "bool"}
_KEY = r"[A-Za-z0-9_]+"


class Unframeable(Exception):
    """Texts of one shape that polars cannot hold in one frame (``position``: the first)."""

    def __init__(self, position: int, why: str) -> None:
        super().__init__(why)
        self.position = position


@dataclasses.dataclass
class Shaped:
    """``groups``: (positions, frame) per shape; ``bad``: (position, why) of the texts that
    are not JSON objects."""

    groups: list[tuple[np.ndarray, pl.DataFrame]]
    bad: list[tuple[int, str]]


def frames_of(texts: pl.Series) -> Shaped:
    """The texts as frames, one per shape (see the module's docstring)."""
    remaining = np.arange(texts.len(), dtype=np.int64)
    groups: list[tuple[np.ndarray, pl.DataFrame]] = []
    tried: set[tuple] = set()
    for _ in range(ROUNDS):
        if len(remaining) == 0:
            break
        sample = texts.gather(remaining[:SAMPLE]).unique(maintain_order=True).to_list()
        fresh = [s for s in dict.fromkeys(map(_fast_shape, sample)) if s and s not in tried]
        if not fresh:
            break
        for shape in fresh:
            tried.add(shape)
            found, frame = _matching(shape[1:], texts.gather(remaining))
            if found.any():
                groups.append((remaining[found], frame))
                remaining = remaining[~found]
    rest, bad = _one_by_one(texts, remaining)
    return Shaped(groups + rest, bad)


def _fast_shape(text: str | None) -> tuple | None:
    """``("fast", (key, kind), ...)`` when a regular expression can match texts of this
    text's shape, else None."""
    try:
        value = canonical_json.loads(text) if text is not None else None
    except canonical_json.NotCanonical:
        return None
    if type(value) is not dict:
        return None
    shape = shape_of(value)
    for key, kind in shape:
        if kind not in _PATTERNS or not _fits(key, value[key]):
            return None
    return ("fast", *shape)


def _fits(key: str, value: object) -> bool:
    if re.fullmatch(_KEY, key) is None:
        return False
    return type(value) is not int or abs(value) < 10**18


def _matching(shape: tuple, texts: pl.Series) -> tuple[np.ndarray, pl.DataFrame]:
    """Which texts have ``shape``, and their frame."""
    if not shape:
        found = (texts == "{}").fill_null(False).to_numpy()
        return found, _empty_frame(int(found.sum()))
    pattern = r"^\{" + ",".join(f'"{k}":{_PATTERNS[kind]}' for k, kind in shape) + r"\}$"
    params = tuple(Parameter(k, _AS[kind]) for k, kind in shape)
    columns, _, matched = fast_columns(params, pattern, texts, shape[0][0])
    keep = pl.Series(matched)
    return matched, pl.DataFrame([c.filter(keep) for c in columns])


def _empty_frame(height: int) -> pl.DataFrame:
    """A frame of ``height`` rows and no columns (events without parameters)."""
    return pl.DataFrame({"_": pl.Series([None] * height, dtype=pl.Null)}).drop("_")


def _one_by_one(texts: pl.Series, positions: np.ndarray):
    by_shape: dict[tuple, tuple[list[int], list[dict]]] = {}
    bad: list[tuple[int, str]] = []
    values = texts.gather(pl.Series(positions, dtype=pl.Int64)).to_list()
    for position, text in zip(positions.tolist(), values, strict=True):
        try:
            value = canonical_json.loads(text) if text is not None else None
        except canonical_json.NotCanonical:
            bad.append((position, f"parameters are not valid JSON: {shown(text)}"))
            continue
        if type(value) is not dict:
            bad.append((position, f"parameters are not a JSON object: {shown(text)}"))
            continue
        rows, dicts = by_shape.setdefault(shape_of(value), ([], []))
        rows.append(position)
        dicts.append(value)
    groups = []
    for shape, (rows, dicts) in by_shape.items():
        keys = [k for k, _ in shape]
        try:
            columns = [_column(k, kind, [d[k] for d in dicts]) for k, kind in shape]
        except Exception as exc:
            raise Unframeable(rows[0], f"{type(exc).__name__}: {exc}") from exc
        frame = pl.DataFrame(columns) if keys else _empty_frame(len(dicts))
        groups.append((np.array(rows, dtype=np.int64), frame))
    return groups, bad


def _column(key: str, kind: str, values: list) -> pl.Series:
    if kind == "null":
        return pl.Series(key, values, dtype=pl.Null)
    return pl.Series(key, values, strict=True)


def texts_of(frame: pl.DataFrame) -> pl.Series:
    """Each row of ``frame`` as a compact JSON object, keys sorted, null values left out
    (an absent parameter and a null one decode alike)."""
    if frame.width == 0:
        return pl.Series("parameters", ["{}"] * frame.height, dtype=pl.String)
    pieces = [
        pl.concat_str(pl.lit(orjson.dumps(c).decode() + ":"), _json(frame[c]))
        for c in sorted(frame.columns)
    ]
    body = pl.concat_str(pieces, separator=",", ignore_nulls=True)
    return frame.select(pl.concat_str(pl.lit("{"), body, pl.lit("}")).alias("parameters"))[
        "parameters"
    ]


def _json(column: pl.Series) -> pl.Expr:
    """Each value of ``column`` as JSON text (null where it is null), the common dtypes
    written by polars' string casts, the others by its JSON encoder."""
    name, dtype = column.name, column.dtype
    value = pl.col(name)
    if dtype.is_integer() or dtype == pl.Boolean:
        return value.cast(pl.String)
    if dtype.is_float() and column.is_finite().all():
        return value.cast(pl.String)
    if dtype == pl.String and not column.str.contains(r'["\\\x00-\x1f]').any():
        return pl.concat_str(pl.lit('"'), value, pl.lit('"'))
    key = orjson.dumps(name).decode()
    encoded = pl.struct(value).struct.json_encode().str.slice(len(key) + 2)
    return pl.when(value.is_not_null()).then(encoded.str.strip_suffix("}"))


__all__ = ["Shaped", "Unframeable", "frames_of", "texts_of"]
