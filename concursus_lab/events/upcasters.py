"""Upcasters: how an older version of an event becomes the one declared now.

Events change: a field is added, a field is renamed, an event type is renamed, one event is
split into several. Old events stay stored as they were written, under their old name and
version. An :class:`~concursus_lab.events.types.EventTypes` declares, per older ``(name,
version)``, one upcaster that says what it becomes (``types.upcast(...)``): one step of a
chain that ends at a declared event type. This module holds the declarations and checks the
chain as each step is declared; ``upcast.py`` applies them, where rows are decoded.

A step is one of:

* a **rename** of the event (``to=`` another name or version, nothing else said): the
  parameters are kept as they are;
* **declared changes** of the parameters: ``rename={"old": "new"}``, ``drop=["gone"]``,
  ``add={"priority": 0}`` (a parameter added with its default, where the event lacks it),
  applied in that order;
* a **columnar function** ``columns=f``: ``f(parameters: polars.DataFrame) ->
  polars.DataFrame``, called once per version group (once per shape of its parameters, when
  a key's JSON kind varies within it), one row per event, row by row;
* a **per-event function** ``each=f``: ``f(parameters: dict) -> dict``, for what cannot be
  vectorised;
* a **split** (``to=[a, b, ...]``): the function returns one frame (or, per event, one dict or
  None to leave that part out) per target, in the order of ``to``.

The chain is checked when each step is declared, so that a types object never holds a chain
that cannot finish: an upcaster upcasts *to something this types object decodes already* (a
declared event type, or an older version whose upcaster is declared), so chains are declared
from their newest step back. What is refused, with an error naming it:

* a **gap**: a target that is neither declared nor upcast further;
* a **cycle**: a step whose targets lead back to its source;
* **two upcasters for one version**, or an upcaster from a version that is declared (it
  decodes as it is: the upcaster would never run).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import polars as pl

from concursus_lab.exceptions import SchemaError
from concursus_lab.frame import canonical_json

Key = tuple[str, str]

#: The column that holds an upcast row as it was stored (``upcast.py``).
STORED = "stored"
STORED_DTYPE = pl.Struct(
    {"name": pl.String, "version": pl.String, "parameters": pl.String, "part": pl.Int32}
)

#: The forms of a step, as :attr:`Upcaster.form` names them.
FORMS = ("rename", "declared", "columns", "each")


@dataclasses.dataclass(frozen=True, eq=False)
class Upcaster:
    """One declared step: what events of ``source`` (name, version) become.

    ``targets`` holds one (name, version) or, for a split, several; ``form`` is one of
    :data:`FORMS`; ``function`` is the user's function (``columns`` and ``each``).
    """

    source: Key
    targets: tuple[Key, ...]
    form: str
    rename: tuple[tuple[str, str], ...] = ()
    drop: tuple[str, ...] = ()
    add: tuple[tuple[str, Any], ...] = ()
    function: Callable[..., Any] | None = None

    @property
    def split(self) -> bool:
        """Whether one event becomes several."""
        return len(self.targets) > 1

    @property
    def label(self) -> str:
        """The step as one line: ``receivedAtDepot v0 -> v1 (add priority=0)``."""
        return f"{show(self.source)} -> {', '.join(show(t, self.source) for t in self.targets)}" + (
            f" ({self.what})" if self.what else ""
        )

    @property
    def what(self) -> str:
        """What the step does to the parameters, in words ("" for a rename of the event)."""
        if self.form in ("columns", "each"):
            name = getattr(self.function, "__name__", type(self.function).__name__)
            return f"{name}, {'per event' if self.form == 'each' else 'columnar'}"
        parts = [f"rename {a} -> {b}" for a, b in self.rename]
        parts += [f"drop {d}" for d in self.drop]
        parts += [f"add {k}={v!r}" for k, v in self.add]
        return ", ".join(parts)


def show(key: Key, source: Key | None = None) -> str:
    """``name vN``, or ``vN`` alone after a source of the same name."""
    if source is not None and key[0] == source[0]:
        return f"v{key[1]}"
    return f"{key[0]} v{key[1]}"


def key_of(value: Any, types: Any, what: str) -> Key:
    """A (name, version) from an event name (version "0"), a pair, or a declared class."""
    if isinstance(value, type):
        declared = types.event_type(value)
        return (declared.name, declared.version)
    if isinstance(value, str) and value:
        return (value, "0")
    if (
        isinstance(value, tuple)
        and len(value) == 2
        and isinstance(value[0], str)
        and value[0]
        and isinstance(value[1], str | int)
    ):
        return (value[0], str(value[1]))
    raise SchemaError(
        f"`{what}` must be an event name (version '0'), a (name, version) pair or a declared "
        f"class, e.g. ('receivedAtDepot', '1'); got {value!r}."
    )


def make(
    types: Any,
    source: Any,
    to: Any,
    *,
    rename: Mapping[str, str] | None,
    drop: Iterable[str],
    add: Mapping[str, Any] | None,
    columns: Callable[..., Any] | None,
    each: Callable[..., Any] | None,
) -> Upcaster:
    """The :class:`Upcaster` the arguments of ``EventTypes.upcast`` describe (not yet
    checked against the chain: :func:`check` does that)."""
    key = key_of(source, types, "source")
    many = isinstance(to, list)
    if many and len(to) < 2:
        raise SchemaError(
            f"a split needs two or more targets in `to`, got {to!r}; for one target, pass it "
            "alone: to=('name', 'version')."
        )
    targets = tuple(key_of(t, types, "to") for t in to) if many else (key_of(to, types, "to"),)
    if len(set(targets)) < len(targets):
        raise SchemaError(f"`to` names a target twice: {list(targets)!r}.")
    changes = {
        "rename": dict(rename or {}),
        "drop": tuple(drop),
        "add": dict(add or {}),
    }
    declared = any(changes.values())
    functions = [f for f in (columns, each) if f is not None]
    if len(functions) > 1 or (functions and declared):
        raise SchemaError(
            f"the upcaster from {show(key)} says how in more than one way; give one of "
            "`columns=` (a function over a polars frame of the parameters), `each=` (a "
            "function over one event's parameters) or the declared changes `rename=`, "
            "`drop=`, `add=`."
        )
    for f in functions:
        if not callable(f):
            raise SchemaError(f"`columns=` and `each=` take a function, got {f!r}.")
    if len(targets) > 1 and not functions:
        raise SchemaError(
            f"a split of {show(key)} into {len(targets)} events needs a function that makes "
            "each part: columns=f (returns one frame per target) or each=f (returns one dict, "
            "or None, per target)."
        )
    _check_changes(key, changes)
    form = "columns" if columns else "each" if each else "declared" if declared else "rename"
    return Upcaster(
        key,
        targets,
        form,
        tuple(changes["rename"].items()),
        changes["drop"],
        tuple(changes["add"].items()),
        columns or each,
    )


def _check_changes(key: Key, changes: dict[str, Any]) -> None:
    for old, new in changes["rename"].items():
        if not isinstance(old, str) or not isinstance(new, str) or not old or not new:
            raise SchemaError(
                f"`rename` maps parameter names to new names, e.g. {{'depot': 'depotId'}}; "
                f"got {old!r}: {new!r} (upcaster from {show(key)})."
            )
    for name in changes["drop"]:
        if not isinstance(name, str) or not name:
            raise SchemaError(f"`drop` lists parameter names, got {name!r} ({show(key)}).")
    for name, value in changes["add"].items():
        try:
            canonical_json.dumps({name: value})
        except Exception as exc:
            raise SchemaError(
                f"`add` gives {name!r} the default {value!r}, which is not a JSON value "
                f"({exc}); use a string, number, boolean, None, list, dict, date or datetime."
            ) from None


def check(step: Upcaster, declared: Mapping[Key, Any], chain: Mapping[Key, Upcaster]) -> None:
    """Refuse ``step`` if it would make a cycle, a gap, or a second upcaster for a version
    (``declared``: the declared (name, version) keys; ``chain``: the upcasters so far)."""
    source = step.source
    cycle = _cycle(step, chain)
    loop = f" ({'a cycle: ' + ' -> '.join(show(k) for k in cycle)})" if cycle else ""
    if source in declared:
        raise SchemaError(
            f"{show(source)} is declared ({declared[source].cls.__name__}): it decodes as it "
            f"is, so an upcaster from it would never run{loop}. Upcast from an older version "
            "that no class declares."
        )
    if source in chain:
        raise SchemaError(
            f"two upcasters for {show(source)}: {chain[source].label} and {step.label}"
            f"{loop}; one version becomes one thing (a split is one upcaster with several "
            "targets: to=[...])."
        )
    for target in step.targets:
        if target in declared or target in chain:
            continue
        versions = sorted({v for n, v in (*declared, *chain) if n == target[0]})
        known = f" (versions of {target[0]!r} it knows: {', '.join(map(repr, versions))})"
        raise SchemaError(
            f"a gap in the chain: {step.label} upcasts to {show(target)}, which is neither "
            f"a declared event type nor upcast further{known if versions else ''}. Declare "
            f"the upcaster from {show(target)} first (chains are declared from their newest "
            "step back), or upcast straight to a declared version."
        )


def _cycle(step: Upcaster, chain: Mapping[Key, Upcaster]) -> list[Key] | None:
    """The keys of a cycle ``step`` would close (source first and last), if any."""
    path: list[Key] = [step.source]

    def walk(key: Key) -> list[Key] | None:
        if key == step.source:
            return [*path, key]
        if key not in chain or key in path:
            return None
        path.append(key)
        for target in chain[key].targets:
            found = walk(target)
            if found:
                return found
        path.pop()
        return None

    for target in step.targets:
        found = walk(target)
        if found:
            return found
    return None


def ends(chain: Mapping[Key, Upcaster], key: Key) -> tuple[Key] | None:
    """The declared key ``key`` ends as through the chain, or None when a step on the way
    splits it."""
    while key in chain:
        step = chain[key]
        if step.split:
            return None
        key = step.targets[0]
    return (key,)
