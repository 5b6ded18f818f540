"""Canonical ``parameters`` JSON: compact, keys sorted, every number exactly as it was written.

The frame's ``parameters`` column holds one JSON object per event. Every writer (``append``
of every source, ``EventTypes.encode``) and every reader writes it in one canonical form, so
that equal parameters are equal text:

* compact (no spaces) with object keys sorted, as Concursus's Jackson writes them when told
  to sort, and as :mod:`orjson` writes them;
* **numbers keep their exact text**: an integer of any size keeps every digit (an account
  number of 30 digits), and a decimal keeps the digits it was written with
  (``1459420277.981000000``, as Java writes an ``Instant``; ``0.10``), never rounded through a
  double;
* nested at most :data:`MAX_DEPTH` levels (objects and arrays); deeper parameters are refused
  on write and quarantined on read, never half-written;
* **only what every reader reads back** is written: a number beyond what a double holds
  (``1e400``: orjson, Java's Jackson and Spark take it as infinity or refuse it), or a Python
  ``inf`` or ``nan`` (orjson would write ``null``), is refused on write, saying what to write
  instead; readers still read such numbers where they can;
* **instants and dates as Java Concursus's Jackson writes them**, wherever they are: an
  instant as epoch seconds with nine decimals (``1459420277.981000000``), a date as
  ``[1968,5,28]`` (a naive datetime is read as UTC, as everywhere in concursus-lab).

:func:`canonical` rewrites one text and says why when it cannot; :func:`loads` reads one with
integers exact; :func:`dumps` writes a Python value canonically.

>>> canonical('{"b": 1.10, "a": 123456789012345678901234567890}')
'{"a":123456789012345678901234567890,"b":1.10}'
>>> loads('{"account": 123456789012345678901234567890}')["account"] + 1
123456789012345678901234567891
>>> dumps({"z": [1, 2], "a": 2**70})
'{"a":1180591620717411303424,"z":[1,2]}'
>>> import datetime as dt
>>> dumps({"at": [dt.datetime(2016, 3, 31, 10, 31, 17, 981000, tzinfo=dt.UTC)]})
'{"at":[1459420277.981000000]}'
>>> canonical("[1]")
Traceback (most recent call last):
...
concursus_lab.frame.canonical_json.NotCanonical: a JSON array, not an object
>>> canonical('{"x": 1e400}')  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
concursus_lab.frame.canonical_json.NotCanonical: not writable: the number 1e400 is beyond ...
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import numpy as np
import orjson
import polars as pl
import pyarrow as pa

from concursus_lab.common.text import clip

#: How deeply objects and arrays may nest in ``parameters`` (orjson writes at most 254).
MAX_DEPTH = 254

#: Texts where orjson could change a number's text: a decimal point or exponent after a
#: digit (orjson writes floats its own way), 19 digits in a row (beyond 64 bits orjson reads
#: a float) or a ``-0``. Other texts orjson reads and writes back with every number as it
#: was (and fast); these go the exact way. A match inside a string only costs time.
RISKY = r"[0-9][.eE]|[0-9]{19}|-0"
_RISKY = re.compile(RISKY.encode())
_BIG_INT = re.compile(rb"[0-9]{19}")
_SORTED = orjson.OPT_SORT_KEYS
_PYTHON = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME  # times go to _java
_INT64 = range(-(2**63), 2**64)  # what orjson writes itself (it reads unsigned 64 bits too)
_DOUBLE_DIGITS = 309  # digits of the largest double's integer part
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECOND = dt.timedelta(microseconds=1)


class NotCanonical(ValueError):
    """A ``parameters`` text that has no canonical form; the message says why."""


def canonical(text: str | bytes, *, risky: bool | None = None) -> str:
    """``text`` (one JSON object) in canonical form; :class:`NotCanonical` says why not.

    ``risky`` is whether ``text`` matches :data:`RISKY` (None: look); a caller with a whole
    column finds that for every row at once (``str.contains(RISKY)`` in polars).
    """
    raw = text.encode() if isinstance(text, str) else text
    if risky is None:
        risky = _RISKY.search(raw) is not None
    value = _guarded(_CHECKED, raw) if risky else _fast_loads(raw)
    if type(value) is not dict:
        raise NotCanonical(f"{kind_name(value)}, not an object")
    return _dumps(value)


def canonical_column(texts: pl.Series) -> tuple[pl.Series, pl.Series]:
    """Every text of a column in canonical form, and each row's reason when it has none
    (null where it has): the texts without one are passed through unchanged.

    >>> out, why = canonical_column(pl.Series(['{"b": 1, "a": 2}', "[1]", None]))
    >>> out.to_list(), why.to_list()
    (['{"a":2,"b":1}', '[1]', None], [None, 'a JSON array, not an object', None])
    """
    distinct = texts.unique()
    if len(distinct) <= _REPEATED * len(texts):  # each distinct text once, then per row
        out, why = _canonical_rows(distinct)
        table = pl.DataFrame([distinct.alias("text"), out.alias("out"), why])
        rows = pl.DataFrame([texts.alias("text")]).join(
            table, on="text", how="left", maintain_order="left"
        )
        return rows["out"].alias(texts.name), rows["reason"]
    return _canonical_rows(texts)


#: Share of distinct texts under which a column is made canonical text by distinct text (a
#: history repeats its small parameter objects: 13% distinct in the sample, 195k rows made
#: canonical in 0.07 s CPU instead of 0.16 s, a local-store append 2.27 instead of 2.77 us a
#: row); above it, row by row (a unique and a join would only add to the cost).
_REPEATED = 0.5


def _canonical_rows(texts: pl.Series) -> tuple[pl.Series, pl.Series]:
    """:func:`canonical_column`, one text at a time."""
    risky = texts.str.contains(RISKY).fill_null(False).to_list()
    out: list[str | None] = []
    reasons: list[str | None] = []
    for text, exact in zip(texts.to_list(), risky, strict=True):
        if text is None:
            out.append(None)
            reasons.append(None)
            continue
        try:
            out.append(canonical(text, risky=exact))
            reasons.append(None)
        except NotCanonical as why:
            out.append(text)
            reasons.append(str(why))
    return pl.Series(texts.name, out, dtype=pl.String), pl.Series("reason", reasons, pl.String)


def loads(text: str | bytes) -> Any:
    """The value of a JSON text, integers of any size exact (floats as floats);
    :class:`NotCanonical` when it is not JSON."""
    raw = text.encode() if isinstance(text, str) else text
    if _BIG_INT.search(raw) is None:
        return _fast_loads(raw)
    return _guarded(_VALUES, raw)


def exact_loads(text: str | bytes) -> Any:
    """The value of a JSON text with every number kept as its text, to be written back by
    :func:`dumps` exactly (a reader that parsed fast re-reads the values that need it)."""
    return _exact_loads(text.encode() if isinstance(text, str) else text)


def number(text: str) -> orjson.Fragment:
    """A JSON number that :func:`dumps` writes exactly as ``text`` (e.g. ``"1.500"``)."""
    return orjson.Fragment(text)


def dumps(value: Any) -> str:
    """``value`` (dicts, lists, strings, numbers, :func:`number`, booleans, None, datetimes
    and dates) as canonical JSON text; :class:`NotCanonical` when it nests more than
    :data:`MAX_DEPTH` or holds what no reader reads back (see the module docstring)."""
    try:
        text = _dumps(value, _PYTHON)
    except _BeyondInt64:
        text = _dumps(_big_ints_kept(value, 0), _PYTHON)
    if "null" in text:  # orjson writes inf and nan as null
        _check_finite(value, 0)
    return text


def java_value(value: Any) -> Any:
    """A datetime or date as Java Concursus's Jackson writes it (other values as they are):
    an instant as epoch seconds with nine decimals (a :func:`number`), a date as
    ``[year, month, day]``; a naive datetime is taken as UTC.

    >>> dumps(java_value(dt.datetime(1969, 12, 31, 23, 59, 59, 500000, tzinfo=dt.UTC)))
    '-0.500000000'
    >>> java_value(dt.date(1968, 5, 28))
    [1968, 5, 28]
    """
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        micros = (value - _EPOCH) // _MICROSECOND
        sign, micros = ("-", -micros) if micros < 0 else ("", micros)
        return number(f"{sign}{micros // 1_000_000}.{micros % 1_000_000:06d}000")
    if isinstance(value, dt.date):
        return [value.year, value.month, value.day]
    return value


def kind_name(value: Any) -> str:
    """What a parsed JSON value is, in words: ``a JSON array``, ``a JSON number``, ..."""
    names = {dict: "a JSON object", list: "a JSON array", str: "a JSON string"}
    if type(value) in names:
        return names[type(value)]
    return "a JSON " + ("null" if value is None else "number or boolean")


def dumps_objects(objects: Sequence[Any], too_deep: dict[int, str]) -> pl.Series | None:
    """Each dict as canonical JSON text, as :func:`dumps` writes it, for many at once;
    None when some element is not a dict. One nested too deeply to write back is written as
    ``{}`` and named in ``too_deep`` (position -> reason).

    One ``orjson.dumps`` of the whole list, then a NumPy scan for the ``}`` that close the
    top-level objects (outside strings): one allocation instead of one per event.
    """
    n = len(objects)
    if n == 0:
        return pl.Series("parameters", [], dtype=pl.String)
    try:
        text = orjson.dumps(objects, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # something nests too deeply: find it, the others as usual
        return pl.Series("parameters", _one_by_one(objects, too_deep), dtype=pl.String)
    data = np.frombuffer(text, dtype=np.uint8)
    ends = _object_ends(data)
    if len(ends) != n:  # each dict closes once at depth 1, anything else never does
        return None
    starts = np.empty(n, dtype=np.int64)
    starts[0] = 1
    starts[1:] = ends[:-1] + 2  # skip "}" and ","
    keep = np.ones(len(data), dtype=bool)
    keep[[0, -1]] = False  # "[" and "]"
    keep[ends[:-1] + 1] = False  # the commas between objects
    body = data[keep]
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(ends + 1 - starts, out=offsets[1:])
    array = pa.LargeStringArray.from_buffers(
        n, pa.py_buffer(offsets.tobytes()), pa.py_buffer(body.tobytes())
    )
    return pl.Series("parameters", array, dtype=pl.String)


def _one_by_one(objects: Sequence[Any], too_deep: dict[int, str]) -> list[str | None]:
    texts: list[str | None] = []
    for k, obj in enumerate(objects):
        if type(obj) is not dict:
            texts.append(None)
            continue
        try:
            texts.append(dumps(obj))
        except NotCanonical as exc:
            too_deep[k] = f"`parameters` is {exc}"
            texts.append("{}")
    return texts


_QUOTE, _BACKSLASH = ord('"'), ord("\\")
_OPEN = np.zeros(256, dtype=np.int8)
_OPEN[[ord("{"), ord("[")]] = 1
_OPEN[[ord("}"), ord("]")]] = -1


def _object_ends(data: np.ndarray) -> np.ndarray:
    """Positions of the ``}`` closing each element of a compact JSON array of objects."""
    backslash = data == _BACKSLASH
    escaped = np.zeros(len(data), dtype=bool)
    if backslash.any():
        # In a run of backslashes, the 1st, 3rd, ... escape the byte after them.
        pos = np.flatnonzero(backslash)
        run_start = np.r_[True, pos[1:] != pos[:-1] + 1]
        first = np.maximum.accumulate(np.where(run_start, np.arange(len(pos)), 0))
        escaping = pos[(np.arange(len(pos)) - first) % 2 == 0]
        escaped[escaping + 1] = True
    quote = (data == _QUOTE) & ~escaped
    inside = (np.cumsum(quote) % 2).astype(bool) | quote  # within a string (or its quotes)
    step = np.where(inside, 0, _OPEN[data]).astype(np.int32)
    depth = np.cumsum(step)
    return np.flatnonzero((data == ord("}")) & ~inside & (depth == 1))


def _too_deep() -> NotCanonical:
    return NotCanonical(f"nested deeper than {MAX_DEPTH} levels of objects and arrays")


def _fast_loads(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc):
            raise _too_deep() from None
        raise NotCanonical(f"not valid JSON ({exc})") from None


class _BeyondInt64(NotCanonical):
    """An integer orjson cannot write (:func:`dumps` writes it as its digits)."""


def _dumps(value: Any, option: int = _SORTED) -> str:
    try:
        return orjson.dumps(value, default=_java, option=option).decode()
    except TypeError as exc:
        if isinstance(exc.__cause__, NotCanonical):  # from _java
            raise exc.__cause__ from None
        why = str(exc)
        if "64-bit" in why:
            raise _BeyondInt64("an integer beyond 64 bits") from None
        if "ecursion" in why:
            raise _too_deep() from None
        raise NotCanonical(f"not writable: {why}; give it as a string or a number") from None


def _java(value: Any) -> Any:
    """orjson's ``default``: times as Java writes them, decimals exactly."""
    if isinstance(value, dt.date | dt.datetime):
        return java_value(value)
    if isinstance(value, dt.time):
        return value.isoformat()
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise _no_json(value)
        return _checked_float_text(str(value))
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")


