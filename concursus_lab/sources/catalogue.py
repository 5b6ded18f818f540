"""The aggregate catalogue as Java Concursus keeps it, for every store that has one.

Concursus's catalogue (Cassandra's ``Catalogue`` table, Redis's set per aggregate type) holds
the aggregates begun and not yet ended: an initial event adds its aggregate, a terminal event
removes it, other events leave it alone. Of one aggregate's initial and terminal events in a
frame, the last in row order decides, as the last write would.

>>> import polars as pl
>>> frame = pl.DataFrame({"aggregate_type": ["parcel"] * 3, "aggregate_id": ["a", "b", "a"],
...                       "characteristics": [1, 1, 2]})
>>> catalogue_changes(frame).rows()
[('parcel', 'a', 2), ('parcel', 'b', 1)]
"""

from __future__ import annotations

import polars as pl

from concursus_lab.frame.schema import INITIAL, TERMINAL


def catalogue_changes(frame: pl.DataFrame) -> pl.DataFrame:
    """One row per aggregate the catalogue changes for: ``aggregate_type``, ``aggregate_id``
    and ``change`` (``INITIAL``: add it, ``TERMINAL``: remove it), in first-seen order."""
    return (
        frame.filter(pl.col("characteristics").is_in([INITIAL, TERMINAL]))
        .group_by("aggregate_type", "aggregate_id", maintain_order=True)
        .agg(pl.col("characteristics").last().alias("change"))
    )
