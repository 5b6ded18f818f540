"""Writing a frame to a topic: one Concursus JSON record per event, keyed by aggregate.

:func:`append` validates and encodes the frame (see :meth:`KafkaSource.append
<concursus_lab.sources.kafka.source.KafkaSource.append>` for what is written), then sends
every record with an idempotent producer and flushes before it returns.
"""

from __future__ import annotations

import polars as pl

from concursus_lab.common.progress import bar as progress_bar
from concursus_lab.exceptions import SourceError, SourceUnavailable
from concursus_lab.frame.schema import for_writing
from concursus_lab.frame.timeuuid import processing_time, time_uuids
from concursus_lab.sources.kafka import codec
from concursus_lab.sources.kafka.connection import Cluster, kafka_python


def append(
    cluster: Cluster,
    topic: str,
    frame: pl.DataFrame,
    *,
    layout: codec.Layout,
    progress: bool | None,
    timeout: float,
) -> int:
    """Validate ``frame`` and write one record per event; returns how many were written."""
    if layout not in codec.LAYOUTS:
        raise SourceError(f"`layout` must be 'flat' or 'nested', got {layout!r}.")
    frame = for_writing(frame, milliseconds="Concursus JSON")
    if frame.height == 0:
        return 0
    missing = frame["processing_id"].is_null()
    if missing.any():
        stamped = time_uuids(frame["processing_timestamp"])
        frame = frame.with_columns(
            pl.when(missing).then(stamped).otherwise(pl.col("processing_id")).alias("processing_id")
        )
    by_id = processing_time(frame["processing_id"]).is_not_null()
    record_times = (
        pl.when(by_id).then(None).otherwise(pl.col("processing_timestamp").dt.epoch("ms"))
    )
    times = frame.select(record_times).to_series().to_list()
    values = codec.encode(frame, layout).to_list()
    keys = frame["aggregate_id"].cast(pl.Binary).to_list()
    return _produce(cluster, topic, keys, values, times, progress, timeout)


def _produce(
    cluster: Cluster,
    topic: str,
    keys: list[bytes],
    values: list[bytes],
    times: list[int | None],
    progress: bool | None,
    timeout: float,
) -> int:
    kafka = kafka_python()
    producer = cluster.producer()
    failures: list[BaseException] = []
    bar = progress_bar(progress, total=len(values), what="writing", unit="events")
    written = 0
    try:
        send = producer.send
        for key, value, at in zip(keys, values, times, strict=True):
            send(topic, value=value, key=key, timestamp_ms=at).add_errback(failures.append)
            written += 1
            if written % 10_000 == 0:
                bar.update(10_000)
        producer.flush(timeout=max(timeout, 30.0))
    except kafka.errors.KafkaError as exc:
        failures.append(exc)
    finally:
        bar.update(written - bar.n)
        bar.close()
        producer.close(timeout=5)
    if failures:
        raise SourceUnavailable(
            f"{len(failures):,} of {len(values):,} events were not written to "
            f"{topic!r} ({type(failures[0]).__name__}: {failures[0]}). Appending "
            "the same frame again is safe: reads keep the last delivery of each identity."
        )
    return len(values)
