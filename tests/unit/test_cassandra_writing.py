"""What an append sends to Cassandra, without a server: the bytes of every cell (the same
as the driver's own ``bind`` of each row's values) and how rows are packed into batches.

Against a real Cassandra (the rows read back, the Catalogue, Java Concursus's bytes):
``tests/integration/test_cassandra.py``.
"""

from __future__ import annotations

import itertools
import uuid

import polars as pl
import pytest

import concursus_lab as cl
from concursus_lab.frame.jhash import bucket
from concursus_lab.frame.schema import INITIAL, TERMINAL, for_writing
from concursus_lab.sources.cassandra import writing
from concursus_lab.sources.cassandra.codec import CQL_COLUMNS
from concursus_lab.sources.cassandra.parameters import encode_parameters
from concursus_lab.sources.catalogue import catalogue_changes

query = pytest.importorskip("cassandra.query")
protocol = pytest.importorskip("cassandra.protocol")
cqltypes = pytest.importorskip("cassandra.cqltypes")

_TYPES = {
    "aggregateType": cqltypes.UTF8Type,
    "aggregateId": cqltypes.UTF8Type,
    "eventTimestamp": cqltypes.DateType,
    "streamId": cqltypes.UTF8Type,
    "processingId": cqltypes.TimeUUIDType,
    "name": cqltypes.UTF8Type,
    "version": cqltypes.UTF8Type,
    "parameters": cqltypes.MapType.apply_parameters([cqltypes.UTF8Type, cqltypes.UTF8Type]),
    "characteristics": cqltypes.Int32Type,
    "[timestamp]": cqltypes.LongType,
}


def prepared_insert() -> query.PreparedStatement:
    """The Event INSERT as the driver prepares it (no server: the metadata made by hand)."""
    columns = [protocol.ColumnMetadata("ks", "event", name, kind) for name, kind in _TYPES.items()]
    return query.PreparedStatement(
        columns, b"insert-id", [0, 1], writing._INSERT, "ks", 5, [], None
    )


def messy_frame() -> pl.DataFrame:
    history = cl.sample.parcels(120, seed=3)
    odd = {
        0: '{"n":12345678901234567890,"f":1.50e3,"s":"caf\\u00e9 \\ud83d\\ude9a"}',
        1: "{}",
        2: '{"nested":{"b":[1,2.50,null],"a":true},"z":""}',
    }
    parameters = [odd.get(i, p) for i, p in enumerate(history["parameters"].to_list())]
    history = history.with_columns(
        pl.Series("parameters", parameters),
        pl.Series("aggregate_id", ["pärcel-ü"] * 2 + history["aggregate_id"].to_list()[2:]),
    )
    return for_writing(history, milliseconds="Cassandra").sort("aggregate_type", "aggregate_id")


def driver_values(frame: pl.DataFrame) -> list[list[bytes]]:
    """Each row bound the driver's way, from Python values (what append did before)."""
    insert = prepared_insert()
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
    return [insert.bind(row).values for row in zip(*columns, strict=True)]


def test_every_cell_is_the_bytes_the_driver_would_bind():
    frame = messy_frame()
    rows, sizes = writing.cells(frame)
    assert [list(r) for r in rows] == driver_values(frame)
    assert all(size > sum(map(len, r)) for size, r in zip(sizes, rows, strict=True))
    assert len(CQL_COLUMNS) + 1 == len(rows[0])


def test_the_routing_key_is_the_drivers():
    frame = messy_frame()
    rows, _ = writing.cells(frame.head(3))
    bound = query.BoundStatement(prepared_insert())
    bound.values = list(rows[0])
    assert writing.routing_key(rows[0]) == bound.routing_key


def tasks(frame: pl.DataFrame, replicas=None) -> list:
    return list(
        writing.event_tasks(
            frame,
            frame["processing_id"],
            prepare=lambda _: prepared_insert(),
            level=1,
            replicas=replicas,
        )
    )


def statement_rows(task) -> list[tuple]:
    statement = task.statement
    if isinstance(statement, query.BatchStatement):
        return [tuple(values) for _, _, values in statement._statements_and_parameters]
    return [tuple(statement.values)]


