"""Frames between polars, Arrow and Spark: one set of conversions every Spark step uses.

Spark's Python workers exchange Arrow record batches with the JVM (``mapInArrow``), in the
session's time zone (UTC), so a batch becomes a polars frame without a copy per value and a
polars frame goes back the same way. Spark's Arrow support stops short of Arrow's large
types, so frames go back at polars' oldest compatibility level (``string``, ``list``).

For example::

    import polars as pl
    spark_schema(pl.Schema({"aggregate_id": pl.String, "n": pl.Int64}))
    # StructType([StructField('aggregate_id', StringType(), True),
    #             StructField('n', LongType(), True)])
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import Any

import polars as pl
import pyarrow as pa

from concursus_lab.frame.schema import SCHEMA


def to_arrow(frame: pl.DataFrame) -> pa.Table:
    """``frame`` as an Arrow table Spark can read (no large types)."""
    return frame.to_arrow(compat_level=pl.CompatLevel.oldest())


def from_batches(
    batches: Iterable[pa.RecordBatch], schema: pa.Schema | None = None
) -> pl.DataFrame:
    """Record batches (one partition's, say) as one polars frame."""
    batches = list(batches)
    if not batches:
        if schema is None:
            return pl.DataFrame()
        return pl.from_arrow(schema.empty_table())  # type: ignore[return-value]
    return pl.from_arrow(pa.Table.from_batches(batches))  # type: ignore[return-value]


def canonical(frame: pl.DataFrame) -> pl.DataFrame:
    """A batch's canonical columns in their canonical dtypes (any extra columns after).

    Spark sends its timestamps as microseconds in the session zone (UTC), and int columns
    as it typed them: each canonical column is cast to the dtype :data:`SCHEMA` gives it.
    """
    fixes = [
        pl.col(name).cast(dtype)
        for name, dtype in SCHEMA.items()
        if name in frame.columns and frame.schema[name] != dtype
    ]
    return frame.with_columns(fixes) if fixes else frame


def spark_schema(schema: pl.Schema) -> Any:
    """The Spark ``StructType`` of a polars schema."""
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(to_arrow(pl.DataFrame(schema=schema)).schema)


def events_schema(extra: pl.Schema | None = None) -> Any:
    """The Spark schema of the canonical event frame (then ``extra`` columns)."""
    return spark_schema(pl.Schema({**SCHEMA, **(extra or {})}))


def to_ipc(frame: pl.DataFrame) -> bytes:
    """``frame`` as Arrow IPC bytes, with polars' own dtypes kept exactly."""
    out = io.BytesIO()
    frame.write_ipc(out, compression="uncompressed")
    return out.getvalue()


def from_ipc(data: bytes) -> pl.DataFrame:
    """The frame :func:`to_ipc` wrote."""
    return pl.read_ipc(io.BytesIO(data))


def batches_of(frame: pl.DataFrame) -> list[pa.RecordBatch]:
    """``frame`` as record batches for a ``mapInArrow`` function to yield."""
    return to_arrow(frame).to_batches()
