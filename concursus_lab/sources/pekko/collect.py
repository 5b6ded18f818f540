"""A read's pages gathered: raw rows decoded and mapped a chunk at a time, put in order at the end.

:class:`Pages` takes each page as :func:`concursus_lab.sources.cassandra.paging.run` hands it
over (the bytes Cassandra sent; rows of the driver's values are turned back into them on its
public path), decodes every :data:`CHUNK` rows into a journal frame (:mod:`.rows`), maps it
(:meth:`.journal.Journal.events`) and puts it in order on a worker thread, so the driver's
tuples are let go as the read goes and the next pages are asked for while a chunk is decoded
and mapped (the server works while this process decodes), and at the end only joins the
chunks' ordered runs (:func:`.journal.ordered`).
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

from concursus_lab.mapping import Mapped
from concursus_lab.sources.cassandra import paging
from concursus_lab.sources.cassandra.raw_cells import as_sent
from concursus_lab.sources.pekko import reading, rows
from concursus_lab.sources.pekko.journal import Journal, in_order, ordered

#: Rows decoded at once.
CHUNK = 20_000


class Pages:
    """The pages of one read; see the module docstring."""

    def __init__(self, journal: Journal, raw: bool, progress: bool | None, url: str):
        self.journal, self.progress, self.url = journal, progress, url
        self._raw = raw
        self._fields = journal.fields()
        self._pending: list = []
        self._parts: list[Future] = []
        self._plans: dict = {}  # the mapping's plan, made for the first chunk
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="journal-decode")

    def add(self, task: paging.Task, page: list) -> None:
        self._pending.extend(page if self._raw else as_sent(page, rows.CQL_TYPES))
        if len(self._pending) >= CHUNK:
            self._decode()

    def add_partitions(self, task: paging.Task, page: list) -> None:
        """:meth:`add`, noting whether the page holds rows of the task's second partition."""
        raw = page if self._raw else as_sent(page, (*rows.CQL_TYPES, "bigint"))
        self._pending.extend(reading.note_later(task, raw))
        if len(self._pending) >= CHUNK:
            self._decode()

    def _decode(self) -> None:
        if self._pending:
            chunk, self._pending = self._pending, []
            self._parts.append(self._worker.submit(self._mapped, chunk))

    def _mapped(self, chunk: list) -> Mapped:
        return in_order(self.journal.events(rows.decode_rows(chunk, self._fields), self._plans))

    def result(self) -> Mapped:
        """Every row read so far, as events (by aggregate, in sequence order) and quarantine."""
        self._decode()
        try:
            parts = [part.result() for part in self._parts]
            return ordered(parts or [self.journal.events(rows.empty(self._fields))])
        finally:
            self._worker.shutdown()
