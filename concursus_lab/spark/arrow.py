"""Frames between polars, Arrow and Spark: one set of conversions every Spark step uses.

Spark's Python workers exchange Arrow record batches with the JVM (``mapInArrow``), in the
session's time zone (UTC), so a batch becomes a polars frame without a copy per value and a
polars frame goes back the same way. Spark has fewer types than polars: a frame goes to Spark
with each column in the nearest type Spark has (:func:`spark_dtype`), and Arrow's large lists
as lists. The answers' ``.to_polars()`` never takes this road: it reads the bytes each bucket
wrote, with polars' own dtypes.

=======================  ==========================================================
polars                   on Spark
=======================  ==========================================================
Enum, Categorical        string
UInt8, UInt16, UInt32    the next wider signed int (short, int, long)
UInt64, Int128           decimal(20, 0), decimal(38, 0)
Array                    array (a list)
Datetime, Duration       microseconds (a timestamp with the zone, or without; an interval)
Time                     the interval since midnight: Spark has no time of day
=======================  ==========================================================

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

_WIDER: dict[Any, pl.DataType] = {
    pl.UInt8: pl.Int16(),
    pl.UInt16: pl.Int32(),
    pl.UInt32: pl.Int64(),
    pl.UInt64: pl.Decimal(20, 0),
    pl.Int128: pl.Decimal(38, 0),
    pl.Enum: pl.String(),
    pl.Categorical: pl.String(),
    pl.Time: pl.Duration("us"),
}


def spark_dtype(dtype: pl.DataType) -> pl.DataType:
    """The dtype a column of ``dtype`` takes to reach Spark (see the module docstring)."""
    if isinstance(dtype, pl.Struct):
        return pl.Struct({f.name: spark_dtype(f.dtype) for f in dtype.fields})
    if isinstance(dtype, (pl.List, pl.Array)):
        return pl.List(spark_dtype(dtype.inner))
    if isinstance(dtype, pl.Datetime):
        return pl.Datetime("us", dtype.time_zone)
    if isinstance(dtype, pl.Duration):
        return pl.Duration("us")
    return _WIDER.get(dtype.base_type(), dtype)


def to_arrow(frame: pl.DataFrame) -> pa.Table:
    """``frame`` as an Arrow table Spark can read (Spark's types, no large lists)."""
    casts = {
        name: wanted
        for name, dtype in frame.schema.items()
        if (wanted := spark_dtype(dtype)) != dtype
    }
    if casts:
        frame = frame.cast(casts)  # type: ignore[arg-type]
    table = frame.to_arrow(compat_level=pl.CompatLevel.oldest())
    schema = pa.schema([f.with_type(_small_lists(f.type)) for f in table.schema])
    return table if schema == table.schema else table.cast(schema)


def _small_lists(kind: pa.DataType) -> pa.DataType:
    """``kind`` with every large list a list (Spark reads no large lists)."""
    if pa.types.is_large_list(kind) or pa.types.is_list(kind):
        inner = kind.value_field
        return pa.list_(inner.with_type(_small_lists(inner.type)))
    if pa.types.is_struct(kind):
        return pa.struct([f.with_type(_small_lists(f.type)) for f in kind])
    return kind


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

    arrow = to_arrow(pl.DataFrame(schema=schema)).schema
    return from_arrow_schema(arrow, prefer_timestamp_ntz=True)  # a naive time stays naive


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
