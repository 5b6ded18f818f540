"""Events stored with no ``processingId``: their processing time is when Cassandra wrote them.

Rows written by hand (or by other tools) may lack a ``processingId``. Each such row's
``WRITETIME`` is read, one query per row, and becomes its ``processing_timestamp``; a row
with neither goes to the quarantine, since its processing time is unknown.
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from concursus_lab.exceptions import IncompleteRead
from concursus_lab.frame.identity import IDENTITY
from concursus_lab.frame.schema import TIME
from concursus_lab.sources.cassandra import paging
from concursus_lab.sources.cassandra.codec import QUARANTINE_SCHEMA
from concursus_lab.sources.cassandra.connect import START_HINT
from concursus_lab.sources.cassandra.queries import Prepare, millis
from concursus_lab.sources.cassandra.raw_cells import as_sent

_WRITETIME = (
    "SELECT WRITETIME(name) FROM {keyspace}.Event WHERE aggregateType = ? AND aggregateId = ?"
    " AND eventTimestamp = ? AND streamId = ?"
)

#: Runs tasks to their last page, handing each page to ``on_page`` (see :func:`paging.run`).
Run = Callable[[list[paging.Task], Callable[[paging.Task, list], None]], int]


def fill_write_times(
    frame: pl.DataFrame,
    quarantine: pl.DataFrame,
    *,
    prepare: Prepare,
    run: Run,
    raw: bool,
    url: str,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``frame`` with every null ``processing_timestamp`` filled from the write time.

    ``raw`` says whether the session hands cells over as bytes. Rows with no write time
    either move to ``quarantine``; raises :class:`IncompleteRead` when the write times
    cannot be read.
    """
    missing = frame["processing_timestamp"].is_null()
    if not missing.any():
        return frame, quarantine
    keys = frame.filter(missing).select(IDENTITY)
    statement = prepare(_WRITETIME)
    found: dict[tuple, int | None] = {}
    tasks = []
    for row in keys.iter_rows():
        bound = statement.bind((row[0], row[1], millis(row[2]), row[3]))
        tasks.append(paging.Task(bound, f"write time of {row}", extra=row))

    def record(task: paging.Task, rows: list) -> None:
        if rows and not raw:
            rows = as_sent(rows, ("bigint",))
        cell = rows[0][0] if rows else None
        found[task.extra] = None if cell is None else int.from_bytes(cell, "big", signed=True)

    try:
        run(tasks, record)
    except paging.Stopped as stop:
        raise IncompleteRead(
            f"read {frame.height:,} events from {url} but could not read the write "
            f"time of {len(tasks) - stop.finished:,} of the {len(tasks):,} event(s) that "
            f"have no processingId ({type(stop.cause).__name__}: {stop.cause}); "
            f"`.partial` holds the others. {START_HINT}",
            partial=frame.filter(~missing),
        ) from stop.cause
    micros = [found.get(row) for row in keys.iter_rows()]
    return with_write_times(frame, quarantine, keys, micros)


def with_write_times(
    frame: pl.DataFrame, quarantine: pl.DataFrame, keys: pl.DataFrame, micros: list[int | None]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``frame`` with the null processing times of the rows ``keys`` (their identities) set
    to their write times ``micros`` (None: unknown); rows still unknown move to the
    quarantine. The Spark reader, which reads write times with the rows, uses it too."""
    filled = keys.with_columns(pl.Series("__written", micros, dtype=pl.Int64).cast(TIME))
    frame = (
        frame.join(filled, on=list(IDENTITY), how="left", maintain_order="left")
        .with_columns(
            pl.coalesce("processing_timestamp", "__written").alias("processing_timestamp")
        )
        .drop("__written")
    )
    return _set_aside_unknown(frame, quarantine)


def _set_aside_unknown(
    frame: pl.DataFrame, quarantine: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Move the events whose processing time is still unknown to the quarantine."""
    lost = frame["processing_timestamp"].is_null()
    if lost.any():
        extra = (
            frame.filter(lost)
            .with_columns(
                pl.lit("no processingId and no write time: its processing time is unknown").alias(
                    "reason"
                ),
            )
            .select(QUARANTINE_SCHEMA.names())
        )
        quarantine = pl.concat([quarantine, extra])
        frame = frame.filter(~lost)
    return frame, quarantine
