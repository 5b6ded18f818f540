"""A Kafka topic of Concursus JSON into a Spark DataFrame, decoded by the Kafka source's codec.

Spark's Kafka source reads the topic as a bounded batch: every partition from its first
offset (or, with ``since``, from where that processing time begins, found as the local
source finds it) to the end offset it has when :func:`read` is called (asked of the brokers
then, so every later action on the DataFrame sees the same records, however much is
written meanwhile). Each Arrow batch of records is decoded whole by
:func:`concursus_lab.sources.kafka.reading.decode_joined`, the local source's own decoder: both
layouts (flat and nested), single events or arrays, processing time from the time UUID or
else the record's timestamp, parameters as one JSON object with sorted keys and exact
numbers. The frame has the local source's ``kafka_partition``, ``kafka_offset`` and
``kafka_timestamp`` columns; records that do not decode go to the quarantine beside it.

Records are keyed by aggregate id, so a read for some aggregate ids keeps only their records
before decoding; an aggregate type is filtered after.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from concursus_lab.sources.kafka.connection import Cluster, env_settings, kafka_python
from concursus_lab.sources.kafka.reading import FRAME_SCHEMA, QUARANTINE_SCHEMA, decode_joined
from concursus_lab.sources.kafka.records import Records
from concursus_lab.sources.kafka.seek import start_offsets
from concursus_lab.sources.kafka.source import KafkaSource
from concursus_lab.spark.arrow import batches_of, canonical, from_batches, spark_schema
from concursus_lab.spark.kafka_partitions import default_partitions
from concursus_lab.spark.one_pass import MISPLACED, NOT_WHOLE, Plan, keyed

#: A local source's decoder of records of several partitions: (events, quarantine).
Decoder = Callable[[np.ndarray, Records], tuple[pl.DataFrame, pl.DataFrame]]
_TIMEOUT = 10.0  # seconds for the brokers' answers while the bounds are found
#: The most records a Kafka partition may hold to be folded whole, as read, in one Python
#: worker (~1 KB per event there: docs/scale.md); larger ones are shuffled on their key.
IN_PLACE_MOST = 2_000_000
#: The decoded frame: the local source's columns, then what a quarantined record needs.
DECODED = pl.Schema({**FRAME_SCHEMA, "raw": pl.Binary, "reason": pl.String})


def bounds(source: KafkaSource, since: dt.datetime | None) -> tuple[dict, dict, dict]:
    """Each partition's first offset to read and its end offset now: where the bounded read
    starts (the beginning, or where processing time ``since`` begins, as the local source
    seeks) and where it stops; and about how many records lie between."""
    cluster = Cluster(source.servers, env_settings(), _TIMEOUT)
    consumer = cluster.consumer()
    try:
        kafka = kafka_python()
        partitions = sorted(consumer.partitions_for_topic(source.topic) or ())
        tps = [kafka.TopicPartition(source.topic, p) for p in partitions]
        ends = consumer.end_offsets(tps)
        starts = {tp: -2 for tp in tps}  # Spark's "earliest"
        firsts = consumer.beginning_offsets(tps)  # where it is now
        if since is not None:
            starts = firsts = start_offsets(
                consumer, tps, since, from_end=False, cluster=cluster, timeout=_TIMEOUT
            )
        return (
            {tp.partition: offset for tp, offset in starts.items()},
            {tp.partition: offset for tp, offset in ends.items()},
            {tp.partition: ends[tp] - (firsts[tp] or 0) for tp in tps},
        )
    finally:
        consumer.close()


def read(
    spark: Any,
    url: str,
    aggregate_type: str | None,
    aggregate_ids: Iterable[str] | None,
    since: dt.datetime | None = None,
    **options: Any,
) -> tuple[Any, Plan | None]:
    """The decoded Spark DataFrame of ``url``'s topic up to its end offsets of now (from where
    ``since`` begins, when given: then only events processed at or after it), and the plan
    that answers a question about its events in one pass (a topic of Concursus JSON; see
    :mod:`~concursus_lab.spark.one_pass`). ``options`` open the source (``mapping=``,
    ``registry=``): its own decoder then runs on the executors."""
    source = KafkaSource.from_url(url, **options)  # checks the URL and that the topic exists
    own = getattr(source, "mapping", None) is not None  # keys may not be aggregate ids
    starts, ends, counts = bounds(source, since)
    starting = json.dumps({source.topic: {str(p): o for p, o in starts.items()}})
    ending = json.dumps({source.topic: {str(p): o for p, o in ends.items()}})
    settings = env_settings()
    records = (
        spark.read.format("kafka")
        .option("kafka.bootstrap.servers", ",".join(source.servers))
        .option("subscribe", source.topic)
        .option("startingOffsets", starting)
        .option("endingOffsets", ending)
        .options(**_security(settings))
        .option("includeHeaders", str(own).lower())
        .load()
    )
    from pyspark.sql import functions as F

    ids = None
    if aggregate_ids is not None:
        ids = [aggregate_ids] if isinstance(aggregate_ids, str) else list(aggregate_ids)
        if not own:
            records = records.filter(F.col("key").cast("string").isin(ids))
    shape = decoded_schema(source)
    raw = records.select("key", "value", "partition", "offset", "timestamp")
    records = records.select("value", "partition", "offset", "timestamp", *_OWN * own)
    decoder = source._decode_joined if own else decode_joined
    decoded = records.mapInArrow(
        _named(_decode_batches, decoder, own, shape), spark_schema(shape)
    )
    keep = [] if ids is None or not own else [F.col("aggregate_id").isin(ids)]
    if aggregate_type is not None:
        keep.append(F.col("aggregate_type") == aggregate_type)
    if since is not None:  # the seek never starts late, but may start early: filter exactly
        keep.append(F.col("processing_timestamp") >= F.lit(since))
    for condition in keep:
        decoded = decoded.filter(F.col("reason").isNotNull() | condition)
    kept = functools.partial(_kept, aggregate_type, since)
    whole_keys = functools.partial(_one_pass, kept, len(ends))
    in_place = (
        max(counts.values(), default=0) <= IN_PLACE_MOST
    )  # one Kafka partition is one bucket: it must fit
    return decoded, None if own else Plan(raw, ("key",), in_place, whole_keys)


def _kept(aggregate_type: str | None, since: dt.datetime | None, events: pl.DataFrame):
    """The events a read keeps (of its aggregate type, processed at or after ``since``)."""
    if aggregate_type is not None:
        events = events.filter(pl.col("aggregate_type") == aggregate_type)
    if since is not None:
        events = events.filter(pl.col("processing_timestamp") >= since)
    return events


#: Where a decoded event's record is: its partition and offset.
_AT = ["kafka_partition", "kafka_offset"]


def _one_pass(kept, partitions: int, batches, as_read: bool) -> tuple[pl.DataFrame, dict[str, int]]:
    """Records of whole keys (one Kafka partition ``as_read``, or shuffled on their key),
    decoded into the events ``.frame`` gives (:mod:`~concursus_lab.spark.one_pass`), and how
    many events may not be whole aggregates here: as read, those not in the partition the
    default partitioner of a topic of ``partitions`` gives their aggregate id
    (:data:`MISPLACED`); shuffled, those whose record key is not their aggregate id
    (:data:`NOT_WHOLE`)."""
    frames, wrong = [], 0
    for batch in batches:
        decoded = decode(batch)
        events = kept(decoded.filter(pl.col("reason").is_null()).drop("raw", "reason"))
        if as_read:
            ids = events["aggregate_id"].cast(pl.Binary).to_arrow()
            placed = pl.Series(default_partitions(ids, partitions))
            wrong += int((placed != events["kafka_partition"].cast(pl.Int64)).sum())
        else:
            at = pl.DataFrame(
                [
                    pl.Series(_AT[0], batch.column("partition")),
                    pl.Series(_AT[1], batch.column("offset")),
                ]
            ).cast({c: events.schema[c] for c in _AT})
            wrong += keyed(events, at.with_columns(pl.Series("key", batch.column("key"))), _AT)
        frames.append(events)
    events = pl.concat(frames) if frames else pl.DataFrame(schema=FRAME_SCHEMA)
    facts = {MISPLACED if as_read else NOT_WHOLE: wrong}
    return canonical(from_batches(batches_of(events))), facts


def _security(settings: dict[str, Any]) -> dict[str, str]:
    """The project's Kafka security settings (environment variables) as Spark options."""
    names = {
        "security_protocol": "security.protocol",
        "sasl_mechanism": "sasl.mechanism",
        "ssl_cafile": "ssl.truststore.location",
    }
    out = {f"kafka.{names[k]}": str(v) for k, v in settings.items() if k in names}
    if "ssl_cafile" in settings:  # a PEM file, as kafka-python takes it
        out["kafka.ssl.truststore.type"] = "PEM"
    user, password = settings.get("sasl_plain_username"), settings.get("sasl_plain_password")
    if user:
        module = (
            "org.apache.kafka.common.security.scram.ScramLoginModule"
            if str(settings.get("sasl_mechanism", "")).startswith("SCRAM")
            else "org.apache.kafka.common.security.plain.PlainLoginModule"
        )
        out["kafka.sasl.jaas.config"] = (
            f'{module} required username="{user}" password="{password}";'
        )
    return out


