"""What an event changed: a state's fields, before and after, compared field by field.

A state's fields are a dataclass's fields, a named tuple's, an attrs class's
(``__attrs_attrs__``) or a dict's keys; any other value (a number, a string, a plain tuple)
is one field, ``state``. No state yet (None) has no fields, so the first state's fields all
change from None. :func:`changes` lists the fields whose values differ, in the after
state's field order, then the fields only the before state had. It is what ``cl.trace``
shows for every event.

>>> import dataclasses
>>> @dataclasses.dataclass(frozen=True)
... class Bulb:
...     wattage: int
...     on: bool = False
>>> changes(Bulb(60), Bulb(60, on=True))
(Change(field='on', before=False, after=True),)
>>> changes(None, {"count": 1})
(Change(field='count', before=None, after=1),)
>>> changes(3, 4)
(Change(field='state', before=3, after=4),)
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

from concursus_lab.timetravel.state_columns import field_names

#: The one field of a state that has no fields of its own (a number, a string, a tuple).
PLAIN = "state"


class Change(NamedTuple):
    """One field an event changed: its name, its value before and after."""

    field: str
    before: Any
    after: Any


def fields(state: Any) -> dict[str, Any]:
    """``field -> value`` of a state (see the module docstring); ``{}`` for None."""
    if state is None:
        return {}
    if isinstance(state, dict):
        return {str(key): value for key, value in state.items()}
    names = _names(type(state))
    if names is None:
        return {PLAIN: state}
    return {name: getattr(state, name) for name in names}


def changes(before: Any, after: Any) -> tuple[Change, ...]:
    """The fields whose values differ between ``before`` and ``after`` (either may be None)."""
    if before is after:
        return ()
    kind = type(after)
    names = _names(kind) if type(before) is kind and kind is not dict else None
    if names is not None:  # the usual case, two states of one class: no dicts
        return tuple(
            Change(name, a, b)
            for name in names
            if _differ(a := getattr(before, name), b := getattr(after, name))
        )
    old, new = fields(before), fields(after)
    out = [
        Change(name, old.get(name), value)
        for name, value in new.items()
        if _differ(old.get(name), value)
    ]
    out += [Change(name, value, None) for name, value in old.items() if name not in new]
    return tuple(out)


@functools.lru_cache(maxsize=256)
def _names(kind: type) -> tuple[str, ...] | None:
    """The field names of a state class (dataclass, named tuple, attrs), None for others."""
    names = field_names(kind)
    if names is None and hasattr(kind, "__attrs_attrs__"):
        names = [a.name for a in kind.__attrs_attrs__]
    return None if names is None else tuple(names)


def _differ(a: Any, b: Any) -> bool:
    """Whether two field values differ; a comparison that fails or is not a truth value
    (NumPy arrays) counts as a difference unless both are the same object."""
    if a is b:
        return False
    try:
        return bool(a != b)
    except Exception:
        return True
