"""Parameter values with their JSON kind: what a column of :func:`~concursus_lab.latest` holds.

A parameter's values are read from the distinct ``parameters`` texts, once each, and keep
their JSON kind. A column shows them as polars would type them only when that cannot merge
two values of different kinds:

* all strings, all booleans, all integers within 64 bits, or all other numbers (written
  with a fraction or an exponent): a ``String``, ``Boolean``, ``Int64`` or ``Float64``
  column;
* anything else (objects, arrays, integers beyond 64 bits, or values of several kinds):
  each value's JSON text, compact with keys sorted and every number as it was written, so
  ``1``, ``1.0`` and ``"1"`` stay three values (``1``, ``1.0``, ``"1"``) and the string
  ``"{1}"`` is never the object ``{"a":1}``;
* only ever null (null counts as absent): a ``String`` column of nulls (``Null`` here,
  until :func:`typed_nulls`: a Spark answer merges its buckets first).

The kinds that decide are those of the values the column shows, not of every value read.

>>> texts = pl.Series(['{"v":1}', '{"v":"1"}', '{"v":1.0}', '{"w":{"b":2,"a":1}}'])
>>> values = read(texts)
>>> values.keys
['v', 'w']
>>> column, kinds = values.column("v", np.array([0, 1, 2, -1]))
>>> column.to_list(), kinds == [STRING, INTEGER, FLOAT]
(['1', '"1"', '1.0', None], True)
>>> values.column("v", np.array([0, 0, -1, -1]))[0].to_list()
[1, 1, None, None]
>>> values.column("w", np.array([0, -1, -1, -1]))[0].to_list()
['{"a":1,"b":2}', None, None, None]
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import orjson
import polars as pl

from concursus_lab.frame import canonical_json

#: A value's kind, as a small code; the first four have a dtype of their own.
STRING, INTEGER, FLOAT, BOOLEAN, OTHER = range(5)
_BIG = 5  # a float read by orjson that may be an integer beyond 64 bits: read again
_DTYPES = {STRING: pl.String, INTEGER: pl.Int64, FLOAT: pl.Float64, BOOLEAN: pl.Boolean}
_KIND = {str: STRING, int: INTEGER, float: FLOAT, bool: BOOLEAN}
_INT64 = range(-(2**63), 2**63)
_BEYOND_64_BITS = 2.0**63  # orjson reads an integer beyond 64 bits as a float
_SORTED = orjson.OPT_SORT_KEYS


class Values:
    """Every parameter's non-null values, per distinct text (see the module docstring).

    For each parameter name: ``holding[name]`` the codes of the texts that give it a value
    (ascending), and ``kinds[name]`` the kind of each of those values; :meth:`column` turns
    the positions picked in ``holding`` into the column, and says the kinds it shows.
    """

    def __init__(self, texts: pl.Series, parsed: list[Any], keys: list[str]) -> None:
        self.texts = texts
        self.keys = keys
        self.holding: dict[str, np.ndarray] = {}
        self.kinds: dict[str, np.ndarray] = {}
        self._uniform: dict[str, int | None] = {}  # the one kind of all values read, if so
        self._values: dict[str, list[Any]] = {}
        codes: dict[str, list[int]] = {k: [] for k in keys}
        values: dict[str, list[Any]] = {k: [] for k in keys}
        for code, obj in enumerate(parsed):
            for key, value in obj.items():
                if value is not None:
                    codes[key].append(code)
                    values[key].append(value)
        for key in keys:
            self.holding[key] = np.array(codes[key], dtype=np.int64)
            self._values[key] = values[key]
            self.kinds[key] = _kinds(values[key])
            for at in np.flatnonzero(self.kinds[key] == _BIG).tolist():
                # a float from orjson this large may be an integer beyond 64 bits
                text = texts[int(self.holding[key][at])]
                value = _exact_ints(text)[key]
                values[key][at] = value
                self.kinds[key][at] = _kind_of(value)
            kinds = self.kinds[key]
            one = len(kinds) > 0 and kinds[0] == kinds[-1] and (kinds == kinds[0]).all()
            self._uniform[key] = int(kinds[0]) if one else None

    def column(
        self, key: str, picked: np.ndarray, *, as_text: bool = False
    ) -> tuple[pl.Series, list[int]]:
        """The column of ``key`` for positions ``picked`` in its holding texts (-1: none),
        and the kinds of the values it shows.

        ``as_text`` asks for JSON texts whatever the kinds (Spark, when its buckets saw
        different kinds, asks each bucket again so).
        """
        shown = self._kinds_shown(key, picked)
        if not shown:  # a String column once every bucket of a Spark answer is merged
            return pl.Series(key, [None] * len(picked), dtype=pl.Null), shown
        kind = shown[0]
        if as_text or shown_as_text(set(shown)):
            values = pl.Series(key, self._texts(key), dtype=pl.String)
        else:
            values = self._values[key]
            if self._uniform[key] is None:  # values read but not shown: left out
                others = (self.kinds[key] != kind).tolist()
                values = [None if o else v for o, v in zip(others, values, strict=True)]
            values = pl.Series(key, values, dtype=_DTYPES[kind])
        return _gathered(values, picked), shown

    def _kinds_shown(self, key: str, picked: np.ndarray) -> list[int]:
        """The kinds of the values ``picked`` shows, sorted."""
        if self._uniform[key] is not None:
            return [self._uniform[key]] if (picked >= 0).any() else []
        counts = np.bincount(self.kinds[key][picked[picked >= 0]], minlength=_BIG + 1)
        return np.flatnonzero(counts).tolist()

    def _texts(self, key: str) -> list[str]:
        """Each value's JSON text; exact where a number could have changed in parsing."""
        texts = self.texts.gather(pl.Series(self.holding[key]))
        risky = texts.str.contains(canonical_json.RISKY).to_list()
        dumps, out = orjson.dumps, []
        for text, value, exact in zip(texts.to_list(), self._values[key], risky, strict=True):
            if exact:
                out.append(canonical_json.dumps(canonical_json.exact_loads(text)[key]))
            else:
                out.append(dumps(value, option=_SORTED).decode())
        return out


