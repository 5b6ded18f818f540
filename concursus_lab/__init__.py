"""concursus-lab: a workbench for Concursus-style event histories.

>>> import concursus_lab as cl
>>> store = cl.open()                      # the sample store (or $CONCURSUS_LAB_SOURCE)
>>> events = store.events(aggregate_type="parcel")
>>> list(events.columns) == list(cl.SCHEMA)
True
"""

from __future__ import annotations

from concursus_lab import plot, sample
from concursus_lab._describe import Description, describe
from concursus_lab._lateness import lateness
from concursus_lab._schema import IDENTITY, SCHEMA, empty, from_pandas, to_pandas, validate
from concursus_lab._timeuuid import processing_time, time_uuids
from concursus_lab.exceptions import (
    ConcursusLabError,
    DecodeError,
    IncompleteRead,
    MissingDependency,
    SchemaError,
    ServiceError,
    SourceError,
    SourceUnavailable,
)
from concursus_lab.sources import Source, default_source, open

__version__ = "0.1.0"

__all__ = [
    "IDENTITY",
    "SCHEMA",
    "ConcursusLabError",
    "DecodeError",
    "Description",
    "IncompleteRead",
    "MissingDependency",
    "SchemaError",
    "ServiceError",
    "Source",
    "SourceError",
    "SourceUnavailable",
    "default_source",
    "describe",
    "empty",
    "from_pandas",
    "lateness",
    "open",
    "plot",
    "processing_time",
    "sample",
    "time_uuids",
    "to_pandas",
    "validate",
]
