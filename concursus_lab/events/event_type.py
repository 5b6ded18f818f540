"""One declared event type, and the lookups the decoder asks of the types of an aggregate.

:class:`~concursus_lab.events.types.EventTypes` declares event types and satisfies
:class:`Lookups`; the decoder and the upcaster chain (``events/decode``, ``events/upcast``)
read declarations only through :class:`Lookups`, so they never import the declaring module
(which imports them to decode).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Protocol

from concursus_lab.events.parameters import Parameter
from concursus_lab.events.upcasters import Key, Upcaster
from concursus_lab.frame.schema import INITIAL, NEITHER, TERMINAL

KINDS = {"initial": INITIAL, "event": NEITHER, "terminal": TERMINAL}


@dataclasses.dataclass(frozen=True)
class EventType:
    """A declared event type: (aggregate type, name, version), its class and parameters."""

    aggregate_type: str
    name: str
    version: str
    kind: str  # "initial", "event" or "terminal"
    cls: type
    parameters: tuple[Parameter, ...]
    aliases: tuple[tuple[str, str], ...] = ()

    @property
    def characteristics(self) -> int:
        return KINDS[self.kind]


class Lookups(Protocol):
    """What decoding asks of the event types of one aggregate type."""

    aggregate_type: str

    def __iter__(self) -> Iterator[EventType]: ...

    @property
    def by_key(self) -> Mapping[Key, EventType]:
        """Each declared ``(name, version)`` (aliases included) and its event type."""
        ...

    @property
    def chain(self) -> Mapping[Key, Upcaster]:
        """Each ``(name, version)`` an upcaster starts from, and that upcaster."""
        ...

    def unknown_reason(self, name: str, version: str) -> str:
        """Why a row of ``(name, version)`` does not decode, with the nearest names."""
        ...
