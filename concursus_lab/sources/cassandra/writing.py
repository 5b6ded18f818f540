"""What an append writes, as Java Concursus would: event rows in batches, and the Catalogue.

Event rows are bound to a prepared ``INSERT ... USING TIMESTAMP`` (the row's processing
time, so Cassandra's last-write-wins keeps the last processed delivery). The ``Catalogue``
gets a row for an aggregate an initial event begins and loses it when a terminal event ends
it, in its bucket (``abs(hashCode(aggregateId)) % buckets``). Each batch is one
:class:`paging.Task` whose ``extra`` is how many events it writes.

Fast, and the same bytes: every cell is serialised a column at a time (polars and NumPy,
the encodings the driver's own ``bind`` gives, ``tests/unit/test_cassandra_writing.py``),
and an unlogged batch carries whole partitions: all the rows of each of up to
:data:`BATCH_PARTITIONS` aggregates that the same replicas own, up to
:data:`BATCH_BYTES` of values (Cassandra's default thresholds for a warning). An aggregate
with more rows than that goes alone in its own batch: Cassandra checks neither threshold for
a batch of one partition. The replica applies each partition's rows as one mutation, so an
aggregate's rows in an append land together or not at all, as a Concursus write's logged
batch does; only an aggregate with more than :data:`PARTITION_BYTES` of rows in one append
is split over several batches (a mutation must stay under half the commit log's segment).
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Callable, Hashable, Iterator

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
#: A batch's size as Cassandra counts it (see :func:`cells`), kept within its default
#: ``batch_size_warn_threshold`` (5 KiB), over which the server warns on every batch.
BATCH_BYTES = 5_120
#: Aggregates per batch: Cassandra's default ``unlogged_batch_across_partitions_warn_threshold``.
BATCH_PARTITIONS = 10
#: The most of one aggregate's rows sent in one batch (Cassandra refuses a mutation over half
#: its ``commitlog_segment_size``: 16 MiB by default).
PARTITION_BYTES = 1 << 20
_CATALOGUE_ROWS = 100  # Catalogue rows of one bucket per unlogged batch
_CHUNK_ROWS = 20_000  # rows serialised at once
_INT32 = struct.Struct(">i")
# What Cassandra 5.0 counts of a batch (``PartitionUpdate.dataSize``), beside the values of
# streamId, name, version and the parameters map: per row the clustering's eventTimestamp (8),
# the row's timestamp (8) and deletion (13), 20 a cell (timestamp, ttl, deletion time) for
# processingId (+16), name, version and characteristics (+4), the map's deletion (12), less the
# map value's count (4); per map entry 20 a cell less its two lengths (8). Cassandra 4 counts
# less (16 a cell, neither the row's timestamp nor its deletion): this bounds both.
_ROW_BYTES = 8 + 8 + 13 + (20 + 16) + 20 + 20 + (20 + 4) + 12 - 4
_ENTRY_BYTES = 20 - 8
_PARTITION_BYTES = 21 + 8  # an empty static row, the partition's deletion

#: The replicas of a partition, from its routing key: batches mix only partitions whose
#: replicas are the same.
Replicas = Callable[[bytes], Hashable]


def event_tasks(
    frame: pl.DataFrame,
    ids: pl.Series,
    *,
    prepare: Prepare,
    level: int,
    replicas: Replicas | None = None,
) -> Iterator[paging.Task]:
    """Unlogged batches of whole partitions' rows, made a chunk of the frame at a time.

    ``frame`` is canonical and sorted by aggregate; ``ids`` are the ``processingId`` to
    write; ``level`` is the batches' consistency level; ``replicas`` (None: one replica
    set, a single node) groups partitions by the nodes that own them.
    """
    insert = prepare(_INSERT)
    run = frame.select(pl.struct("aggregate_type", "aggregate_id").rle_id()).to_series()
    starts = np.flatnonzero(np.diff(run.to_numpy(), prepend=-1))
    frame = frame.with_columns(ids.alias("processing_id"))
    at = np.searchsorted(starts, np.arange(0, frame.height, _CHUNK_ROWS))
    cuts = starts[np.minimum(at, len(starts) - 1)]
    edges = [*np.unique(np.r_[0, cuts]).tolist(), frame.height]
    packer = _Packer(insert, level)
    for lo, hi in itertools.pairwise(edges):
        chunk = frame.slice(lo, hi - lo)
        rows, sizes = cells(chunk)
        first = starts[(starts >= lo) & (starts < hi)] - lo
        bounds = [*first.tolist(), hi - lo]
        for start, end in itertools.pairwise(bounds):
            group = None if replicas is None else replicas(routing_key(rows[start]))
            yield from packer.add(group, rows[start:end], sizes[start:end])
    yield from packer.flush_all()


class _Packer:
    """Open batches, one per replica set, each closed when the next partition would not fit."""

    def __init__(self, insert, level: int):
        self.insert, self.level = insert, level
        self.open: dict[Hashable, tuple[list, int, int]] = {}  # rows, bytes, partitions

    def add(self, group: Hashable, rows: list[tuple], sizes: np.ndarray) -> Iterator[paging.Task]:
        size = int(sizes.sum()) + _PARTITION_BYTES
        held = self.open.get(group)
        if held is not None and (held[1] + size > BATCH_BYTES or held[2] + 1 > BATCH_PARTITIONS):
            yield self._task(self.open.pop(group)[0])
            held = None
        if size > BATCH_BYTES:  # alone: atomic, never warned of; split only when huge
            for piece in _pieces(rows, sizes, PARTITION_BYTES):
                yield self._task(piece)
            return
        rows_held, bytes_held, partitions = held or ([], 0, 0)
        rows_held.extend(rows)
        self.open[group] = (rows_held, bytes_held + size, partitions + 1)

    def flush_all(self) -> Iterator[paging.Task]:
        for rows, _, _ in self.open.values():
            yield self._task(rows)
        self.open.clear()

    def _task(self, rows: list[tuple]) -> paging.Task:
        from cassandra.query import BatchStatement, BatchType, BoundStatement

        if len(rows) == 1:
            statement = BoundStatement(self.insert, consistency_level=self.level)
            statement.values = list(rows[0])
        else:
            statement = BatchStatement(batch_type=BatchType.UNLOGGED, consistency_level=self.level)
            for row in rows:
                bound = BoundStatement(self.insert)
                bound.values = row
                statement.add(bound)
        statement.is_idempotent = True
        first, last = rows[0], rows[-1]
        label = f"events of {_text(first[0])}/{_text(first[1])}"
        if last[:2] != first[:2]:
            label += f" to {_text(last[0])}/{_text(last[1])}"
        return paging.Task(statement, label, extra=len(rows))


def catalogue_tasks(
    frame: pl.DataFrame, *, prepare: Prepare, level: int, buckets: int
) -> Iterator[paging.Task]:
    """The ``Catalogue`` rows :func:`~concursus_lab.sources.catalogue.catalogue_changes`
    adds and removes, in unlogged batches of one aggregate type and bucket each (one
    partition), made as they are sent; each value is the bytes the driver's ``bind`` makes."""
    from cassandra.query import BatchStatement, BatchType, BoundStatement

    statements = {INITIAL: prepare(_INSERT_CATALOGUE), TERMINAL: prepare(_DELETE_CATALOGUE)}
    changes = catalogue_changes(frame)
    changes = changes.with_columns(
        catalogue_bucket(changes["aggregate_id"], buckets).alias("bucket")
    ).sort("aggregate_type", "bucket", "change", maintain_order=True)
    keys = changes.select("aggregate_type", "bucket", "change").rows()
    ids = changes["aggregate_id"].cast(pl.Binary).to_list()
    types = changes["aggregate_type"].cast(pl.Binary).to_list()
    lo = 0
    while lo < len(keys):
        key, hi = keys[lo], lo + 1
        while hi < len(keys) and hi - lo < _CATALOGUE_ROWS and keys[hi] == key:
            hi += 1
        aggregate_type, bucket, change = key
        batch = BatchStatement(batch_type=BatchType.UNLOGGED, consistency_level=level)
        cell = _INT32.pack(bucket)
        for i in range(lo, hi):
            bound = BoundStatement(statements[change])
            bound.values = [types[i], cell, ids[i]]
            batch.add(bound)
        batch.is_idempotent = True
        what = "catalogue" if change == INITIAL else "catalogue removals"
        yield paging.Task(batch, f"{what} {aggregate_type}/{bucket}", extra=0)
        lo = hi


