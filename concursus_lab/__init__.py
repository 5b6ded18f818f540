"""concursus-lab: a workbench for Concursus-style event histories.

>>> import concursus_lab as cl
>>> store = cl.open()                      # the sample store (or $CONCURSUS_LAB_SOURCE)
>>> events = store.events(aggregate_type="parcel")
>>> list(events.columns) == list(cl.SCHEMA)
True
"""

from __future__ import annotations

from concursus_lab import plot, results, sample
from concursus_lab.delivery.describe import describe
from concursus_lab.delivery.lateness import lateness
from concursus_lab.delivery.reconcile import reconcile
from concursus_lab.delivery.watermark import (
    recommend_watermark,
    watermark,
)
from concursus_lab.events.types import EventTypes
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
from concursus_lab.frame.identity import IDENTITY
from concursus_lab.frame.schema import SCHEMA, empty, from_pandas, to_pandas, validate
from concursus_lab.frame.timeuuid import processing_time, time_uuids
from concursus_lab.projections.chaos import bisect, chaos
from concursus_lab.projections.diff import diff
from concursus_lab.projections.export import export
from concursus_lab.projections.projection import fold, project, projection
from concursus_lab.projections.threads import threads
from concursus_lab.sources import Source, default_source, open
from concursus_lab.sources.copy import copy
from concursus_lab.timetravel.history import history
from concursus_lab.timetravel.latest import index, latest
from concursus_lab.timetravel.restatements import restatements
from concursus_lab.timetravel.state_at import state_at, state_of

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