#: What a topic of your own shape also hands over: a mapping may name keys and headers.
_OWN = ("key", "headers")


def decoded_schema(source: KafkaSource) -> pl.Schema:
    """The decoded frame's columns: the source's own, then what a quarantined record needs."""
    if getattr(source, "mapping", None) is None:
        return DECODED
    return pl.Schema({**source._empty().schema, "raw": pl.Binary, "reason": pl.String})


def _named(function, *arguments):
    """``functools.partial`` under the function's own name, so that Spark's plan (and a test
    reading it) names the stage (``_decode_batches``), not ``partial``."""
    bound = functools.partial(function, *arguments)
    bound.__name__ = function.__name__
    return bound


def _decode_batches(decoder, keyed, shape, batches):
    for batch in batches:
        yield from batches_of(decode(batch, decoder, shape, keyed=keyed))


def decode(
    batch: pa.RecordBatch,
    decoder: Decoder = decode_joined,
    shape: pl.Schema = DECODED,
    *,
    keyed: bool = False,
) -> pl.DataFrame:
    """One batch of records, decoded: events (null ``reason``) and bad records (with it).

    ``decoder`` is the local source's own: Concursus JSON's by default, else the source's
    (:meth:`KafkaSource._decode_joined`, a mapped or schema-registry topic; ``keyed``: its
    mapping may read the records' keys and headers). The batch is decoded whole, as the local
    source decodes a poll of several partitions: its columns become one
    :class:`~concursus_lab.sources.kafka.records.Records` and each record's partition."""
    events, quarantine = decoder(*_records(batch, keyed))
    return pl.concat(
        [pl.DataFrame(schema=shape), events, quarantine], how="diagonal_relaxed"
    ).select(list(shape))


