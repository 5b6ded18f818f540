"""What an append writes, as Java Concursus would: event rows in batches, and the Catalogue.

Event rows are bound to a prepared ``INSERT ... USING TIMESTAMP`` (the row's processing
time, so Cassandra's last-write-wins keeps the last processed delivery) and grouped in
unlogged batches of one partition's rows; the ``Catalogue`` gets a row for an aggregate an
initial event begins and loses it when a terminal event ends it, in its bucket
(``abs(hashCode(aggregateId)) % buckets``). Each batch is one :class:`paging.Task`
whose ``extra`` is how many events it writes.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator

import numpy as np
import polars as pl

from concursus_lab.frame.jhash import bucket as catalogue_bucket
from concursus_lab.frame.schema import INITIAL, TERMINAL
from concursus_lab.sources.cassandra import paging
from concursus_lab.sources.cassandra.codec import CQL_COLUMNS
from concursus_lab.sources.cassandra.parameters import encode_parameters
from concursus_lab.sources.cassandra.queries import Prepare
from concursus_lab.sources.catalogue import catalogue_changes

_INSERT = (
    "INSERT INTO {keyspace}.Event ("
    + ", ".join(CQL_COLUMNS)
    + ") VALUES ("
    + ", ".join("?" * len(CQL_COLUMNS))
    + ") USING TIMESTAMP ?"
)
_INSERT_CATALOGUE = (
    "INSERT INTO {keyspace}.Catalogue (aggregateType, bucket, aggregateId) VALUES (?, ?, ?)"
)
_DELETE_CATALOGUE = (
    "DELETE FROM {keyspace}.Catalogue WHERE aggregateType = ? AND bucket = ? AND aggregateId = ?"
)
_BATCH_ROWS = 100  # rows of one partition per unlogged batch
_CHUNK_ROWS = 20_000  # rows turned into bound statements at once


def event_tasks(
    frame: pl.DataFrame, ids: pl.Series, *, prepare: Prepare, level: int
) -> Iterator[paging.Task]:
    """Unlogged batches of one partition's rows, made a chunk of the frame at a time.

    ``frame`` is canonical and sorted by aggregate; ``ids`` are the ``processingId`` to
    write; ``level`` is the batches' consistency level.
    """
    from cassandra.query import BatchStatement, BatchType

    insert = prepare(_INSERT)
    run = frame.select(pl.struct("aggregate_type", "aggregate_id").rle_id()).to_series()
    starts = np.flatnonzero(np.diff(run.to_numpy(), prepend=-1))
    ends = np.r_[starts[1:], frame.height]
    frame = frame.with_columns(ids.alias("processing_id"))
    at = np.searchsorted(starts, np.arange(0, frame.height, _CHUNK_ROWS))
    cuts = starts[np.minimum(at, len(starts) - 1)]
    edges = [*np.unique(np.r_[0, cuts]).tolist(), frame.height]
    partition = 0
    for lo_row, hi_row in itertools.pairwise(edges):
        rows = _insert_values(frame.slice(lo_row, hi_row - lo_row))
        while partition < len(starts) and starts[partition] < hi_row:
            start, end = int(starts[partition]) - lo_row, int(ends[partition]) - lo_row
            partition += 1
            for lo in range(start, end, _BATCH_ROWS):
                hi = min(end, lo + _BATCH_ROWS)
                if hi - lo == 1:
                    statement = insert.bind(rows[lo])
                else:
                    statement = BatchStatement(
                        batch_type=BatchType.UNLOGGED, consistency_level=level
                    )
                    for row in rows[lo:hi]:
                        statement.add(insert.bind(row))
                statement.is_idempotent = True
                label = f"events of {rows[lo][0]}/{rows[lo][1]}"
                yield paging.Task(statement, label, extra=hi - lo)


def catalogue_tasks(
    frame: pl.DataFrame, *, prepare: Prepare, level: int, buckets: int
) -> list[paging.Task]:
    """The ``Catalogue`` rows :func:`~concursus_lab.sources.catalogue.catalogue_changes`
    adds and removes, in unlogged batches of one aggregate type and bucket each."""
    from cassandra.query import BatchStatement, BatchType

    statements = {INITIAL: prepare(_INSERT_CATALOGUE), TERMINAL: prepare(_DELETE_CATALOGUE)}
    changes = catalogue_changes(frame)
    changes = changes.with_columns(
        catalogue_bucket(changes["aggregate_id"], buckets).alias("bucket")
    )
    tasks = []
    for (aggregate_type, bucket, change), group in changes.group_by(
        ["aggregate_type", "bucket", "change"], maintain_order=True
    ):
        ids = group["aggregate_id"].to_list()
        what = "catalogue" if change == INITIAL else "catalogue removals"
        for lo in range(0, len(ids), _BATCH_ROWS):
            batch = BatchStatement(batch_type=BatchType.UNLOGGED, consistency_level=level)
            for aggregate_id in ids[lo : lo + _BATCH_ROWS]:
                batch.add(statements[change].bind((aggregate_type, bucket, aggregate_id)))
            batch.is_idempotent = True
            tasks.append(paging.Task(batch, f"{what} {aggregate_type}/{bucket}", extra=0))
    return tasks


def _insert_values(frame: pl.DataFrame) -> list[tuple]:
    """The bind values of the INSERT, row by row, for a canonical frame."""
    columns = (
        frame["aggregate_type"].to_list(),
        frame["aggregate_id"].to_list(),
        frame["event_timestamp"].dt.epoch("ms").to_list(),
        frame["stream_id"].to_list(),
        [uuid.UUID(i) for i in frame["processing_id"].to_list()],
        frame["name"].to_list(),
        frame["version"].to_list(),
        encode_parameters(frame["parameters"].to_list()),
        frame["characteristics"].to_list(),
        frame["processing_timestamp"].dt.epoch("us").to_list(),
    )
    return list(zip(*columns, strict=True))