def _pieces(rows: list[tuple], sizes: np.ndarray, limit: int) -> Iterator[list[tuple]]:
    """``rows`` cut in order into runs of at most ``limit`` bytes (one row at least)."""
    piece, held = [], 0
    for row, size in zip(rows, sizes.tolist(), strict=True):
        if piece and held + size > limit:
            yield piece
            piece, held = [], 0
        piece.append(row)
        held += size
    if piece:
        yield piece


def cells(frame: pl.DataFrame) -> tuple[list[tuple], np.ndarray]:
    """The INSERT's values for each row of a canonical frame (``processing_id`` set), as
    the bytes the driver's ``bind`` makes of them, and each row's bytes in all.

    Text is UTF-8; ``eventTimestamp`` big-endian epoch milliseconds; ``processingId`` the
    UUID's 16 bytes; ``characteristics`` a big-endian int32; the write timestamp a
    big-endian int64 of epoch microseconds; ``parameters`` a CQL map (a count, then each
    key and value with its int32 length) of what Java Concursus stores.

    A row's size is what Cassandra 5.0 counts of it for a batch's size (more than 4.x
    counts), without the partition's own :data:`_PARTITION_BYTES`.
    """
    names = ("aggregate_type", "aggregate_id", "stream_id", "name", "version")
    binary = frame.select(
        *[pl.col(c).cast(pl.Binary) for c in names],
        pl.col("processing_id").str.replace_all("-", "", literal=True).str.decode("hex"),
    )
    event_ms = _fixed(frame["event_timestamp"].dt.epoch("ms").to_numpy(), ">i8")
    written = _fixed(frame["processing_timestamp"].dt.epoch("us").to_numpy(), ">i8")
    characteristics = _fixed(frame["characteristics"].to_numpy(), ">i4")
    texts = frame["parameters"].to_list()
    distinct = list(dict.fromkeys(texts))  # a history repeats its small parameter objects
    cell_of = {t: _map_cell(p) for t, p in zip(distinct, encode_parameters(distinct), strict=True)}
    entries_of = {t: _INT32.unpack_from(cell)[0] for t, cell in cell_of.items()}
    parameters = [cell_of[t] for t in texts]
    columns = {c: binary[c].to_list() for c in binary.columns}
    rows = list(
        zip(
            columns["aggregate_type"],
            columns["aggregate_id"],
            event_ms,
            columns["stream_id"],
            columns["processing_id"],
            columns["name"],
            columns["version"],
            parameters,
            characteristics,
            written,
            strict=True,
        )
    )
    counted = pl.sum_horizontal(pl.col("stream_id", "name", "version").bin.size())
    lengths = binary.select(counted).to_series().to_numpy()
    entries = np.fromiter(map(entries_of.__getitem__, texts), np.int64, len(texts))
    sizes = lengths + np.fromiter(map(len, parameters), np.int64, len(parameters))
    return rows, sizes + _ROW_BYTES + _ENTRY_BYTES * entries


def routing_key(row: tuple) -> bytes:
    """The partition key (aggregateType, aggregateId) as Cassandra hashes it: each part's
    length (int16), bytes and a 0 byte."""
    return b"".join(struct.pack(">H", len(part)) + part + b"\x00" for part in row[:2])


def _fixed(values: np.ndarray, dtype: str) -> list[bytes]:
    """Each integer as its big-endian bytes (NumPy's ``S`` type would drop trailing NULs)."""
    import pyarrow as pa

    raw = np.ascontiguousarray(values.astype(dtype))
    width = raw.dtype.itemsize
    array = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(width), len(raw), [None, pa.py_buffer(raw.tobytes())]
    )
    return array.to_pylist()


def _map_cell(pairs: dict[str, str]) -> bytes:
    parts = [_INT32.pack(len(pairs))]
    for key, value in pairs.items():
        k, v = key.encode(), value.encode()
        parts += (_INT32.pack(len(k)), k, _INT32.pack(len(v)), v)
    return b"".join(parts)


def _text(value: bytes) -> str:
    return value.decode("utf-8", "replace")
