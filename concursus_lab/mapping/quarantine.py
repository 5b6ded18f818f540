"""What a mapped read could not map: each row's reason, its position, and the row as JSON."""

from __future__ import annotations

import polars as pl

#: The quarantine of a mapped read: why, which row of the data, and the row itself as JSON.
QUARANTINE = pl.Schema({"reason": pl.String, "row": pl.Int64, "raw": pl.Binary})


def quarantine(bad: pl.DataFrame, data: pl.LazyFrame, *, reason: str, row: str) -> pl.DataFrame:
    """The quarantine of ``bad`` (its ``reason`` and ``row`` columns): each row of ``data``
    it names, read again (only those) and written as JSON, so nothing is lost to the eye."""
    if bad.height == 0:
        return pl.DataFrame(schema=QUARANTINE)
    schema = data.collect_schema()
    columns = [c for c in schema if c != row]
    raw = (
        data.filter(pl.col(row).is_in(bad[row].implode()))
        .select(
            pl.col(row).cast(pl.Int64).alias("row"),
            pl.struct([_jsonable(c, schema[c]) for c in columns])
            .struct.json_encode()
            .cast(pl.Binary)
            .alias("raw"),
        )
        .collect()
    )
    return (
        bad.select(pl.col(reason).alias("reason"), pl.col(row).alias("row"))
        .join(raw, on="row", how="left")
        .sort("row")
        .select(QUARANTINE.names())
    )


def _jsonable(column: str, dtype: pl.DataType) -> pl.Expr:
    """A column JSON can hold: bytes as hex, objects and durations as text."""
    if dtype == pl.Binary:
        return pl.col(column).bin.encode("hex")
    if dtype == pl.Object or isinstance(dtype, pl.Duration):
        return pl.col(column).cast(pl.String, strict=False)
    return pl.col(column)