def _records(batch: pa.RecordBatch, keyed: bool) -> tuple[np.ndarray, Records]:
    """Spark's Kafka columns as the local decoders read them: values (and, for a topic of
    your own shape, keys and headers), offsets, epoch milliseconds, partitions."""
    partitions = pc.cast(batch.column("partition"), pa.int32()).to_numpy(zero_copy_only=False)
    offsets = pc.cast(batch.column("offset"), pa.int64()).to_numpy(zero_copy_only=False)
    stamps = pc.cast(batch.column("timestamp"), pa.timestamp("ms"))
    millis = pc.cast(stamps, pa.int64()).to_numpy(zero_copy_only=False)
    keys = headers = None
    if keyed:
        keys = batch.column("key").to_pylist()
        pairs = batch.column("headers")
        if pairs.null_count < len(pairs) and len(pc.list_flatten(pairs)):
            headers = [
                tuple((h["key"], h["value"]) for h in listed or ()) for listed in pairs.to_pylist()
            ]
    values = batch.column("value").to_pylist()
    return partitions, Records(values, offsets, millis, 0, keys=keys, headers=headers)


def frame_of(decoded: Any) -> Any:
    """The events of ``decoded``: the local source's columns."""
    from pyspark.sql import functions as F

    events = [c for c in decoded.columns if c not in ("raw", "reason")]
    return decoded.filter(F.col("reason").isNull()).select(*events)


def quarantine_of(decoded: Any) -> Any:
    """The records of ``decoded`` that did not decode, in the local source's columns."""
    from pyspark.sql import functions as F

    return decoded.filter(F.col("reason").isNotNull()).select(*QUARANTINE_SCHEMA.names())
