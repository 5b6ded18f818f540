"""The rows of a local store's buckets: the stored columns, and reading them.

A bucket (one aggregate type, one ``abs(hashCode(aggregate_id)) % buckets``) holds ``events``
files, one row per identity (the winner), and ``superseded`` files (every other delivery).
Every row carries the store's delivery sequence beside the canonical columns.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from concursus_lab.frame.schema import SCHEMA
from concursus_lab.sources.local.manifest import StoredFile

#: The store's delivery sequence: breaks ties between deliveries processed at the same time,
#: unique per delivery within a store.
DELIVERY = "_delivery"
#: The columns of a stored row.
STORED = pl.Schema({**SCHEMA, DELIVERY: pl.Int64})
#: A bucket with this many files is merged into one file of each kind on its next append.
MAX_FILES_PER_BUCKET = 16


def read(root: Path, files: list[StoredFile]) -> pl.DataFrame:
    """The rows of ``files``, read whole."""
    if not files:
        return empty_stored()
    return pl.read_parquet([str(root / f.path) for f in files], schema=STORED)


def empty_stored() -> pl.DataFrame:
    """No stored rows."""
    return pl.DataFrame(schema=STORED)
