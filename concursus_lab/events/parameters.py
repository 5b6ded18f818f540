"""An event type's parameters: what a class declares, and checking a value against it.

A parameter is a dataclass field of a declared event class; its annotation says what kind
of JSON value it holds (see :mod:`concursus_lab.events.types` for the list). :func:`coerce`
is the one check of a value against its declaration, used when encoding instances and when
decoding rows that are not on the fast path.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import inspect
import types as _pytypes
import typing
from typing import Any

from concursus_lab.common.text import shown
from concursus_lab.common.time import to_utc
from concursus_lab.exceptions import SchemaError
from concursus_lab.frame.canonical_json import java_value

#: Attributes every event instance carries besides its parameters.
METADATA = ("aggregate_id", "event_timestamp", "processing_timestamp", "stream_id")

# Each kind's JSON value in canonical (compact) form, for the fast path, with one capture
# group around what is then converted. Strings with escapes take the slow path.
FAST = {
    "str": r'"([^"\\\x00-\x1f]*)"',
    "int": r"(-?(?:0|[1-9][0-9]{0,17}))",
    "float": r"(-?(?:0|[1-9][0-9]{0,17})(?:\.[0-9]{1,17})?(?:[eE][+-]?[0-9]{1,2})?)",
    "bool": r"(true|false)",
    "date": r'"([0-9]{4}-[0-9]{2}-[0-9]{2})"',
}


class _NoDefault:
    def __repr__(self) -> str:
        return "NO_DEFAULT"


#: The ``default`` of a :class:`Parameter` that has none.
NO_DEFAULT: Any = _NoDefault()


@dataclasses.dataclass(frozen=True)
class Parameter:
    """One declared parameter: its name, its kind of value, and whether it may be absent."""

    name: str
    kind: str  # str int float bool date datetime list dict any
    optional: bool = False
    item: Parameter | None = None  # the item kind of ``list[X]``
    default: Any = NO_DEFAULT  # a callable giving the default value

    @property
    def required(self) -> bool:
        return not self.optional and self.default is NO_DEFAULT

    def describe(self) -> str:
        text = f"list[{self.item.kind}]" if self.item is not None else self.kind
        return text + (" | None" if self.optional else "")


# ------------------------------------------------------------------------- declaration


def parameters_of(cls: type) -> tuple[Parameter, ...]:
    own = inspect.get_annotations(cls)
    try:
        hints = typing.get_type_hints(cls)
    except Exception as exc:
        raise TypeError(
            f"the annotations of {cls.__name__} cannot be resolved ({exc}); use the types "
            "str, int, float, bool, datetime.date, datetime.datetime, list, dict, Any or "
            "Optional[...] of them, importable where the class is defined."
        ) from exc
    parameters = []
    for name in own:
        if name in METADATA:
            raise TypeError(
                f"{cls.__name__}.{name}: {name!r} is carried by every event instance; "
                "rename the parameter."
            )
        annotation = hints.get(name, own[name])
        if typing.get_origin(annotation) is typing.ClassVar:
            continue
        parameter = _parameter(cls.__name__, name, annotation)
        default = cls.__dict__.get(name, dataclasses.MISSING)
        if isinstance(default, dataclasses.Field):
            default = (
                default.default_factory
                if default.default_factory is not dataclasses.MISSING
                else _Constant(default.default)
                if default.default is not dataclasses.MISSING
                else dataclasses.MISSING
            )
        elif default is not dataclasses.MISSING:
            default = _Constant(default)
        if default is not dataclasses.MISSING:
            parameter = dataclasses.replace(parameter, default=default)
        parameters.append(parameter)
    return tuple(parameters)


@dataclasses.dataclass(frozen=True)
class _Constant:
    """A default value, called like a ``default_factory``."""

    value: Any

    def __call__(self) -> Any:
        return self.value


_SIMPLE = {
    str: "str",
    int: "int",
    float: "float",
    bool: "bool",
    dt.date: "date",
    dt.datetime: "datetime",
    list: "list",
    dict: "dict",
    Any: "any",
}


def _parameter(owner: str, name: str, annotation: Any) -> Parameter:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, _pytypes.UnionType):
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1 and len(args) == 2:
            return dataclasses.replace(_parameter(owner, name, rest[0]), optional=True)
    elif origin is list:
        item = _parameter(owner, name, args[0]) if args else None
        if item is not None and (item.kind in ("list", "dict") or item.optional):
            item = None  # nested containers are taken as they come
        return Parameter(name, "list", item=item)
    elif origin is dict:
        return Parameter(name, "dict")
    elif annotation in _SIMPLE:
        return Parameter(name, _SIMPLE[annotation])
    raise TypeError(
        f"{owner}.{name}: unsupported parameter type {annotation!r}; use str, int, float, "
        "bool, datetime.date, datetime.datetime, list, list[X], dict, Any, or Optional[X]."
    )


# ------------------------------------------------------------------------- value checking


def coerce(p: Parameter, value: Any) -> tuple[bool, Any]:
    """(True, value as the declared type) or (False, the reason it is not)."""
    if value is None:
        if p.optional or p.kind == "any":
            return True, None
        return False, f"{p.name!r} is null but declared {p.describe()}"
    kind = p.kind
    t = type(value)
    if kind == "str":
        ok = t is str
    elif kind == "int":
        ok = t is int
    elif kind == "float":
        ok = t is float or t is int
        value = float(value) if ok else value
    elif kind == "bool":
        ok = t is bool
    elif kind == "date":
        return _to_date(p, value)
    elif kind == "datetime":
        return _to_datetime(p, value)
    elif kind == "list":
        ok = t is list
        if ok and p.item is not None:
            out = []
            for item in value:
                good, item = coerce(p.item, item)
                if not good:
                    return False, f"{p.name!r} has an item of the wrong type: {item}"
                out.append(item)
            value = out
    elif kind == "dict":
        ok = t is dict
    else:
        ok = True
    if ok:
        return True, value
    return False, f"{p.name!r} should be {p.describe()}, got {shown(value)} ({t.__name__})"


def _to_date(p: Parameter, value: Any) -> tuple[bool, Any]:
    try:
        if type(value) is str:
            return True, dt.date.fromisoformat(value)
        if type(value) is list and len(value) == 3 and all(type(v) is int for v in value):
            return True, dt.date(*value)
        if type(value) is dt.date:
            return True, value
    except ValueError:
        pass
    return False, (
        f'{p.name!r} should be a date such as "1968-05-28" or [1968, 5, 28], got {shown(value)}'
    )


def _to_datetime(p: Parameter, value: Any) -> tuple[bool, Any]:
    try:
        if type(value) in (int, float):
            return True, dt.datetime.fromtimestamp(value, dt.UTC)
        if type(value) is str or isinstance(value, dt.datetime):
            return True, to_utc(value, p.name)
    except (ValueError, OverflowError, OSError, SchemaError):
        pass
    return False, (
        f"{p.name!r} should be an instant (ISO 8601 text or epoch seconds), got {shown(value)}"
    )


def jsonable(value: Any) -> Any:
    """A checked parameter value as Java Concursus's Jackson writes it: an instant as epoch
    seconds with nine decimals (``1459420277.981000000``), a date as ``[1968, 5, 28]``
    (:func:`~concursus_lab.frame.canonical_json.java_value`, the one rule; ``dumps`` applies
    it inside lists and objects too).

    >>> from concursus_lab.frame.canonical_json import dumps
    >>> dumps(jsonable(dt.datetime(2016, 3, 31, 10, 31, 17, 981000, tzinfo=dt.UTC)))
    '1459420277.981000000'
    >>> dumps(jsonable(dt.datetime(1969, 12, 31, 23, 59, 59, 500000, tzinfo=dt.UTC)))
    '-0.500000000'
    >>> jsonable(dt.date(1968, 5, 28))
    [1968, 5, 28]
    """
    return java_value(value)
