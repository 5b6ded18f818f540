"""The contract every source keeps: ``.events()``, ``.append()``, ``.quarantine``."""

from __future__ import annotations

import abc
from collections.abc import Iterable

import polars as pl

from concursus_lab.common.time import TimeLike
from concursus_lab.frame.identity import Duplicates
from concursus_lab.sources.query import Query


class Source(abc.ABC):
    """Where events come from: the local store, Cassandra, Kafka, Redis, a RabbitMQ stream,
    or a frame in memory.

    Open one with :func:`concursus_lab.open`. Every source returns canonical event frames
    from :meth:`events` and takes them in :meth:`append`; what it could not decode is kept
    in :attr:`quarantine`, never dropped silently. :meth:`events` is written once, here: it
    checks and normalises the arguments into a :class:`~concursus_lab.sources.query.Query`,
    and each source writes only :meth:`_events`, its own read of that query.
    """

    #: The URL (or path) this source was opened with, credentials removed.
    url: str

    #: Whether ``cl.open(url, mapping=...)`` may give this kind a :class:`~concursus_lab.Mapping`
    #: (files, tables and topics of the user's own shape); Concursus's layouts take none.
    takes_mapping: bool = False

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

        Raises
        ------
        IncompleteRead
            A server stayed away longer than the source waits, or the read was interrupted;
            ``.partial`` holds what was read.
        """
        query = Query.of(aggregate_type, aggregate_ids, event_time, known_at, duplicates)
        return self._events(query, progress)

    @abc.abstractmethod
    def _events(self, query: Query, progress: bool | None) -> pl.DataFrame:
        """What :meth:`events` returns for ``query``: each source's own read.

        The arguments are already checked and normalised (:meth:`Query.of`); a source pushes
        what it can of ``query`` into its read and hands the rest to :meth:`Query.apply`.
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
