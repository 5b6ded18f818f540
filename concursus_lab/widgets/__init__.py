"""Notebook widgets: what you see. They import the core; the core never imports them.

``cl.timeline``, ``cl.explore``, ``cl.lateness_view``, ``cl.projection_lab`` and
:func:`live_view` (here only) build them;
each is an ipywidgets box of standard controls and altair ``JupyterChart``s drawn offline, and
each prints a short deterministic text summary when it is not rendered.
"""

from __future__ import annotations

from concursus_lab.widgets._lateness_view import LatenessView, lateness_view
from concursus_lab.widgets._live_view import LiveView, live_view
from concursus_lab.widgets._projection_lab import ProjectionLab, projection_lab
from concursus_lab.widgets._timeline import Timeline, timeline
from concursus_lab.widgets.explorer import Explorer, explore

__all__ = [
    "Explorer",
    "LatenessView",
    "LiveView",
    "ProjectionLab",
    "Timeline",
    "explore",
    "lateness_view",
    "live_view",
    "projection_lab",
    "timeline",
]
