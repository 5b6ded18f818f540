"""Which of a table's columns could hold a canonical column: the hint an error gives.

A user whose table misses ``event_timestamp`` wants to hear about the column that holds times
(``occurred_at``, a datetime), not the column whose *name* is nearest (``event_type``). So the
values decide first (a time column for a time, an integer column for a sequence), and names
only break ties.

>>> import polars as pl
>>> schema = pl.Schema({"order_id": pl.Int64, "event_type": pl.String,
...                     "occurred_at": pl.Datetime("us", "UTC"), "amount": pl.Float64})
>>> fitting("event_timestamp", schema)
['occurred_at']
>>> fitting("aggregate_id", schema)
['order_id']
>>> fitting("name", schema)
['event_type']
"""

from __future__ import annotations

import difflib
import re

import polars as pl

#: Words that columns holding each canonical column tend to have in their names.
_WORDS: dict[str, tuple[str, ...]] = {
    "aggregate_type": ("type", "kind", "entity", "aggregate", "category"),
    "aggregate_id": ("id", "key", "entity", "aggregate", "persistence"),
    "name": ("type", "event", "name", "kind", "action", "activity", "manifest"),
    "event_timestamp": ("time", "at", "date", "ts", "timestamp", "occurred", "happened"),
    "processing_timestamp": ("ingested", "processed", "received", "logged", "written", "at"),
    "stream_id": ("stream", "source", "partition"),
    "version": ("version", "v", "schema"),
    "parameters": ("payload", "data", "body", "parameters", "params"),
    "sequence": ("seq", "sequence", "nr", "number", "offset", "position"),
}

_TIMES = ("event_timestamp", "processing_timestamp")


def _fits(column: str, dtype: pl.DataType) -> bool:
    if column in _TIMES:
        return dtype.is_temporal() and not isinstance(dtype, pl.Duration | pl.Time)
    if column == "sequence":
        return dtype.is_integer()
    if column == "parameters":
        return isinstance(dtype, pl.Struct) or dtype == pl.String
    if column == "characteristics":
        return dtype.is_integer()
    return dtype == pl.String or (column == "aggregate_id" and dtype.is_integer())


def _score(column: str, name: str) -> float:
    """How much ``name`` reads like a column holding ``column``: words it shares with what
    such columns are called, plus how alike the names are (1 for the same name)."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower().replace("-", "_")
    hits = sum(1 for w in spaced.split("_") if w in _WORDS.get(column, ()))
    alike = difflib.SequenceMatcher(None, column, spaced).ratio()
    return hits + (1 if alike >= 0.8 else alike / 2)


def fitting(column: str, schema: pl.Schema, *, limit: int = 1) -> list[str]:
    """The columns of ``schema`` most likely to hold canonical ``column``, best first.

    Columns whose values fit (a datetime for a time) come first, ordered by how their names
    read; a column that does not fit is named only when its name says so clearly.
    """
    fit = [n for n, t in schema.items() if n != column and _fits(column, t)]
    if column in _TIMES and not fit:  # times held as text or epoch numbers
        fit = [n for n, t in schema.items() if _score(column, n) >= 1]
    ranked = sorted(fit, key=lambda n: -_score(column, n))
    if column not in _TIMES and column != "sequence":
        ranked = [n for n in ranked if _score(column, n) >= 1] or ranked[:0]
    return ranked[:limit]
