"""What decoding returns, and how the reasons it could not are told: the commonest first.

:class:`Decoded` is :meth:`~concursus_lab.events.types.EventTypes.decode`'s answer: the
instances and the rows it could not read, each with a ``reason``. Wherever those reasons are
told (a summary, a warning, an error), :func:`commonest` chooses which: the most frequent
first, ties by name, at most :data:`MAX_SHOWN`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any

import polars as pl

#: How many reasons (or rows) a message shows before it says "... and N more".
MAX_SHOWN = 3


@dataclasses.dataclass(frozen=True, eq=False)
class Decoded:
    """What :meth:`EventTypes.decode` returns: the instances and the rows it could not read.

    Attributes
    ----------
    aggregate_type
        The aggregate type decoded.
    events
        Instances, in the order of their rows.
    undecodable
        The rows that could not be decoded, with a ``reason`` column.
    other_aggregate_types
        How many rows were of another aggregate type (not decoded).
    """

    aggregate_type: str
    events: list[Any]
    undecodable: pl.DataFrame
    other_aggregate_types: int = 0

    def __len__(self) -> int:
        return len(self.events)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.events)

    def __repr__(self) -> str:
        text = (
            f"Decoded {self.aggregate_type!r}: {len(self.events):,} events, "
            f"{self.undecodable.height:,} undecodable"
        )
        if self.other_aggregate_types:
            text += f", {self.other_aggregate_types:,} of other aggregate types"
        for reason, count in reason_counts(self.undecodable):
            text += f"\n  {count:,} x {reason}"
        return text


def reason_counts(undecodable: pl.DataFrame) -> list[tuple[str, int]]:
    """The commonest reasons rows could not be decoded, with their counts (at most three)."""
    if undecodable.height == 0:
        return []
    return commonest(dict(undecodable.group_by("reason").len().iter_rows()))


def commonest(counts: Mapping[str, int]) -> list[tuple[str, int]]:
    """``(reason, count)`` of the most frequent reasons, most first, ties by reason, at most
    :data:`MAX_SHOWN` (counts added up over Spark's buckets come here too)."""
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:MAX_SHOWN]
