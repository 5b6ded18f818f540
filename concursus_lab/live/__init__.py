"""Live: states kept up to date as a source is followed (``cl.live``).

:func:`states` makes a live fold; :meth:`~concursus_lab.live.states.LiveStates.update`
folds a batch into it (only what is new: a late delivery re-folds its own aggregate from
the keyframe before it) and returns the :class:`~concursus_lab.live.changes.Changes`;
:func:`follow` reads a source's history, then follows it, folding each batch.
:func:`view` keeps a projection's view (``cl.project``) up to date the same way
(``views.py``).
"""

from __future__ import annotations

from concursus_lab.live.changes import Changes
from concursus_lab.live.states import LiveStates, states
from concursus_lab.live.views import LiveProjection, ViewChanges, view

__all__ = ["Changes", "LiveProjection", "LiveStates", "ViewChanges", "states", "view"]
