"""States as columns: a reducer's state objects turned into polars columns.

A dataclass (or named tuple) state becomes one column per field; tuples or lists of one
length and one element type become one List column ``state``; anything else sits in one
``state`` column (an Object column where polars has no type for it). A None state is a
null in every column. Dicts (dict states, or the dicts in a field) become a Struct whose
fields are their keys in name order, at every depth, as an event's parameters are: so the
columns never depend on which states came first, and the parts of a history answered apart
(Spark's buckets) make the columns the whole would.

A result's shape never depends on whether it is empty: where no state is there to show its
shape (no states at all, or only None), the columns come from the state's type, which the
reducer's return annotation names, or else a fold's ``initial=`` value shows
(:func:`state_class`). One rule (:func:`dtype_of`) turns an annotation into a column type,
and it decides the column's type whatever the states: a quiet day has a busy day's columns.

* a dataclass or named tuple: one column per field, typed by the field's annotation;
* a TypedDict: one ``state`` Struct column, its fields the keys in name order (as dicts are);
* a scalar (``int``, ``float``, ``str``, ``bool``, ``datetime``, ``date``, ``list[str]``...):
  one ``state`` column of that type (``-> float`` states of whole numbers are a Float64
  column, not an Int64 one);
* any other class: one ``state`` Object column, as its states make.

Where nothing says the shape (no annotation, ``-> dict``, ``-> Any``, no ``initial=``) an
answer with states still shows their shape, but an answer without any has one placeholder
``state`` column of type Null: the public functions then warn (:func:`warn_shapeless`),
naming the reducer and saying to annotate it. A warning, not an error: a quiet day is not a
mistake, and most reducers written in a notebook are not annotated; the warning is there so
that nobody mistakes a placeholder for the shape.

The work is split in two so that it can run where the states are: :func:`extract` pulls
the values out of the objects (in the process that folded them, as plain lists that pickle
compactly), :func:`merge` joins two extractions of consecutive parts when they have the
same shape, and :func:`to_columns` makes the polars columns. Every step is a C loop
(``map`` with ``attrgetter`` / ``itemgetter``) or polars: a million events leave hundreds of
thousands of states, and a Python loop over them costs as much as the rest of a replay.

>>> import dataclasses
>>> @dataclasses.dataclass
... class Bulb:
...     wattage: int
...     on: bool
>>> state_columns([Bulb(60, True), None])["wattage"].to_list()
[60, None]
>>> state_columns([("on", 3), ("off", 4)])["state"].to_list()  # as polars converts them
[['on', '3'], ['off', '4']]
>>> state_columns([("on", "LEW-2"), ("off", None)])["state"].to_list()
[['on', 'LEW-2'], ['off', None]]
>>> def switch(state, event) -> Bulb: ...
>>> {name: c.dtype for name, c in state_columns([], state_class(switch)).items()}
{'wattage': Int64, 'on': Boolean}
>>> state_columns([{"truck": "T1", "depot": "LEW"}, {"depot": "CRO"}])["state"].dtype
Struct({'depot': String, 'truck': String})
"""

from __future__ import annotations

import dataclasses
import types
import typing
import warnings
from itertools import repeat
from operator import attrgetter, is_, itemgetter, methodcaller
from typing import Any

import polars as pl

from concursus_lab.exceptions import SchemaError, UnknownStateShape
from concursus_lab.frame.conflicts import user_level

#: Columns a state_at result has besides the state's: a field of that name gets a prefix.
RESERVED = ("aggregate_id", "events_applied", "last_event_timestamp")


@dataclasses.dataclass
class Extracted:
    """Values pulled out of a list of states, per column, and the shape they came in.

    ``shape`` is ``("fields", type)`` (one list per field), ``("items", type, width)`` (one
    list per position) or ``("objects",)`` (the states themselves, under ``"state"``);
    ``dtype`` the ``state`` column's type where the state's type says it (``StateDtype``).
    """

    shape: tuple
    values: dict[str, list[Any]]
    dtype: pl.DataType | None = None


