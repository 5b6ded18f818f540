"""Concursus's ``Event`` table into a Spark DataFrame, decoded by the Cassandra source's codec.

The Spark Cassandra Connector reads the table (token-range splits, each near its replica);
each Arrow batch of rows is decoded in the Python worker as the connector hands it over
(:func:`cells_of`: its strings, times and map taken as Arrow columns, never turned back into
the bytes Cassandra sent), by the local source's own rules
(:func:`concursus_lab.sources.cassandra.codec.checked`, and the map's keys and values read
by :func:`~concursus_lab.sources.cassandra.parameters.parameters_from_arrow`): processing
time from the time UUID (Java's malformed variant too), parameters as one JSON object with
sorted keys and exact numbers, null characteristics read as 0. Rows that do not decode go to
the quarantine beside the events, with their reason.

An aggregate type with ids is Cassandra's partition key: that filter is pushed down to
Cassandra (one query per aggregate; docs/spark.md, "What is pushed down"), so reading a
few aggregates of a large table costs little. A type alone is filtered in Spark, after the read.

A row without a ``processingId`` is processed when Cassandra wrote it, as the local source
reads it: the read selects each row's write time with the connector's ``writetime``
function, which its Spark SQL extensions add (:data:`EXTENSIONS`, on in
:func:`~concursus_lab.spark.session`). A session without them sends such rows to the
quarantine, with a reason that says so.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from concursus_lab.exceptions import SourceError
from concursus_lab.frame.identity import IDENTITY
from concursus_lab.frame.schema import COLUMNS, SCHEMA
from concursus_lab.sources.cassandra.codec import CQL_COLUMNS, QUARANTINE_SCHEMA, Cells, checked
from concursus_lab.sources.cassandra.columns import Reasons
from concursus_lab.sources.cassandra.connect import env, parse_url
from concursus_lab.sources.cassandra.parameters import parameters_from_arrow
from concursus_lab.sources.cassandra.write_times import with_write_times
from concursus_lab.spark.arrow import batches_of, canonical, events_schema, from_batches
from concursus_lab.spark.one_pass import Plan

#: The connector's Spark SQL extensions: with them, a read selects each row's write time.
EXTENSIONS = "com.datastax.spark.connector.CassandraSparkExtensions"
NO_PROCESSING_ID = (
    "processingId is null, and its write time was not read: add "
    f"spark.sql.extensions={EXTENSIONS} to the session"
)
_WRITTEN = "__written"
_TLS = "spark.cassandra.connection.ssl.enabled"
#: Rows per page the connector asks Cassandra for, unless the session sets it: 5,000 rather
#: than its 1,000 took the JVM's CPU for 1M events from 10-14 s to 8-9 s (4 interleaved
#: pairs of ``state_at`` on one session, 2026-12-08; docs/scale.md).
FETCH = ("spark.cassandra.input.fetch.sizeInRows", "5000")
_REASON = pl.Schema({"reason": pl.String})


def read(
    spark: Any, url: str, aggregate_type: str | None, aggregate_ids: Iterable[str] | None
) -> tuple[Any, Plan]:
    """The decoded Spark DataFrame of ``url``'s ``Event`` rows (canonical columns and
    ``reason``, null on every row that decoded), and the plan that answers a question about
    its events in one pass, partition by partition as read
    (:mod:`~concursus_lab.spark.one_pass`)."""
    address = parse_url(url)
    options = {
        "keyspace": address.keyspace,
        "table": "event",
        "spark.cassandra.connection.host": ",".join(address.hosts),
        "spark.cassandra.connection.port": str(address.port),
    }
    options[FETCH[0]] = spark.conf.get(FETCH[0], FETCH[1])
    _check_tls(spark, url)
    username = address.username or env("username")
    if username:
        options["spark.cassandra.auth.username"] = username
        options["spark.cassandra.auth.password"] = env("password") or ""
    rows = _load(spark, options)
    F = _functions()
    if aggregate_type is not None:
        rows = rows.filter(F.col("aggregatetype") == aggregate_type)
    if aggregate_ids is not None:
        ids = [aggregate_ids] if isinstance(aggregate_ids, str) else list(aggregate_ids)
        rows = rows.filter(F.col("aggregateid").isin(ids))
    columns = [F.col(c.lower()) for c in CQL_COLUMNS]
    if EXTENSIONS in spark.conf.get("spark.sql.extensions", ""):
        columns.append(F.expr("writetime(name)").alias(_WRITTEN))
    raw = rows.select(*columns)
    plan = Plan(raw, ("aggregatetype", "aggregateid"), True, _one_pass)
    return raw.mapInArrow(_decode_batches, events_schema(_REASON)), plan


def _check_tls(spark: Any, url: str) -> None:
    """Refuse to read without TLS when the Cassandra source's settings ask for it: the
    connector takes Java key stores, not the PEM files those settings name, so the session
    must say how (else the read fails later with a bare connection error)."""
    wanted = env("ca_file") or env("tls") in ("1", "true", "yes")
    if wanted and spark.conf.get(_TLS, "false").lower() != "true":
        raise SourceError(
            f"TLS is asked for {url} (CONCURSUS_LAB_CASSANDRA_TLS or _CA_FILE is set), but "
            f"the Spark session has no {_TLS}=true. The connector reads Java key stores: "
            "set spark.cassandra.connection.ssl.enabled=true and "
            "spark.cassandra.connection.ssl.trustStore.path/.password/.type (and "
            "clientAuth/keyStore for a client certificate) on the session."
        )


#: Seconds a keyspace or table made a moment ago may take to reach the connector's metadata.
SCHEMA_WAIT = 15.0


def _load(spark: Any, options: dict[str, str]) -> Any:
    """The table, waiting a little for a keyspace or table created a moment ago: the
    connector learns of schema changes from the driver's events, a second or so later."""
    from pyspark.errors import AnalysisException

    deadline = time.monotonic() + SCHEMA_WAIT
    while True:
        try:
            return spark.read.format("org.apache.spark.sql.cassandra").options(**options).load()
        except AnalysisException as exc:
            if "Couldn't find" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(1.0)


