"""Canonical frames as Concursus JSON events, in either layout, as Kafka records, Redis set
members and RabbitMQ messages carry them (:mod:`~concursus_lab.sources.concursus_json`
reads them back)."""

from __future__ import annotations

from typing import Literal

import polars as pl

Layout = Literal["flat", "nested"]
LAYOUTS: tuple[str, ...] = ("flat", "nested")


def encode(frame: pl.DataFrame, layout: Layout = "flat") -> pl.Series:
    """Each row of a canonical frame as one Concursus JSON event (a Binary series).

    ``parameters`` must already be canonical JSON objects (:func:`normalise_parameters`);
    they are written as JSON values, not as strings. A null ``processing_id`` is written as
    ``""``, which Concursus reads as "not yet logged".

    >>> import concursus_lab as cl
    >>> row = cl.sample.parcels(1, seed=1).head(1)
    >>> encode(row, "nested").cast(pl.String).item()[:60]
    '{"metadata":{"aggregateType":"parcel","aggregateId":"parcel-'
    """
    if layout not in LAYOUTS:
        raise ValueError(f"`layout` must be 'flat' or 'nested', got {layout!r}.")
    meta = pl.struct(
        pl.col("aggregate_type").alias("aggregateType"),
        pl.col("aggregate_id").alias("aggregateId"),
        pl.col("name"),
        pl.col("version"),
        pl.col("event_timestamp").dt.epoch("ms").alias("eventTimestamp"),
        pl.col("stream_id").alias("streamId"),
        pl.col("processing_id").fill_null("").alias("processingId"),
        pl.col("characteristics"),
    ).struct.json_encode()
    if layout == "flat":
        text = pl.concat_str(
            meta.str.head(-1), pl.lit(',"parameters":'), pl.col("parameters"), pl.lit("}")
        )
    else:
        text = pl.concat_str(
            pl.lit('{"metadata":'),
            meta,
            pl.lit(',"parameters":'),
            pl.col("parameters"),
            pl.lit("}"),
        )
    return frame.select(text.cast(pl.Binary).alias("value")).to_series()