def has_none(values: list[Any]) -> bool:
    """Whether any of ``values`` is None, without calling ``__eq__`` on them."""
    return any(map(is_, values, repeat(None)))


@dataclasses.dataclass(frozen=True)
class StateDtype:
    """A state shown as one ``state`` column of this type (see the module docstring)."""

    dtype: pl.DataType


#: What :func:`state_class` returns: a dataclass or named tuple (a column per field), the
#: type of a one-column state, or None (nothing says the shape).
StateKind = type | StateDtype | None


def state_class(reducer: Any, initial: Any = None) -> StateKind:
    """The state's shape, as ``reducer``'s return annotation names it (``-> Parcel``,
    ``-> Parcel | None``, ``-> int``, a TypedDict), else as ``initial`` (a fold's state before
    its first event; None: not given) shows it: the columns a result has where no state
    shows them, and the types its columns take (:func:`to_columns`)."""
    try:
        hint = typing.get_type_hints(reducer).get("return")
    except Exception:  # no annotations, or ones that do not resolve here
        hint = None
    kind = _kind_of(_optional(hint)) if hint is not None else None
    if kind is None and initial is not None:
        kind = _kind_of(type(initial))
        if kind is None or kind == StateDtype(pl.Object):  # a dict, say: as its value is
            kind = StateDtype(_series("state", [initial]).dtype)
            if _unsaid(kind.dtype):  # ``[]``, ``{}``, ``{"n": None}``: not a shape
                kind = None
    return kind


def _unsaid(dtype: pl.DataType) -> bool:
    """Whether ``dtype`` is no shape: an object, or a Null or empty struct anywhere in it."""
    if dtype in (pl.Object, pl.Null):
        return True
    if isinstance(dtype, pl.List | pl.Array):
        return _unsaid(dtype.inner)
    if isinstance(dtype, pl.Struct):
        return not dtype.fields or any(_unsaid(f.dtype) for f in dtype.fields)
    return False


def _kind_of(hint: Any) -> StateKind:
    if isinstance(hint, type) and field_names(hint) is not None:
        return hint
    dtype = dtype_of(hint)
    if dtype is not None:
        return StateDtype(dtype)
    if isinstance(hint, type) and hint.__module__ not in ("builtins", "typing"):
        return StateDtype(pl.Object)  # a class of the user's own: its states are objects
    return None


def dtype_of(hint: Any) -> pl.DataType | None:
    """The polars type a state (or a state's field) annotated ``hint`` takes in a result,
    or None where the annotation does not say one (``dict``, ``Any``, a tuple).

    As the states' own values make it: a dataclass or a TypedDict is a Struct (a
    TypedDict's fields in name order, as a dict's keys), times are UTC."""
    hint = _optional(hint)
    if isinstance(hint, type) and typing.is_typeddict(hint):
        fields = sorted(typing.get_type_hints(hint).items())
        dtypes = {name: dtype_of(inner) for name, inner in fields}
        if not dtypes or None in dtypes.values():
            return None
        return pl.Struct(dtypes)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        hints = _hints(hint)
        inner = {f.name: dtype_of(hints.get(f.name)) for f in dataclasses.fields(hint)}
        return None if None in inner.values() else pl.Struct(inner)
    if hint is None or hint is dict or typing.get_origin(hint) in (dict, tuple):
        return None
    try:
        dtype = pl.DataType.from_python(hint)
    except Exception:
        return None
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is None:
        dtype = pl.Datetime("us", "UTC")
    if not isinstance(dtype, pl.DataType) or _unsaid(dtype):  # bare ``list``: List, no inner
        return None
    return dtype