def _functions() -> Any:
    from pyspark.sql import functions

    return functions


def _decode_batches(batches):
    for batch in batches:
        events, quarantine = decode(batch)
        yield from batches_of(pl.concat([events, quarantine], how="diagonal"))


def _one_pass(batches, as_read: bool = True) -> tuple[pl.DataFrame, dict[str, int]]:
    """A partition of rows, as the connector read them (whole aggregates: the partition key
    is the aggregate), decoded into the events ``.frame`` gives
    (:mod:`~concursus_lab.spark.one_pass`)."""
    frames = [decode(batch)[0].drop("reason") for batch in batches]
    events = pl.concat(frames) if frames else pl.DataFrame(schema=SCHEMA)
    return canonical(from_batches(batches_of(events))), {}


def cells_of(batch: pa.RecordBatch) -> Cells:
    """A batch of the connector's Arrow columns as the codec's :class:`Cells`, taken as they
    are: strings as Arrow strings, the map's keys and values from its buffers
    (:func:`~concursus_lab.sources.cassandra.parameters.parameters_from_arrow`), times as
    numbers; the codec's :func:`~concursus_lab.sources.cassandra.codec.checked` then applies
    the rules of an event, as to a page the driver read."""
    n = batch.num_rows
    text = {
        name: pl.Series(batch.column(cql.lower()).cast(pa.large_string()))
        for name, cql in _TEXT.items()
    }
    micros = pc.cast(batch.column("eventtimestamp"), pa.timestamp("us"))
    micros = pc.cast(micros, pa.int64()).to_numpy(zero_copy_only=False)  # a key: never null
    millis = np.floor_divide(micros, 1000)
    characteristics = batch.column("characteristics")
    chars_null = characteristics.is_null().to_numpy(zero_copy_only=False)
    chars = pc.fill_null(characteristics, 0).to_numpy(zero_copy_only=False).astype(np.int64)
    parameters, bad, stored = parameters_from_arrow(batch.column("parameters"))
    return Cells(
        Reasons(n),
        text,
        millis,
        np.zeros(n, dtype=bool),
        pl.Series(batch.column("processingid").cast(pa.large_string())),
        chars,
        chars_null,
        parameters,
        bad,
        stored,
    )


#: The canonical text columns and the ``Event`` columns they come from.
_TEXT = {
    "aggregate_type": "aggregateType",
    "aggregate_id": "aggregateId",
    "stream_id": "streamId",
    "name": "name",
    "version": "version",
}


def decode(batch: pa.RecordBatch) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(events with a null ``reason``, quarantined rows with theirs) of one batch.

    A row without a ``processingId`` is processed when Cassandra wrote it, as the local
    source reads it (:func:`~concursus_lab.sources.cassandra.write_times.with_write_times`),
    when the batch has the write times; else it goes to the quarantine.
    """
    events, quarantine = checked(cells_of(batch))
    missing = events["processing_timestamp"].is_null()
    if missing.any() and _WRITTEN in batch.schema.names:
        keys = events.filter(missing).select(IDENTITY)
        written = _identities(batch).with_columns(
            pl.Series(_WRITTEN, batch.column(_WRITTEN).to_pylist(), dtype=pl.Int64)
        )
        found = keys.join(written, on=list(IDENTITY), how="left", maintain_order="left")
        events, quarantine = with_write_times(events, quarantine, keys, found[_WRITTEN].to_list())
        missing = events["processing_timestamp"].is_null()
    if missing.any():
        lost = events.filter(missing).drop("processing_timestamp")
        lost = lost.with_columns(pl.lit(NO_PROCESSING_ID).alias("reason"))
        quarantine = pl.concat([quarantine, lost.select(QUARANTINE_SCHEMA.names())])
        events = events.filter(~missing)
    events = events.with_columns(pl.lit(None, pl.String).alias("reason"))
    no_time = pl.lit(None, events.schema["event_timestamp"]).alias("processing_timestamp")
    quarantine = quarantine.with_columns(no_time)
    return events, quarantine.select(*COLUMNS, "reason")


def _identities(batch: pa.RecordBatch) -> pl.DataFrame:
    """The batch's rows' identities, in the canonical columns' names and dtypes."""
    names = ("aggregatetype", "aggregateid", "eventtimestamp", "streamid")
    frame = pl.from_arrow(pa.table([batch.column(n) for n in names], names=list(IDENTITY)))
    return frame.with_columns(pl.col("event_timestamp").cast(SCHEMA["event_timestamp"]))  # type: ignore[union-attr]


def quarantine_of(decoded: Any) -> Any:
    """The quarantined rows of ``decoded``, in the local source's quarantine columns."""
    F = _functions()
    return decoded.filter(F.col("reason").isNotNull()).select(*QUARANTINE_SCHEMA.names())
