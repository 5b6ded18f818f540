"""The SELECTs a read runs: one per aggregate's partition, or one per token range of the ring.

With ``aggregate_type`` and ``aggregate_ids`` a read is one prepared partition query per
aggregate, its event-time range in the clustering slice. Otherwise it is a full scan of the
Murmur3 ring cut into token ranges (none crossing a node's token), the aggregate type and
event-time range filtered by the server. Each statement becomes a :class:`paging.Task`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

import polars as pl

from concursus_lab.frame.schema import TIME
from concursus_lab.sources.cassandra import paging
from concursus_lab.sources.cassandra.codec import CQL_COLUMNS
from concursus_lab.sources.query import Query

SELECT = "SELECT " + ", ".join(CQL_COLUMNS) + " FROM {keyspace}.Event"
_TOKEN = "token(aggregateType, aggregateId)"
_MIN_TOKEN, _MAX_TOKEN = -(2**63), 2**63 - 1

#: A prepared statement for a CQL template whose keyspace is ``{keyspace}``.
Prepare = Callable[[str], Any]


def partition_tasks(prepare: Prepare, query: Query, fetch_size: int) -> list[paging.Task]:
    """One task per aggregate of ``query``: its partition, sliced by event time."""
    where = "WHERE aggregateType = ? AND aggregateId = ?"
    bounds = []
    if query.event_start is not None:
        where += " AND eventTimestamp >= ?"
        bounds.append(millis(query.event_start))
    if query.event_end is not None:
        where += " AND eventTimestamp < ?"
        bounds.append(millis(query.event_end))
    statement = prepare(SELECT + " " + where)
    tasks = []
    for aggregate_id in query.aggregate_ids or ():
        bound = statement.bind((query.aggregate_type, aggregate_id, *bounds))
        bound.fetch_size = fetch_size
        tasks.append(paging.Task(bound, f"aggregate {aggregate_id!r}"))
    return tasks


def token_tasks(
    prepare: Prepare, query: Query, ranges: list[tuple[int, int]], fetch_size: int
) -> list[paging.Task]:
    """One task per token range, the rest of ``query`` filtered by the server."""
    where = f"WHERE {_TOKEN} > ? AND {_TOKEN} <= ?"
    extra: list[Any] = []
    if query.aggregate_type is not None:
        where += " AND aggregateType = ?"
        extra.append(query.aggregate_type)
    if query.event_start is not None:
        where += " AND eventTimestamp >= ?"
        extra.append(millis(query.event_start))
    if query.event_end is not None:
        where += " AND eventTimestamp < ?"
        extra.append(millis(query.event_end))
    if extra:
        where += " ALLOW FILTERING"  # the server filters; it still reads every row
    statement = prepare(SELECT + " " + where)
    tasks = []
    for i, (start, end) in enumerate(ranges):
        bound = statement.bind((start, end, *extra))
        bound.fetch_size = fetch_size
        label = f"token range {i + 1}/{len(ranges)} ({start}, {end}]"
        tasks.append(paging.Task(bound, label, extra=(start, end)))
    return tasks


def ring_ranges(metadata: Any, splits: int | None) -> list[tuple[int, int]]:
    """The cluster's ring as ``splits`` token ranges (default 32 per node)."""
    token_map = metadata.token_map
    ring = [t.value for t in token_map.ring] if token_map else []
    nodes = max(1, len(metadata.all_hosts()))
    return token_ranges(ring, splits or 32 * nodes)


def token_ranges(ring: list[int], wanted: int) -> list[tuple[int, int]]:
    """The whole Murmur3 ring as about ``wanted`` ranges ``(start, end]``, cut at node tokens.

    Every token but the minimum (which no key has) falls in exactly one range, and no range
    crosses a node's token, so each is served by one replica set.

    >>> for start, end in token_ranges([0], 4):
    ...     print(start, end)
    -9223372036854775808 -4611686018427387904
    -4611686018427387904 0
    0 4611686018427387903
    4611686018427387903 9223372036854775807
    """
    edges = [_MIN_TOKEN, *sorted({t for t in ring if _MIN_TOKEN < t < _MAX_TOKEN}), _MAX_TOKEN]
    span = _MAX_TOKEN - _MIN_TOKEN
    ranges = []
    for start, end in itertools.pairwise(edges):
        pieces = max(1, math.ceil(wanted * (end - start) / span))
        cuts = [start + (end - start) * k // pieces for k in range(pieces)] + [end]
        ranges.extend((a, b) for a, b in itertools.pairwise(cuts) if b > a)
    return ranges


def millis(value: Any) -> int:
    """An aware datetime as epoch milliseconds, rounded up: a timestamp bound for a slice.

    ``eventTimestamp >= ceil(start)`` and ``< ceil(end)`` select exactly the stored
    (millisecond) times in ``[start, end)``; exact for millisecond times.
    """
    micros = pl.Series([value]).cast(TIME).dt.epoch("us").item()
    return -(-micros // 1000)
