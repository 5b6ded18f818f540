"""The JSON kind of a parameter value: one word, the same wherever a kind is named.

``cl.frame.schemas`` reports each parameter key's kinds per event version, and an upcaster's
columnar form is given one polars frame per *shape* of the parameters (keys and their
kinds); both name kinds here. Integers and other numbers are told apart, because a declared
``int`` parameter decodes only the one.

>>> [kind_of(v) for v in ("a", 1, 1.5, True, None, [1], {"a": 1})]
['string', 'int', 'float', 'bool', 'null', 'array', 'object']
>>> shape_of({"b": 1, "a": "x"})
(('a', 'string'), ('b', 'int'))
"""

from __future__ import annotations

from typing import Any

#: Every kind :func:`kind_of` names.
KINDS = ("string", "int", "float", "bool", "null", "array", "object")

_NAMES = {
    str: "string",
    bool: "bool",
    int: "int",
    float: "float",
    type(None): "null",
    list: "array",
    dict: "object",
}


def kind_of(value: Any) -> str:
    """The JSON kind of a parsed JSON value (``"other"`` for anything JSON does not hold)."""
    return _NAMES.get(type(value), "other")


def shape_of(parameters: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """The shape of parsed parameters: ``(key, kind)`` pairs, keys sorted."""
    return tuple((key, kind_of(parameters[key])) for key in sorted(parameters))
