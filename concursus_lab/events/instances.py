"""Making a declared class an event class: a frozen dataclass that carries its metadata.

Every instance carries ``aggregate_id``, ``event_timestamp``, ``processing_timestamp`` and
``stream_id`` as keyword-only fields besides its parameters. Decoding builds instances
through the class's ``_concursus_make`` (see :func:`_maker`) rather than ``__init__``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import inspect
from collections.abc import Callable
from typing import Any

from concursus_lab.common.time import to_utc
from concursus_lab.events.parameters import Parameter

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_US = dt.timedelta(microseconds=1)


class _LazyTime:
    """A timestamp field filled from epoch microseconds on first read.

    Decoding builds instances without calling ``__init__`` (it is the costly part of a
    replay) and stores the times as integers; the datetime is made only if the event's
    time is read, then cached. Instances made by calling the class hold the datetime itself,
    which hides this descriptor.
    """

    def __init__(self, name: str, raw: str) -> None:
        self.name, self.raw = name, raw

    def __get__(self, instance: Any, owner: type) -> Any:
        if instance is None:
            return None
        value = _EPOCH + instance.__dict__[self.raw] * _US
        instance.__dict__[self.name] = value
        return value


def make_event_class(cls: type, parameters: tuple[Parameter, ...]) -> None:
    user_post_init = cls.__dict__.get("__post_init__")
    annotations = dict(inspect.get_annotations(cls))
    annotations.update(
        aggregate_id=str,
        event_timestamp=dt.datetime | None,
        processing_timestamp=dt.datetime | None,
        stream_id=str,
    )
    cls.__annotations__ = annotations
    cls.aggregate_id = dataclasses.field(default="", kw_only=True)
    cls.event_timestamp = dataclasses.field(default=None, kw_only=True)
    cls.processing_timestamp = dataclasses.field(default=None, kw_only=True, repr=False)
    cls.stream_id = dataclasses.field(default="", kw_only=True, repr=False)

    def __post_init__(self: Any) -> None:  # times given by hand become aware UTC datetimes
        for key in ("event_timestamp", "processing_timestamp"):
            value = self.__dict__.get(key)
            if value is not None and not (
                type(value) is dt.datetime and value.tzinfo is not None and not value.utcoffset()
            ):
                object.__setattr__(self, key, to_utc(value, key))
        if user_post_init is not None:
            user_post_init(self)

    cls.__post_init__ = __post_init__
    if "__repr__" not in cls.__dict__:
        cls.__repr__ = _event_repr
    dataclasses.dataclass(frozen=True)(cls)
    cls.event_timestamp = _LazyTime("event_timestamp", "_event_us")
    cls.processing_timestamp = _LazyTime("processing_timestamp", "_processing_us")
    cls._concursus_make = _maker(cls, parameters, fast=user_post_init is None)


def _event_repr(self: Any) -> str:
    """Parameters, aggregate id and event time, in a form the class accepts back."""
    event_type = type(self)._concursus_event_type
    parts = [f"{p.name}={getattr(self, p.name)!r}" for p in event_type.parameters]
    parts.append(f"aggregate_id={self.aggregate_id!r}")
    when = self.event_timestamp
    if isinstance(when, dt.datetime):
        when = when.isoformat(sep=" ")
    parts.append(f"event_timestamp={when!r}")
    return f"{type(self).__qualname__}({', '.join(parts)})"


def _maker(cls: type, parameters: tuple[Parameter, ...], *, fast: bool) -> Callable:
    """A function (parameters..., aggregate_id, event_us, processing_us, stream_id) -> instance.

    The fast one fills the instance's ``__dict__`` directly, skipping ``__init__``: it is
    used only on values already checked by the decoder, and only when the class has no
    ``__post_init__`` of its own.
    """
    args = [f"a{i}" for i in range(len(parameters))]
    if not fast:

        def make(*values):
            *params, aggregate_id, event_us, processing_us, stream_id = values
            return cls(
                *params,
                aggregate_id=aggregate_id,
                event_timestamp=_EPOCH + event_us * _US,
                processing_timestamp=_EPOCH + processing_us * _US,
                stream_id=stream_id,
            )

        return make
    items = [f"{p.name!r}: {a}" for p, a in zip(parameters, args, strict=True)]
    items += ["'aggregate_id': m0", "'_event_us': m1", "'_processing_us': m2", "'stream_id': m3"]
    source = (
        f"def make({', '.join([*args, 'm0', 'm1', 'm2', 'm3'])}):\n"
        "    o = _new(_cls)\n"
        f"    _set(o, '__dict__', {{{', '.join(items)}}})\n"
        "    return o\n"
    )
    namespace = {"_new": object.__new__, "_set": object.__setattr__, "_cls": cls}
    # measured: decoding 130k parcel events takes 0.33 s with this, 0.47 s with a closure
    exec(source, namespace)  # generated from identifiers only, as dataclasses does
    return namespace["make"]