def _optional(hint: Any) -> Any:
    """``X`` of ``X | None`` (None for a union of several types)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(hint) if a is not type(None)]
        return members[0] if len(members) == 1 else None
    return hint


def _hints(kind: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(kind)
    except Exception:
        return {}


def warn_shapeless(frame: pl.DataFrame, reducer: Any, kind: StateKind, what: str) -> None:
    """Warn that ``frame``, an answer with no state, has a placeholder ``state`` column
    because nothing says the state's shape (``kind`` is None); ``what``: how to say it
    otherwise besides an annotation (e.g. "or build the fold with initial=")."""
    if kind is not None or frame.height:
        return
    name = getattr(reducer, "__name__", repr(reducer))
    warnings.warn(
        f"this answer has no state, and nothing says what {name}'s states look like: its "
        "`state` column (type Null) is a placeholder, where an answer with states has their "
        f"columns. Annotate {name}'s return type (`def {name}(state, event) -> MyState`: a "
        f"dataclass, a named tuple, a TypedDict or a type such as int){what} to have the "
        "same columns either way.",
        UnknownStateShape,
        stacklevel=user_level(),
    )


def extract(states: list[Any], kind: StateKind = None) -> Extracted:
    """The values of ``states`` per column (see the module docstring); ``kind``, the state's
    shape (:func:`state_class`), gives the columns when no state is there to, and the type
    of a one-column state."""
    nones = has_none(states)
    present = [s for s in states if s is not None] if nones else states
    kinds = set(map(type, present))
    dtype = kind.dtype if isinstance(kind, StateDtype) else None
    if not kinds and isinstance(kind, type):
        kinds = {kind}
    if len(kinds) == 1:
        kind = next(iter(kinds))
        names = field_names(kind)
        if names is not None:
            values = {}
            for name in names:
                get = attrgetter(name)
                column = f"state_{name}" if name in RESERVED else name
                if nones:
                    values[column] = [None if s is None else get(s) for s in states]
                else:
                    values[column] = list(map(get, states))
            return Extracted(("fields", kind), values)
        if kind in (tuple, list) and not nones:
            widths = set(map(len, states))
            if len(widths) == 1 and 0 not in widths:
                width = widths.pop()
                values = {str(i): list(map(itemgetter(i), states)) for i in range(width)}
                return Extracted(("items", kind, width), values)
    return Extracted(("objects",), {"state": list(states)}, dtype)


def merge(first: Extracted, second: Extracted) -> Extracted | None:
    """The extraction of ``first``'s states followed by ``second``'s, or None when their
    shapes differ (then extract from all the states at once)."""
    if first.shape != second.shape:
        return None
    values = {k: v + second.values[k] for k, v in first.values.items()}
    return Extracted(first.shape, values, first.dtype or second.dtype)


def to_columns(extracted: Extracted) -> dict[str, pl.Series]:
    """The polars columns of an extraction, typed as the state's type says where it does
    (:func:`dtype_of` of each field, or the extraction's ``dtype``): see :func:`conform`."""
    if extracted.shape[0] == "items":
        column = _one_list_column(list(extracted.values.values()))
        if column is not None:
            return {"state": column}
        states = list(zip(*extracted.values.values(), strict=True))
        if extracted.shape[1] is list:
            states = list(map(list, states))
        return {"state": _series("state", states)}
    columns = {name: _series(name, values) for name, values in extracted.values.items()}
    if extracted.shape[0] == "fields":
        for column, dtype in zip(columns, _field_dtypes(extracted.shape[1]), strict=True):
            columns[column] = conform(columns[column], dtype)
    elif extracted.dtype is not None:
        columns["state"] = conform(columns["state"], extracted.dtype)
    return columns


def conform(column: pl.Series, dtype: pl.DataType | None) -> pl.Series:
    """``column`` as type ``dtype`` (the state's type's) where that loses nothing: a column of
    nulls (or no values) takes it, and integers a float or wider integer type (``-> float``
    states that happen to be whole). Others keep the type their values make (floats of an
    ``-> int`` state are not cut to integers; a TypedDict's keys that some state lacks)."""
    if dtype is None or column.dtype == dtype:
        return column
    if dtype == pl.Object:
        if column.dtype == pl.Null:
            return pl.Series(column.name, column.to_list(), dtype=pl.Object)
        return column
    widens = column.dtype.is_integer() and (dtype.is_float() or dtype.is_integer())
    if column.dtype == pl.Null or widens:
        try:
            return column.cast(dtype, strict=True)
        except Exception:  # polars.exceptions.InvalidOperationError: 2**70 as Int64
            return column
    return column


def state_columns(states: list[Any], kind: StateKind = None) -> dict[str, pl.Series]:
    """The state objects as columns: the fields of a dataclass (or named tuple), else one
    ``state`` column (null where a state is None); ``kind`` as for :func:`extract`."""
    return to_columns(extract(states, kind))


def field_names(kind: type) -> list[str] | None:
    """The field names of a dataclass or named tuple type (None for any other type).

    A dataclass whose fields ``dataclasses.fields`` no longer sees (rebuilt by a pickler
    that lost their markers) is refused: its states would otherwise have no columns."""
    if dataclasses.is_dataclass(kind):
        names = [f.name for f in dataclasses.fields(kind)]
        if not names and kind.__dataclass_fields__:
            raise SchemaError(
                f"the state class {kind.__qualname__} lost its dataclass fields "
                f"({', '.join(kind.__dataclass_fields__)}) on its way here: it was rebuilt "
                "by a pickler that does not keep them (cloudpickle before 3, as pyspark 3.5 "
                "bundles). Ask through concursus_lab.spark, which sends them whole, or "
                "define the class in a module the workers import."
            )
        return names
    if issubclass(kind, tuple) and hasattr(kind, "_fields"):
        return list(kind._fields)
    return None


def _field_dtypes(kind: type) -> list[pl.DataType | None]:
    """The polars type of each field's annotation (:func:`dtype_of`; None where it says
    none)."""
    hints = _hints(kind)
    return [dtype_of(hints.get(name)) for name in field_names(kind) or []]


def _one_list_column(parts: list[list[Any]]) -> pl.Series | None:
    """Positions of equal-length tuples as one List column (None: no common element type).

    Built a position at a time and joined by polars; only positions of different types are
    converted value by value, as polars would convert the tuples themselves."""
    series = [_series(str(i), part) for i, part in enumerate(parts)]
    dtypes = {s.dtype for s in series} - {pl.Null}
    if len(dtypes) > 1:
        flat = _series("state", [x for row in zip(*parts, strict=True) for x in row])
        if flat.dtype == pl.Object:
            return None
        return flat.reshape((len(parts[0]), len(parts))).cast(pl.List(flat.dtype))
    if pl.Object in dtypes:
        return None
    dtype = next(iter(dtypes), pl.Null)
    frame = pl.DataFrame([s.cast(dtype) for s in series])
    joined = frame.select(pl.concat_arr(pl.all()).alias("state")).to_series()
    return joined.cast(pl.List(dtype))


def _series(name: str, values: list[Any]) -> pl.Series:
    if set(map(type, values)) - {type(None)} == {dict}:
        made = _dicts(name, values)
        if made is not None:
            return made
    try:
        return pl.Series(name, values, strict=False)
    except Exception:
        return pl.Series(name, values, dtype=pl.Object)


def _dicts(name: str, values: list[Any]) -> pl.Series | None:
    """Dicts (or None) as one Struct, its fields the keys in name order, each key's values
    made by :func:`_series` (so dicts within are sorted too); None when there are no keys or
    two keys share a name (polars decides those as it would)."""
    nones = has_none(values)
    rows = [{} if v is None else v for v in values] if nones else values
    keys = sorted(set().union(*map(dict.keys, rows)), key=str)
    if not keys or len(set(map(str, keys))) < len(keys):
        return None
    parts = [_series(str(key), list(map(methodcaller("get", key), rows))) for key in keys]
    struct = pl.struct(parts, eager=True).alias(name)
    if nones:
        missing = pl.Series(list(map(is_, values, repeat(None))))
        struct = pl.select(pl.when(missing).then(None).otherwise(struct)).to_series()
    return struct.alias(name)
