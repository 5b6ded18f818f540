"""What every source's ``.events()`` is asked, and how an in-memory frame answers it.

A :class:`Query` holds the normalised arguments (aggregate type, ids, an event-time range
with an exclusive end, a ``known_at`` processing-time bound, and how to treat duplicate
identities). Sources push as much of it as they can into their own reads and hand the rest
to :meth:`Query.apply`, so all sources answer the same question the same way.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl

from concursus_lab._schema import IDENTITY
from concursus_lab._time import TimeLike, optional_utc, time_range
from concursus_lab.exceptions import SchemaError

Duplicates = Literal["last", "first", "keep"]
_DUPLICATES = ("last", "first", "keep")


@dataclass(frozen=True)
class Query:
    """Normalised arguments of ``.events()``."""

    aggregate_type: str | None = None
    aggregate_ids: tuple[str, ...] | None = None
    event_start: dt.datetime | None = None
    event_end: dt.datetime | None = None
    known_at: dt.datetime | None = None
    duplicates: Duplicates = "last"

    @classmethod
    def of(
        cls,
        aggregate_type: str | None = None,
        aggregate_ids: Iterable[str] | str | None = None,
        event_time: tuple[TimeLike | None, TimeLike | None] | None = None,
        known_at: TimeLike | None = None,
        duplicates: str = "last",
    ) -> Query:
        if aggregate_type is not None and not isinstance(aggregate_type, str):
            raise SchemaError(
                f"`aggregate_type` must be a string such as 'parcel', got {aggregate_type!r}."
            )
        ids: tuple[str, ...] | None = None
        if aggregate_ids is not None:
            if isinstance(aggregate_ids, str):
                ids = (aggregate_ids,)
            else:
                ids = tuple(dict.fromkeys(str(i) for i in aggregate_ids))
        if duplicates not in _DUPLICATES:
            raise SchemaError(
                f"`duplicates` must be one of {_DUPLICATES}, got {duplicates!r}: 'last' keeps "
                "the last processed delivery of each identity (as Cassandra does), 'first' "
                "the first, 'keep' every delivery."
            )
        start, end = time_range(event_time, "event_time")
        return cls(aggregate_type, ids, start, end, optional_utc(known_at, "known_at"), duplicates)

    def predicate(self, *, with_known_at: bool = True) -> pl.Expr | None:
        """The row filter as one polars expression (None when nothing is filtered)."""
        parts = []
        if self.aggregate_type is not None:
            parts.append(pl.col("aggregate_type") == self.aggregate_type)
        if self.aggregate_ids is not None:
            parts.append(pl.col("aggregate_id").is_in(list(self.aggregate_ids)))
        if self.event_start is not None:
            parts.append(pl.col("event_timestamp") >= self.event_start)
        if self.event_end is not None:
            parts.append(pl.col("event_timestamp") < self.event_end)
        if with_known_at and self.known_at is not None:
            parts.append(pl.col("processing_timestamp") <= self.known_at)
        if not parts:
            return None
        return pl.all_horizontal(parts)

    def apply(self, frame: pl.DataFrame, *, order: str | None = None) -> pl.DataFrame:
        """Filter ``frame`` and resolve its duplicates as this query asks.

        ``order`` names a column that breaks ties between deliveries processed at the same
        instant (a delivery sequence, a Kafka offset); without it, row order does.
        """
        predicate = self.predicate()
        if predicate is not None:
            frame = frame.filter(predicate)
        return resolve_duplicates(frame, self.duplicates, order=order)


def resolve_duplicates(
    frame: pl.DataFrame, keep: Duplicates = "last", *, order: str | None = None
) -> pl.DataFrame:
    """One row per identity: the last (or first) processed delivery; ``"keep"`` keeps all.

    Deliveries processed at the same instant are ordered by ``order`` (or by row position),
    so the result never depends on chance. Rows keep their relative order.
    """
    if keep == "keep" or frame.height == 0:
        return frame
    if frame.select(pl.struct(IDENTITY).is_unique().all()).item():
        return frame
    ties = [order] if order else []
    winners = (
        frame.with_row_index("__row")
        .sort(["processing_timestamp", *ties, "__row"])
        .unique(subset=list(IDENTITY), keep="last" if keep == "last" else "first")
        .get_column("__row")
        .to_numpy()
    )
    mask = np.zeros(frame.height, dtype=bool)
    mask[winners] = True
    return frame.filter(pl.Series(mask))
