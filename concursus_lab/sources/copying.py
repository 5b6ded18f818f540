"""Copy events from one source to another: ``concursus-lab copy SRC DST``.

Works between any two sources, by URL or opened: Cassandra to a local store for offline
work, a local store (or the sample) into Cassandra, later Kafka to either. Every delivery
the source keeps is copied (``duplicates="keep"``), so a destination that keeps every
delivery loses none, and one that keeps the winner (Cassandra) keeps the same winner.

>>> import concursus_lab as cl, tempfile
>>> from concursus_lab.sources.copying import copy
>>> src = cl.open(tempfile.mkdtemp() + "/a", create=True)
>>> src.append(cl.sample.parcels(20, seed=1))
60
>>> copy(src, tempfile.mkdtemp() + "/b", create=True, progress=False)
60
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable
from typing import Any

import polars as pl

from concursus_lab.common.progress import bar
from concursus_lab.common.time import TimeLike
from concursus_lab.exceptions import ConcursusLabError, IncompleteWrite, SourceError
from concursus_lab.sources import Source
from concursus_lab.sources import open_history as open_source

#: Events appended to the destination at a time.
CHUNK_EVENTS = 250_000


def copy(
    src: Source | str | os.PathLike,
    dst: Source | str | os.PathLike,
    *,
    aggregate_type: str | None = None,
    aggregate_ids: Iterable[str] | str | None = None,
    event_time: tuple[TimeLike | None, TimeLike | None] | None = None,
    create: bool = False,
    chunk_events: int = CHUNK_EVENTS,
    progress: bool | None = None,
) -> int:
    """Append the events of ``src`` to ``dst``; return how many events were written.

    Parameters
    ----------
    src, dst
        Sources, or URLs/paths to open (``dst`` with ``create=create``). Sources opened
        here are closed again; sources passed in are left open.
    aggregate_type, aggregate_ids, event_time
        Copy only these events, as in :meth:`Source.events`.
    create
        Make the destination when it does not exist (a new local store, or the Cassandra
        keyspace and tables).
    chunk_events
        Events per ``dst.append``; whole aggregates stay in one chunk.
    progress
        Show progress bars (default: only when the copy takes a while).

    Raises
    ------
    IncompleteRead
        The source could not be read in full; nothing was written.
    IncompleteWrite
        Some chunks were appended, then one failed (a full disk, say): ``.written`` counts
        the events copied, ``.unwritten`` holds the others; the message gives the cause.
    """
    if not isinstance(chunk_events, int) or chunk_events < 1:
        raise SourceError(f"`chunk_events` must be a positive int, got {chunk_events!r}.")
    opened: list[Source] = []
    try:
        if not isinstance(src, Source):
            src = open_source(src)
            opened.append(src)
        if not isinstance(dst, Source):
            dst = open_source(dst, create=create) if create else open_source(dst)
            opened.append(dst)
        events = src.events(
            aggregate_type,
            aggregate_ids,
            event_time,
            duplicates="keep",
            progress=progress,
        )
        return _append_in_chunks(dst, events, chunk_events, progress)
    finally:
        for source in opened:
            source.close()


def _append_in_chunks(dst: Source, events: pl.DataFrame, size: int, progress: bool | None) -> int:
    events = events.sort("aggregate_type", "aggregate_id", maintain_order=True)
    aggregate = events.select(pl.struct("aggregate_type", "aggregate_id").rle_id()).to_series()
    written = 0
    with bar(progress, total=events.height, what=f"copying to {dst.url}", unit="events") as shown:
        start = 0
        while start < events.height:
            end = min(events.height, start + size)
            if end < events.height:  # move the cut to the next aggregate's first event
                cut = aggregate[end - 1]
                while end < events.height and aggregate[end] == cut:
                    end += 1
            try:
                written += dst.append(events.slice(start, end - start), progress=False)
            except ConcursusLabError as exc:
                if written == 0:
                    raise
                raise _stopped(dst, written, events.slice(start), exc) from exc
            shown.update(end - start)
            start = end
    return written


def _stopped(dst: Source, written: int, rest: pl.DataFrame, exc: Exception) -> IncompleteWrite:
    """The error for a copy that stored some chunks and then failed."""
    total = written + rest.height
    return IncompleteWrite(
        f"copied {written:,} of {total:,} events to {dst.url}, then an append failed: {exc} "
        f"The {written:,} copied are whole aggregates and stay in {dst.url}. To copy the "
        f"rest, fix that and copy again into a new destination (copying again into "
        f"{dst.url} would add the first {written:,} deliveries a second time); from Python, "
        "`error.unwritten` holds the events not copied, to append yourself.",
        written=written,
        unwritten=rest,
    )


def register(subparsers: Any) -> None:
    """Add ``copy SRC DST`` to the ``concursus-lab`` command line."""
    parser = subparsers.add_parser(
        "copy",
        help="copy events between sources (Cassandra, local store, Kafka)",
        description=(
            "Append the events of SRC to DST, e.g. `concursus-lab copy "
            "cassandra://127.0.0.1:9042/concursus data/offline --create`. SRC and DST are "
            "URLs or local store folders."
        ),
    )
    parser.add_argument("src", metavar="SRC", help="where the events are")
    parser.add_argument("dst", metavar="DST", help="where to append them")
    parser.add_argument(
        "--create", action="store_true", help="make DST (store folder, keyspace) if missing"
    )
    parser.add_argument("--aggregate-type", help="copy only this aggregate type")
    parser.add_argument(
        "--chunk-events",
        type=int,
        default=CHUNK_EVENTS,
        help="events per append (default %(default)s)",
    )
    parser.add_argument("--no-progress", action="store_true", help="show no progress bar")
    parser.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    written = copy(
        args.src,
        args.dst,
        aggregate_type=args.aggregate_type,
        create=args.create,
        chunk_events=args.chunk_events,
        progress=False if args.no_progress else None,
    )
    print(f"copied {written:,} events from {args.src} to {args.dst}")
    return 0
