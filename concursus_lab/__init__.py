"""concursus-lab: a workbench for Concursus-style event histories.

The public surface, by layer (everything else is internal):

* sources: :func:`open` (every kind of source; more in ``cl.sources``), :func:`copy`;
* the canonical frame: ``SCHEMA``, ``IDENTITY`` (more in ``cl.frame``: ``validate``,
  ``to_pandas``, ...); typed events: :class:`EventTypes`;
* your own events in: :class:`Mapping` (which column gives each canonical one), taken by
  :func:`from_polars`, :func:`from_pandas` and ``cl.open(path_or_url, mapping=...)``;
* time travel: :func:`state_at`, :func:`state_of`, :func:`history`, :func:`trace`,
  :func:`restatements`, :func:`latest`, :func:`index`;
* delivery: :func:`describe`, :func:`lateness`, :func:`watermark` (the model, Flink,
  Spark or Kafka Streams), :func:`recommend_watermark` (per period too), :func:`reconcile`,
  :func:`idempotency`;
* projections: :func:`project`, :func:`projection`, :func:`fold`, :func:`diff`,
  :func:`bisect`, :func:`chaos`, :func:`threads`, :func:`export`;
* live: ``cl.live`` keeps states up to date while a source is followed;
* what you see: ``cl.plot`` (altair charts) and the widgets :func:`timeline`,
  :func:`explore`, :func:`lateness_view`, :func:`projection_lab`;
* errors: every one in ``cl.exceptions``; the two caught most often, ``ConcursusLabError``
  (the root) and ``IncompleteRead``, are here too; result types in ``cl.results``; the
  sample data in ``cl.sample``; helpers for your own tests in ``concursus_lab.testing``.

>>> import concursus_lab as cl
>>> store = cl.open()                      # the sample store (or $CONCURSUS_LAB_SOURCE)
>>> events = store.events(aggregate_type="parcel")
>>> list(events.columns) == list(cl.SCHEMA)
True
"""

from __future__ import annotations

from concursus_lab import exceptions, frame, live, plot, results, sample, sources
from concursus_lab.delivery.describe import describe
from concursus_lab.delivery.idempotency import idempotency
from concursus_lab.delivery.lateness import lateness
from concursus_lab.delivery.reconcile import reconcile
from concursus_lab.delivery.watermark import recommend_watermark, watermark
from concursus_lab.events.types import EventTypes
from concursus_lab.exceptions import ConcursusLabError, IncompleteRead
from concursus_lab.frame import IDENTITY, SCHEMA
from concursus_lab.mapping import Mapping, from_pandas, from_polars
from concursus_lab.projections.bisect import bisect
from concursus_lab.projections.chaos import chaos
from concursus_lab.projections.diff import diff
from concursus_lab.projections.export import export
from concursus_lab.projections.projection import fold, project, projection
from concursus_lab.projections.threads import threads
from concursus_lab.sources import open
from concursus_lab.sources.copying import copy
from concursus_lab.timetravel.history import history
from concursus_lab.timetravel.latest import index, latest
from concursus_lab.timetravel.restatements import restatements
from concursus_lab.timetravel.state_at import state_at, state_of
from concursus_lab.timetravel.trace import trace

__version__ = "0.1.0"

__all__ = [
    "IDENTITY",
    "SCHEMA",
    "ConcursusLabError",
    "EventTypes",
    "IncompleteRead",
    "Mapping",
    "bisect",
    "chaos",
    "copy",
    "describe",
    "diff",
    "exceptions",
    "explore",
    "export",
    "fold",
    "frame",
    "from_pandas",
    "from_polars",
    "history",
    "idempotency",
    "index",
    "lateness",
    "lateness_view",
    "latest",
    "live",
    "open",
    "plot",
    "project",
    "projection",
    "projection_lab",
    "recommend_watermark",
    "reconcile",
    "restatements",
    "results",
    "sample",
    "sources",
    "state_at",
    "state_of",
    "threads",
    "timeline",
    "trace",
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
