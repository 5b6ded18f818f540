"""The fast path of decoding: canonical parameter texts cut into typed columns by polars.

A parameters text in canonical form (compact, keys sorted) of flat strings, integers,
numbers, booleans and dates is matched, for a known set of keys and kinds, by one regular
expression with a capture group per key; polars runs it over a whole column and casts the
groups to typed columns, with no Python per row. Decoding (``decode.py``) uses it per
declared event type; upcasting (``shapes.py``) per shape of an older version's parameters.
"""

from __future__ import annotations

import re

import numpy as np
import polars as pl

from concursus_lab.events.parameters import FAST, Parameter


def fast_pattern(params: tuple[Parameter, ...]) -> str | None:
    """A regular expression matching canonical parameter texts of this type, if there is
    one: keys sorted, no spaces, one capture group per parameter (in key order)."""
    parts = []
    for p in sorted(params, key=lambda p: p.name):
        if p.kind not in FAST or not re.fullmatch(r"[A-Za-z0-9_]+", p.name):
            return None
        value = FAST[p.kind]
        if p.optional:
            value = f"(?:{value}|null)"
        parts.append(f'"{p.name}":{value}')
    return r"^\{" + ",".join(parts) + r"\}$"


def fast_columns(
    params: tuple[Parameter, ...], pattern: str, texts: pl.Series, required: str | None = None
) -> tuple[list[pl.Series], np.ndarray, np.ndarray | None]:
    """Typed columns (in declared order) of texts matching ``pattern``, which rows hold a
    date that does not exist, and (given a ``required`` parameter, whose group is null only
    where the pattern does not match) which rows match."""
    groups = texts.str.extract_groups(pattern).struct.unnest()
    raw = dict(zip(sorted(p.name for p in params), groups.iter_columns(), strict=True))
    matched = raw[required].is_not_null().to_numpy() if required is not None else None
    invalid = np.zeros(texts.len(), dtype=bool)
    columns = []
    for p in params:
        text = raw[p.name]
        if p.kind == "int":
            column = text.cast(pl.Int64)
        elif p.kind == "float":
            column = text.cast(pl.Float64)
        elif p.kind == "bool":
            column = text == "true"
        elif p.kind == "date":
            column = text.str.to_date("%Y-%m-%d", strict=False)
            invalid |= (column.is_null() & text.is_not_null()).to_numpy()
        else:
            column = text
        columns.append(column.alias(p.name))
    return columns, invalid, matched
