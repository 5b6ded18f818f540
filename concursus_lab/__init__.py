"""concursus-lab: a workbench for Concursus-style event histories.

>>> import concursus_lab as cl
>>> store = cl.open()                      # the sample store (or $CONCURSUS_LAB_SOURCE)
>>> events = store.events(aggregate_type="parcel")
>>> list(events.columns) == list(cl.SCHEMA)
True
"""

from __future__ import annotations

from concursus_lab import plot, results, sample
from concursus_lab._chaos import bisect, chaos
from concursus_lab._copy import copy
from concursus_lab._describe import describe
from concursus_lab._diff import diff
from concursus_lab._export import export
from concursus_lab._lateness import lateness
from concursus_lab._latest import index, latest
from concursus_lab._project import fold, project, projection
from concursus_lab._reconcile import reconcile
from concursus_lab._schema import IDENTITY, SCHEMA, empty, from_pandas, to_pandas, validate
from concursus_lab._threads import threads
from concursus_lab._timetravel import (
    history,
    restatements,
    state_at,
    state_of,
)
from concursus_lab._timeuuid import processing_time, time_uuids
from concursus_lab._types import EventTypes
from concursus_lab._watermark import (
    recommend_watermark,
    watermark,
)
from concursus_lab.exceptions import (
    ConcursusLabError,
    DecodeError,
    IncompleteRead,
    MissingDependency,
    ProjectionError,
    ReducerError,
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
    "EventTypes",
    "IncompleteRead",
    "MissingDependency",
    "ProjectionError",
    "ReducerError",
    "SchemaError",
    "ServiceError",
    "Source",
    "SourceError",
    "SourceUnavailable",
    "bisect",
    "chaos",
    "copy",
    "default_source",
    "describe",
    "diff",
    "empty",
    "explore",
    "export",
    "fold",
    "from_pandas",
    "history",
    "index",
    "lateness",
    "lateness_view",
    "latest",
    "open",
    "plot",
    "processing_time",
    "project",
    "projection",
    "projection_lab",
    "recommend_watermark",
    "reconcile",
    "restatements",
    "results",
    "sample",
    "state_at",
    "state_of",
    "threads",
    "time_uuids",
    "timeline",
    "to_pandas",
    "validate",
    "watermark",
]

#: Widgets load on first use, so that ``import concursus_lab`` never imports ipywidgets,
#: altair or anywidget (see concursus_lab/widgets).
_WIDGETS = frozenset({"explore", "lateness_view", "projection_lab", "timeline"})


def __getattr__(name: str) -> object:
    if name in _WIDGETS:
        from concursus_lab import widgets

        return getattr(widgets, name)
    raise AttributeError(f"module 'concursus_lab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_WIDGETS})