def _beyond(text: str) -> NotCanonical:
    shown = clip(text, 24)
    return NotCanonical(
        f"not writable: the number {shown} is beyond what a double holds (about 1.8e308), "
        "so the readers that parse numbers as doubles (Kafka's and Redis's here, Java's "
        f'Jackson, Spark) take it as infinity or refuse it. Write it as a string, "{shown}"'
    )


def _no_json(value: Any) -> NotCanonical:
    return NotCanonical(
        f"not writable: the number {value} has no JSON form (orjson would write null). "
        f'Leave it out, or write it as a string, "{value}"'
    )


def _check_finite(value: Any, depth: int) -> None:
    """Raise for an ``inf`` or ``nan`` anywhere in ``value``."""
    if type(value) is float:
        if not math.isfinite(value):
            raise _no_json(value)
    elif depth <= MAX_DEPTH and isinstance(value, dict):
        for item in value.values():
            _check_finite(item, depth + 1)
    elif depth <= MAX_DEPTH and isinstance(value, list | tuple):
        for item in value:
            _check_finite(item, depth + 1)


def _int_text(text: str) -> Any:
    value = int(text)
    return value if value in _INT64 and text != "-0" else orjson.Fragment(text)


def _checked_int_text(text: str) -> Any:
    """:func:`_int_text`, refusing an integer beyond what a double holds."""
    if len(text) - text.startswith("-") >= _DOUBLE_DIGITS:
        try:
            float(int(text))
        except (OverflowError, ValueError):  # ValueError: beyond Python's 4300 digits
            raise _beyond(text) from None
    return _int_text(text)