def test_batches_hold_whole_aggregates_within_the_servers_thresholds(monkeypatch):
    frame = messy_frame()
    big = frame.filter(pl.col("aggregate_id") == frame["aggregate_id"][5])
    bulky = big.with_columns(pl.lit('{"blob":"' + "x" * 3000 + '"}').alias("parameters"))
    huge = pl.concat([bulky] * 4).with_columns(
        pl.lit("zz-huge").alias("aggregate_id"),
        pl.col("event_timestamp").dt.offset_by(pl.int_range(pl.len()).cast(pl.String) + "ms"),
    )
    frame = pl.concat([frame, bulky.with_columns(pl.lit("zz-big").alias("aggregate_id")), huge])
    monkeypatch.setattr(writing, "PARTITION_BYTES", 16_000)  # zz-huge holds about 40 kB
    made = tasks(frame)
    sent = [statement_rows(t) for t in made]
    rows, sizes = writing.cells(frame)
    assert list(itertools.chain.from_iterable(sent)) == rows  # every row once, in order
    size_of = dict(zip(rows, sizes.tolist(), strict=True))
    assert sum(t.extra for t in made) == frame.height
    owners: dict[bytes, set[int]] = {}
    for i, batch in enumerate(sent):
        size = sum(size_of[r] for r in batch)
        partitions = {r[:2] for r in batch}
        if len(partitions) > 1:  # Cassandra warns only of batches of several partitions
            assert len(partitions) <= writing.BATCH_PARTITIONS
            assert size <= writing.BATCH_BYTES
        else:
            assert size <= writing.PARTITION_BYTES or len(batch) == 1
        for p in partitions:
            owners.setdefault(p, set()).add(i)
    split = {p for p, batches in owners.items() if len(batches) > 1}
    assert split == {(b"parcel", b"zz-huge")}  # zz-big (over BATCH_BYTES) goes whole, alone
    assert [len(owners[(b"parcel", b"zz-huge")])] == [3]
    assert len(made) < frame.select(pl.struct("aggregate_id").n_unique()).item()


def test_batches_mix_only_aggregates_of_the_same_replicas():
    frame = messy_frame()
    made = tasks(frame, replicas=lambda key: len(key) % 3)
    for task in made:
        keys = {writing.routing_key(r) for r in statement_rows(task)}
        assert len({len(k) % 3 for k in keys}) == 1
    assert sum(t.extra for t in made) == frame.height


def prepared_catalogue(text: str) -> query.PreparedStatement:
    """A Catalogue statement as the driver prepares it; its id is its text."""
    kinds = {"aggregateType": cqltypes.UTF8Type, "bucket": cqltypes.Int32Type}
    kinds["aggregateId"] = cqltypes.UTF8Type
    columns = [protocol.ColumnMetadata("ks", "catalogue", n, k) for n, k in kinds.items()]
    return query.PreparedStatement(columns, text.encode(), [0, 1], text, "ks", 5, [], None)


def test_catalogue_batches_hold_the_drivers_bind_of_each_change_one_partition_each():
    frame = messy_frame()
    begun = frame["aggregate_id"].unique().sort().head(20)
    frame = frame.with_columns(  # some aggregates begin (added), the sample's end (removed)
        pl.when(pl.col("aggregate_id").is_in(begun.implode()) & (pl.col("characteristics") == 0))
        .then(INITIAL)
        .otherwise(pl.col("characteristics"))
        .alias("characteristics")
    )
    made = list(writing.catalogue_tasks(frame, prepare=prepared_catalogue, level=1, buckets=8))
    sent = [
        (query_id.decode(), tuple(values))
        for task in made
        for _, query_id, values in task.statement._statements_and_parameters
    ]
    changes = catalogue_changes(frame)
    buckets = bucket(changes["aggregate_id"], 8).to_list()
    statement = {INITIAL: writing._INSERT_CATALOGUE, TERMINAL: writing._DELETE_CATALOGUE}
    expected = [
        (statement[change], tuple(prepared_catalogue(statement[change]).bind((t, b, i)).values))
        for (t, i, change), b in zip(changes.rows(), buckets, strict=True)
    ]
    assert {change for *_, change in changes.rows()} == {INITIAL, TERMINAL}
    assert sorted(sent) == sorted(expected)
    for task in made:
        rows = task.statement._statements_and_parameters
        assert 0 < len(rows) <= writing._CATALOGUE_ROWS
        assert len({(query_id, *values[:2]) for _, query_id, values in rows}) == 1
