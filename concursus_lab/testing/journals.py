"""Pekko journals for tests: canonical events written as ``pekko-persistence-cassandra`` does.

A journal is read, never written, by concursus-lab (:mod:`concursus_lab.sources.pekko`). A
test of a reader (ours, or a mapping of your own) still needs journals it can shape at will:
:func:`create_journal` makes the plugin's tables (its own CQL, as its ``tables-autocreate``
makes them) and :func:`write_journal` writes canonical events as the plugin stores them, one
row per event, in unlogged batches of one partition each:

* ``persistence_id`` = ``Type|id``; ``sequence_nr`` counts each aggregate's distinct events
  (event time, stream id) from 1, so two deliveries of one event share it;
  ``partition_nr`` = ``(sequence_nr - 1) // partition_size``;
* ``timestamp`` = the event's ``processing_id`` (a time UUID), ``timebucket`` its hour;
* ``ser_id`` 31 (Jackson JSON), ``ser_manifest`` = ``<package>.<Type>$<name>`` (``#<version>``
  after it unless the version is ``"0"``), ``event`` = the JSON of the parameters with the event
  time as ISO 8601 text in the field ``at`` beside them (or, with ``nest="body"``, the
  parameters in that field, so that they read back unchanged, and the stream id in the
  field ``stream``).

The driver session is the caller's (``cassandra-driver``).
"""

from __future__ import annotations

import uuid
from typing import Any

import polars as pl

from concursus_lab.common.optional import require

_NEEDED_BY = "Pekko journals written to Cassandra"

#: The plugin's tables, as pekko-persistence-cassandra 1.1 makes them.
MESSAGES = """CREATE TABLE IF NOT EXISTS {keyspace}.messages (
  persistence_id text, partition_nr bigint, sequence_nr bigint, timestamp timeuuid,
  timebucket text, writer_uuid text, ser_id int, ser_manifest text, event_manifest text,
  event blob, meta_ser_id int, meta_ser_manifest text, meta blob, tags set<text>,
  PRIMARY KEY ((persistence_id, partition_nr), sequence_nr, timestamp))"""
PERSISTENCE_IDS = (
    "CREATE TABLE IF NOT EXISTS {keyspace}.all_persistence_ids (persistence_id text PRIMARY KEY)"
)
_INSERT = (
    "INSERT INTO {keyspace}.messages (persistence_id, partition_nr, sequence_nr, timestamp, "
    "timebucket, writer_uuid, ser_id, ser_manifest, event_manifest, event) "
    "VALUES (?, ?, ?, ?, ?, ?, 31, ?, '', ?)"
)
_BATCH = 50


def create_journal(session: Any, keyspace: str) -> None:
    """Make ``keyspace`` (replication factor 1) and the journal's two tables."""
    session.execute(
        f"CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = "
        "{'class': 'SimpleStrategy', 'replication_factor': 1}"
    )
    session.execute(MESSAGES.format(keyspace=keyspace), timeout=120)
    session.execute(PERSISTENCE_IDS.format(keyspace=keyspace), timeout=120)


def journal_rows(
    events: pl.DataFrame, *, nest: str | None = None, partition_size: int = 500_000
) -> pl.DataFrame:
    """The journal rows of canonical ``events`` (see the module docstring), as a frame."""
    numbered = events.with_columns(
        pl.struct("event_timestamp", "stream_id")
        .rank("dense")
        .over("aggregate_type", "aggregate_id")
        .cast(pl.Int64)
        .alias("sequence_nr")
    )
    at = pl.col("event_timestamp").dt.to_string("%Y-%m-%dT%H:%M:%S%.6fZ")
    stamp = pl.concat_str(pl.lit('"'), at, pl.lit('"'))
    if nest is None:
        inner = pl.col("parameters").str.slice(1)
        body = pl.concat_str(
            pl.lit('{"at":'),
            stamp,
            pl.when(inner == "}").then(pl.lit("}")).otherwise(pl.concat_str(pl.lit(","), inner)),
        )
    else:
        stream = pl.struct(pl.col("stream_id").alias("stream")).struct.json_encode()
        body = pl.concat_str(
            pl.lit('{"at":'),
            stamp,
            pl.lit(","),
            stream.str.slice(1).str.strip_suffix("}"),
            pl.lit(f',"{nest}":'),
            pl.col("parameters"),
            pl.lit("}"),
        )
    manifest = pl.concat_str(
        pl.lit("lab.events."),
        "aggregate_type",
        pl.lit("$"),
        "name",
        pl.when(pl.col("version") != "0")
        .then(pl.concat_str(pl.lit("#"), "version"))
        .otherwise(pl.lit("")),
    )
    hour = pl.col("processing_timestamp").dt.truncate("1h").dt.epoch("ms").cast(pl.String)
    return numbered.select(
        pl.concat_str("aggregate_type", pl.lit("|"), "aggregate_id").alias("persistence_id"),
        ((pl.col("sequence_nr") - 1) // partition_size).alias("partition_nr"),
        "sequence_nr",
        pl.col("processing_id").alias("timestamp"),
        hour.alias("timebucket"),
        manifest.alias("ser_manifest"),
        body.cast(pl.Binary).alias("event"),
    )


def write_journal(
    session: Any,
    keyspace: str,
    events: pl.DataFrame,
    *,
    nest: str | None = None,
    partition_size: int = 500_000,
    concurrency: int = 16,
    attempts: int = 5,
) -> int:
    """Write ``events`` into the journal of ``keyspace`` (made by :func:`create_journal`);
    returns the rows written. Batches that time out (a busy server) are written again, up to
    ``attempts`` times: each writes the same rows, so writing one twice changes nothing."""
    execute_concurrent = require("cassandra.concurrent", needed_by=_NEEDED_BY).execute_concurrent
    query = require("cassandra.query", needed_by=_NEEDED_BY)
    BatchStatement, BatchType = query.BatchStatement, query.BatchType

    rows = journal_rows(events, nest=nest, partition_size=partition_size).sort(
        "persistence_id", "partition_nr", "sequence_nr"
    )
    insert = session.prepare(_INSERT.format(keyspace=keyspace))
    ids = session.prepare(f"INSERT INTO {keyspace}.all_persistence_ids (persistence_id) VALUES (?)")
    writer = str(uuid.UUID(int=0x5EED))
    statements: list = [(ids, (pid,)) for pid in rows["persistence_id"].unique().to_list()]
    batch, key = None, None
    for pid, pnr, seq, stamp, bucket, manifest, event in rows.iter_rows():
        if batch is None or key != (pid, pnr) or len(batch) >= _BATCH:
            batch, key = BatchStatement(batch_type=BatchType.UNLOGGED), (pid, pnr)
            statements.append((batch, ()))
        batch.add(insert, (pid, pnr, seq, uuid.UUID(stamp), bucket, writer, manifest, event))
    for _ in range(attempts):
        results = execute_concurrent(
            session, statements, concurrency=concurrency, raise_on_first_error=False
        )
        failed = [(one, why) for one, (ok, why) in zip(statements, results, strict=True) if not ok]
        if not failed:
            return rows.height
        statements = [one for one, _ in failed]
    raise failed[0][1]


__all__ = ["create_journal", "journal_rows", "write_journal"]