def _checked_float_text(text: str) -> orjson.Fragment:
    if math.isinf(float(text)):
        raise _beyond(text)
    return orjson.Fragment(text)


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


# numbers kept as their text (orjson writes a Fragment as it is), or read as Python numbers
_TEXTS = json.JSONDecoder(
    parse_int=_int_text, parse_float=orjson.Fragment, parse_constant=_constant
)
# ... and refused where no reader reads them back (what is written)
_CHECKED = json.JSONDecoder(
    parse_int=_checked_int_text, parse_float=_checked_float_text, parse_constant=_constant
)
_VALUES = json.JSONDecoder(parse_constant=_constant)


def _exact_loads(raw: bytes) -> Any:
    return _guarded(_TEXTS, raw)


def _guarded(decoder: json.JSONDecoder, raw: bytes) -> Any:
    try:
        return decoder.decode(raw.decode())
    except NotCanonical:
        raise
    except RecursionError:
        raise _too_deep() from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise NotCanonical(f"not valid JSON ({exc})") from None


def _big_ints_kept(value: Any, depth: int) -> Any:
    """``value`` with integers beyond 64 bits as Fragments (orjson cannot write them)."""
    if depth > MAX_DEPTH:
        raise _too_deep()
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if value in _INT64:
            return value
        text = str(int(value))
        try:
            float(value)
        except OverflowError:
            raise _beyond(text) from None
        return orjson.Fragment(text)
    if isinstance(value, dict):
        return {k: _big_ints_kept(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_big_ints_kept(v, depth + 1) for v in value]
    return value
