"""The CQL a journal read runs: token ranges of ``messages``, or one entity's partitions.

* A read of the whole journal (or of most of it) scans ``messages`` split over token ranges,
  run concurrently and page by page (:mod:`concursus_lab.sources.cassandra.paging`), every
  ``partition_nr`` partition included. A write-time range (``known_at``, and ``event_time``
  when the event time is the write time) is asked of the server on the ``timestamp`` time
  UUID, a superset to the millisecond; the exact cut is made on the frame.
* A read of some entities asks for their persistence ids' partitions, two at a time
  (``partition_nr IN (2k, 2k+1)``), and goes on to the next two while the second held
  rows: Pekko writes ``partition_nr = (sequence_nr - 1) / target-partition-size``, or the next
  partition when a ``persistAll`` batch crosses a boundary, so an entity's partitions follow
  each other. A sequence range goes into the clustering slice.
* ``all_persistence_ids`` gives an entity type's persistence ids.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from concursus_lab.sources.cassandra import paging
from concursus_lab.sources.pekko.rows import CQL_COLUMNS

Prepare = Callable[[str], Any]

_TOKEN = "token(persistence_id, partition_nr)"
_MS = dt.timedelta(milliseconds=1)


@dataclass(frozen=True)
class Tables:
    """The journal's tables (the plugin's ``journal.table`` and
    ``journal.all-persistence-ids-table`` settings)."""

    messages: str = "messages"
    persistence_ids: str = "all_persistence_ids"

    def select(self, *extra: str) -> str:
        return f"SELECT {', '.join((*CQL_COLUMNS, *extra))} FROM {{keyspace}}.{self.messages}"


@dataclass(frozen=True)
class WriteTimes:
    """A range of write times to ask the server for: at or after ``start``, before ``end``."""

    start: dt.datetime | None = None
    end: dt.datetime | None = None

    def cql(self) -> tuple[str, list]:
        """The ``timestamp`` restriction and its values (whole milliseconds, widened)."""
        where, values = "", []
        if self.start is not None:
            where += " AND timestamp >= minTimeuuid(?)"
            values.append(_floor_ms(self.start))
        if self.end is not None:
            where += " AND timestamp < minTimeuuid(?)"
            values.append(_ceil_ms(self.end))
        return where, values


def _floor_ms(at: dt.datetime) -> dt.datetime:
    return at.replace(microsecond=at.microsecond - at.microsecond % 1000)


def _ceil_ms(at: dt.datetime) -> dt.datetime:
    floor = _floor_ms(at)
    return floor if floor == at else floor + _MS


def scan_tasks(
    prepare: Prepare,
    tables: Tables,
    ranges: list[tuple[int, int]],
    fetch_size: int,
    times: WriteTimes,
) -> list[paging.Task]:
    """One task per token range of ``messages``."""
    limit, values = times.cql()
    where = f" WHERE {_TOKEN} > ? AND {_TOKEN} <= ?{limit}"
    statement = prepare(tables.select() + where + (" ALLOW FILTERING" if limit else ""))
    tasks = []
    for i, (start, end) in enumerate(ranges):
        bound = statement.bind((start, end, *values))
        bound.fetch_size = fetch_size
        tasks.append(paging.Task(bound, f"token range {i + 1}/{len(ranges)} ({start}, {end}]"))
    return tasks


@dataclass
class Partitions:
    """One persistence id's next two partitions to read; ``later`` says whether the second
    held rows (then the two after are read next)."""

    persistence_id: str
    first: int
    later: bool = field(default=False)


def partition_tasks(
    prepare: Prepare,
    tables: Tables,
    wanted: list[Partitions],
    fetch_size: int,
    sequence: tuple[int | None, int | None] = (None, None),
) -> list[paging.Task]:
    """One task per persistence id: its partitions ``first`` and ``first + 1``."""
    where = " WHERE persistence_id = ? AND partition_nr IN (?, ?)"
    low, high = sequence
    extra = []
    if low is not None:
        where += " AND sequence_nr >= ?"
        extra.append(low)
    if high is not None:
        where += " AND sequence_nr <= ?"
        extra.append(high)
    statement = prepare(tables.select("partition_nr") + where)
    tasks = []
    for part in wanted:
        bound = statement.bind((part.persistence_id, part.first, part.first + 1, *extra))
        bound.fetch_size = fetch_size
        label = f"{part.persistence_id!r} partitions {part.first}-{part.first + 1}"
        tasks.append(paging.Task(bound, label, extra=part))
    return tasks


def note_later(task: paging.Task, rows: list) -> list:
    """Mark ``task``'s :class:`Partitions` when a row of the page is in its second partition;
    the rows without their ``partition_nr`` (the last cell: :func:`partition_tasks`)."""
    part: Partitions = task.extra
    if rows and not part.later:
        second = (part.first + 1).to_bytes(8, "big", signed=True)
        part.later = any(row[-1] == second for row in rows)
    return [row[:-1] for row in rows]


def persistence_id_tasks(
    prepare: Prepare, tables: Tables, ranges: list[tuple[int, int]], fetch_size: int
) -> list[paging.Task]:
    """One task per token range of ``all_persistence_ids``."""
    statement = prepare(
        f"SELECT persistence_id FROM {{keyspace}}.{tables.persistence_ids} "
        "WHERE token(persistence_id) > ? AND token(persistence_id) <= ?"
    )
    tasks = []
    for start, end in ranges:
        bound = statement.bind((start, end))
        bound.fetch_size = fetch_size
        tasks.append(paging.Task(bound, f"persistence ids ({start}, {end}]"))
    return tasks
