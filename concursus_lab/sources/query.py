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

import polars as pl

from concursus_lab.common.time import TimeLike, optional_utc, time_range
from concursus_lab.exceptions import SchemaError
from concursus_lab.frame.cut import known_by
from concursus_lab.frame.identity import Duplicates, check_duplicates, resolve


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
        check_duplicates(duplicates)
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
            parts.append(known_by(self.known_at))
        if not parts:
            return None
        return pl.all_horizontal(parts)

    def apply(self, frame: pl.DataFrame, *, order: str | None = None) -> pl.DataFrame:
        """Filter ``frame`` and resolve its duplicates as this query asks.

        ``order`` names a column that breaks ties between deliveries processed at the same
        instant (a delivery sequence), after Kafka's partition and offset when the frame
        has them; then row order does (``frame/identity.py``). Conflicting deliveries (one
        identity, another name, version or parameters) are warned about.
        """
        predicate = self.predicate()
        if predicate is not None:
            frame = frame.filter(predicate)
        return resolve(frame, self.duplicates, ties=[order] if order else ())
