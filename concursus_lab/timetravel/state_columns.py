"""States as columns: a reducer's state objects turned into polars columns.

A dataclass (or named tuple) state becomes one column per field; tuples or lists of one
length and one element type become one List column ``state``; anything else sits in one
``state`` column (an Object column where polars has no type for it). A None state is a
null in every column. Dicts (dict states, or the dicts in a field) become a Struct whose
fields are their keys in name order, at every depth, as an event's parameters are: so the
columns never depend on which states came first, and the parts of a history answered apart
(Spark's buckets) make the columns the whole would.

A result's shape never depends on whether it is empty: where no state is there to show its
fields (no states at all, or only None), the columns come from the reducer's state class, the
dataclass or named tuple its return annotation names (:func:`state_class`); a column whose
values are all None takes its field's annotated type. Annotate the reducer
(``def parcel_state(state, event) -> ParcelState``) and a quiet day has a busy day's columns;
without one, such a result has one ``state`` column.

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
from itertools import repeat
from operator import attrgetter, is_, itemgetter, methodcaller
from typing import Any

import polars as pl

from concursus_lab.exceptions import SchemaError

#: Columns a state_at result has besides the state's: a field of that name gets a prefix.
RESERVED = ("aggregate_id", "events_applied", "last_event_timestamp")


@dataclasses.dataclass
class Extracted:
    """Values pulled out of a list of states, per column, and the shape they came in.

    ``shape`` is ``("fields", type)`` (one list per field), ``("items", type, width)`` (one
    list per position) or ``("objects",)`` (the states themselves, under ``"state"``).
    """

    shape: tuple
    values: dict[str, list[Any]]


def has_none(values: list[Any]) -> bool:
    """Whether any of ``values`` is None, without calling ``__eq__`` on them."""
    return any(map(is_, values, repeat(None)))


def state_class(reducer: Any) -> type | None:
    """The dataclass or named tuple ``reducer``'s return annotation names (``-> Parcel`` or
    ``-> Parcel | None``), else None: the state class a result's columns come from where
    no state shows them."""
    try:
        hint = typing.get_type_hints(reducer).get("return")
    except Exception:  # no annotations, or ones that do not resolve here
        return None
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(hint) if a is not type(None)]
        hint = members[0] if len(members) == 1 else None
    if isinstance(hint, type) and field_names(hint) is not None:
        return hint
    return None


def extract(states: list[Any], kind: type | None = None) -> Extracted:
    """The values of ``states`` per column (see the module docstring); ``kind``, the state
    class (:func:`state_class`), gives the columns when no state is there to."""
    nones = has_none(states)
    present = [s for s in states if s is not None] if nones else states
    kinds = set(map(type, present))
    if not kinds and kind is not None:
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
    return Extracted(("objects",), {"state": list(states)})


def merge(first: Extracted, second: Extracted) -> Extracted | None:
    """The extraction of ``first``'s states followed by ``second``'s, or None when their
    shapes differ (then extract from all the states at once)."""
    if first.shape != second.shape:
        return None
    return Extracted(first.shape, {k: v + second.values[k] for k, v in first.values.items()})


def to_columns(extracted: Extracted) -> dict[str, pl.Series]:
    """The polars columns of an extraction (a field's column whose values are all None
    has the field's annotated type)."""
    if extracted.shape[0] == "items":
        column = _one_list_column(list(extracted.values.values()))
        if column is not None:
            return {"state": column}
        states = list(zip(*extracted.values.values(), strict=True))
        if extracted.shape[1] is list:
            states = list(map(list, states))
        return {"state": _series("state", states)}
    columns = {name: _series(name, values) for name, values in extracted.values.items()}
    if extracted.shape[0] == "fields" and any(c.dtype == pl.Null for c in columns.values()):
        for column, dtype in zip(columns, _field_dtypes(extracted.shape[1]), strict=True):
            if columns[column].dtype == pl.Null and dtype is not None:
                columns[column] = columns[column].cast(dtype)
    return columns


def state_columns(states: list[Any], kind: type | None = None) -> dict[str, pl.Series]:
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
    """The polars type of each field's annotation (None where polars has none for it);
    times are UTC, as every time in a result is."""
    try:
        hints = typing.get_type_hints(kind)
    except Exception:
        hints = {}
    dtypes: list[pl.DataType | None] = []
    for name in field_names(kind) or []:
        try:
            dtype = pl.DataType.from_python(hints[name])
        except Exception:
            dtype = None
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is None:
            dtype = pl.Datetime("us", "UTC")
        dtypes.append(dtype)
    return dtypes


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