def typed_nulls(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with its ``Null`` columns (parameters only ever null) as ``String``."""
    nulls = [pl.col(c).cast(pl.String) for c, t in frame.schema.items() if t == pl.Null]
    return frame.with_columns(nulls) if nulls else frame


def mixed_kinds(shown: list[dict[str, list[int]]]) -> frozenset[str]:
    """The parameters some part of a history (a bucket) gave as one kind's values, while all
    parts together (``shown``: each part's kinds per parameter) show values that only JSON
    texts keep apart: those parts must give that parameter's texts instead."""
    seen: dict[str, set[int]] = {}
    for kinds in shown:
        for name, k in kinds.items():
            seen.setdefault(name, set()).update(k)
    return frozenset(
        name
        for name, k in seen.items()
        if shown_as_text(k)
        and any((mine := kinds.get(name)) and not shown_as_text(set(mine)) for kinds in shown)
    )


def shown_as_text(kinds: set[int]) -> bool:
    """Whether a column whose shown values are of ``kinds`` holds JSON texts."""
    return len(kinds) > 1 or OTHER in kinds


def read(texts: pl.Series) -> Values:
    """Every parameter's values in the distinct ``texts``; a text that is not a JSON object
    gives none (``latest`` reads what ``validate`` let through unchecked)."""
    parsed: list[dict] = []
    loads = orjson.loads
    for text in texts.to_list():
        try:
            value = loads(text)
        except (orjson.JSONDecodeError, TypeError):  # beyond a double (infinity), say
            value = _exact_ints(text)
        parsed.append(value if type(value) is dict else {})
    keys = sorted({k for obj in parsed for k in obj})
    values = Values(texts, parsed, keys)
    return values


_EXACT_INTS = json.JSONDecoder()  # integers of any size exact, floats as floats


def _exact_ints(text: str | None) -> Any:
    try:
        return _EXACT_INTS.decode(text)  # type: ignore[arg-type]
    except (ValueError, RecursionError, TypeError):
        return None


def _kinds(values: list[Any]) -> np.ndarray:
    """The kind of each value (the usual case, one kind in range, at C speed)."""
    types = set(map(type, values))
    if len(types) == 1:
        (kind_type,) = types
        kind = _KIND.get(kind_type, OTHER)
        in_range = (
            kind not in (INTEGER, FLOAT)
            or (kind == INTEGER and min(values) in _INT64 and max(values) in _INT64)
            or (kind == FLOAT and max(map(abs, values)) < _BEYOND_64_BITS)
        )
        if in_range:
            return np.full(len(values), kind, dtype=np.int8)
    return np.fromiter(map(_kind_of, values), dtype=np.int8, count=len(values))


def _kind_of(value: Any) -> int:
    kind = _KIND.get(type(value), OTHER)
    if kind == INTEGER and value not in _INT64:
        return OTHER
    if kind == FLOAT and abs(value) >= _BEYOND_64_BITS:
        return _BIG  # orjson's float for an integer beyond 64 bits, or a large float
    return kind


def _gathered(values: pl.Series, picked: np.ndarray) -> pl.Series:
    out = values.gather(pl.Series(np.maximum(picked, 0)))
    if (picked < 0).any():
        out = pl.select(
            pl.when(pl.Series(picked >= 0)).then(out).otherwise(None).alias(values.name)
        ).to_series()
    return out
