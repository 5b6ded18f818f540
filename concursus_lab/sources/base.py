"""The contract every source keeps: ``.events()``, ``.append()``, ``.quarantine``."""

from __future__ import annotations

import abc
from collections.abc import Iterable

import polars as pl

from concursus_lab.common.time import TimeLike
from concursus_lab.frame.identity import Duplicates


class Source(abc.ABC):
    """Where events come from: the local store, Cassandra or Kafka.

    Open one with :func:`concursus_lab.open`. Every source returns canonical event frames
    from :meth:`events` and takes them in :meth:`append`; what it could not decode is kept in
    :attr:`quarantine`, never dropped silently.
    """

    #: The URL (or path) this source was opened with, credentials removed.
    url: str

    @abc.abstractmethod
    def events(
        self,
        aggregate_type: str | None = None,
        aggregate_ids: Iterable[str] | str | None = None,
        event_time: tuple[TimeLike | None, TimeLike | None] | None = None,
        known_at: TimeLike | None = None,
        *,
        duplicates: Duplicates = "last",
        progress: bool | None = None,
    ) -> pl.DataFrame:
        """The events, as a canonical frame.

        Parameters
        ----------
        aggregate_type
            Only this aggregate type, e.g. ``"parcel"``.
        aggregate_ids
            Only these aggregates (one id or several).
        event_time
            ``(start, end)``: events whose ``event_timestamp`` is at or after ``start`` and
            strictly before ``end``; either side may be None.
        known_at
            Only events processed at or before this time: the history as it was known then.
        duplicates
            ``"last"`` (default) keeps the last processed delivery of each identity, as a
            Cassandra upsert does; ``"first"`` the first (an idempotency filter); ``"keep"``
            every delivery.
        progress
            Show a progress bar (default: only for long reads).
        """

    @abc.abstractmethod
    def append(self, frame: pl.DataFrame, *, progress: bool | None = None) -> int:
        """Validate ``frame`` and write it; returns the number of events written."""

    @property
    def quarantine(self) -> pl.DataFrame:
        """What the last read could not decode: one row per record, with a ``reason``."""
        return pl.DataFrame(schema={"reason": pl.String, "raw": pl.Binary})

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; the source can no longer be read afterwards."""

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
