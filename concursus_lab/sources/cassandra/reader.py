"""A read's pages, collected into a frame: decoded in chunks, with progress, or reported.

:class:`Reader` takes each page's raw rows as :func:`paging.run` hands them over, decodes
them a chunk at a time (so the driver's row tuples are freed as the read goes) and shows
progress per task. When a read stops before its end, :func:`incomplete` says what was read
and what was not, and carries what was read in ``.partial``.
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from concursus_lab.common.progress import bar as progress_bar
from concursus_lab.exceptions import IncompleteRead
from concursus_lab.sources.cassandra import paging
from concursus_lab.sources.cassandra.codec import CQL_TYPES, decode_rows
from concursus_lab.sources.cassandra.connect import START_HINT
from concursus_lab.sources.cassandra.raw_cells import as_sent
from concursus_lab.sources.query import Query

_DECODE_ROWS = 20_000  # rows decoded at once


#: Decodes a chunk of rows of raw cells into (frame, quarantine); called with no rows, it gives
#: the empty frames.
Decode = Callable[[list], tuple[pl.DataFrame, pl.DataFrame]]


def _event_rows(rows: list) -> list:
    return as_sent(rows, CQL_TYPES)


class Reader:
    """Collects pages, decodes them in chunks, and shows progress.

    ``raw`` says whether the session hands cells over as bytes (see
    :mod:`~concursus_lab.sources.cassandra.raw_cells`); if not, rows are turned back into
    the bytes Cassandra sent (by ``sent``) before they are decoded. ``decode`` turns rows of
    raw cells into frames: ``Event`` rows by default (:func:`.codec.decode_rows`), any other
    table's by its own.
    """

    def __init__(
        self,
        total: int,
        unit: str,
        progress: bool | None,
        url: str,
        *,
        raw: bool,
        decode: Decode = decode_rows,
        sent: Callable[[list], list] = _event_rows,
        what: str = "events",
    ):
        self._pending: list = []
        self._frames: list[pl.DataFrame] = []
        self._quarantines: list[pl.DataFrame] = []
        self._rows = 0
        self._raw = raw
        self._decode_rows, self._sent, self._what = decode, sent, what
        self._bar = progress_bar(progress, total=total, what=f"reading {url}", unit=unit)

    def add(self, task: paging.Task, rows: list) -> None:
        self._pending.extend(rows if self._raw else self._sent(rows))
        self._rows += len(rows)
        if len(self._pending) >= _DECODE_ROWS:
            self._decode()

    def task_done(self, task: paging.Task) -> None:
        self._bar.update(1)
        self._bar.set_postfix_str(f"{self._rows:,} {self._what}", refresh=False)

    def _decode(self) -> None:
        if self._pending:
            frame, quarantine = self._decode_rows(self._pending)
            self._pending = []
            self._frames.append(frame)
            if quarantine.height:
                self._quarantines.append(quarantine)

    def result(self) -> tuple[pl.DataFrame, pl.DataFrame]:
        self._decode()
        empty, nothing = self._decode_rows([])
        frame = pl.concat(self._frames, rechunk=True) if self._frames else empty
        quarantine = pl.concat(self._quarantines) if self._quarantines else nothing
        return frame, quarantine

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.close()


_NO_PROCESSING_ID = "events with no processingId have no processing time there"


def incomplete(
    frame: pl.DataFrame,
    stop: paging.Stopped,
    total: int,
    unit: str,
    query: Query,
    url: str,
    *,
    note: str = _NO_PROCESSING_ID,
) -> IncompleteRead:
    """The error for a read of ``total`` tasks that stopped; ``frame`` is what was read
    (``note``: what to know about it)."""
    predicate = query.predicate(with_known_at=False)
    if predicate is not None:
        frame = frame.filter(predicate)
    if query.known_at is not None:  # events with no processingId have no time yet
        processed = pl.col("processing_timestamp")
        frame = frame.filter(processed.is_null() | (processed <= query.known_at))
    interrupted = isinstance(stop.cause, KeyboardInterrupt)
    why = "it was interrupted" if interrupted else f"{type(stop.cause).__name__}: {stop.cause}"
    started = sorted(stop.unfinished, key=lambda t: -t.rows)
    examples = "; ".join(f"{t.label} after {t.rows:,} rows" for t in started[:3])
    hint = "" if interrupted else f" {START_HINT} Then read again."
    return IncompleteRead(
        f"the read of {url} stopped because {why}. It read {frame.height:,} events: "
        f"{stop.finished:,} of {total:,} {unit} in full, and "
        f"{total - stop.finished:,} {unit} not read to the end (e.g. {examples}). "
        f"`.partial` holds what was read ({note}).{hint}",
        partial=frame,
    )
