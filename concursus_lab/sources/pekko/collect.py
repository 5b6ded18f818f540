"""A read's pages gathered: raw rows decoded a chunk at a time into journal frames, mapped once.

:class:`Pages` takes each page as :func:`concursus_lab.sources.cassandra.paging.run` hands it
over (the bytes Cassandra sent; rows of the driver's values are turned back into them on its
public path), decodes every :data:`CHUNK` rows into a journal frame (:mod:`.rows`) on a
worker thread, so the driver's tuples are let go as the read goes and the next pages are
asked for while a chunk is decoded (the server works while this process decodes: about a
third faster on two cores), and maps the whole read at the end
(:meth:`.journal.Journal.events`).
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

import polars as pl

from concursus_lab.mapping import Mapped
from concursus_lab.sources.cassandra import paging
from concursus_lab.sources.cassandra.raw_cells import as_sent
from concursus_lab.sources.pekko import reading, rows
from concursus_lab.sources.pekko.journal import Journal

#: Rows decoded at once.
CHUNK = 20_000


class Pages:
    """The pages of one read; see the module docstring."""

    def __init__(self, journal: Journal, raw: bool, progress: bool | None, url: str):
        self.journal, self.progress, self.url = journal, progress, url
        self._raw = raw
        self._fields = journal.fields()
        self._pending: list = []
        self._frames: list[Future] = []
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="journal-decode")

    def add(self, task: paging.Task, page: list) -> None:
        self._pending.extend(page if self._raw else as_sent(page, rows.CQL_TYPES))
        if len(self._pending) >= CHUNK:
            self._decode()

    def add_partitions(self, task: paging.Task, page: list) -> None:
        """:meth:`add`, noting whether the page holds rows of the task's second partition."""
        raw = page if self._raw else as_sent(page, rows.CQL_TYPES)
        reading.note_later(task, raw)
        self._pending.extend(raw)
        if len(self._pending) >= CHUNK:
            self._decode()

    def _decode(self) -> None:
        if self._pending:
            chunk, self._pending = self._pending, []
            self._frames.append(self._worker.submit(rows.decode_rows, chunk, self._fields))

    def result(self) -> Mapped:
        """Every row read so far, as events and quarantine."""
        self._decode()
        frames = [f.result() for f in self._frames]
        self._worker.shutdown()
        frame = pl.concat(frames) if frames else rows.empty(self._fields)
        return self.journal.events(frame)
