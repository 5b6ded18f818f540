"""What you see needs the ``lab`` extra: altair, vl-convert, ipywidgets, anywidget, traitlets.

``cl.plot`` and the widgets load them here, when a chart is first drawn, so that
``import concursus_lab`` and the analysis need none of them, and a missing one says
``pip install 'concursus-lab[lab]'``.
"""

from __future__ import annotations

from types import ModuleType

from concursus_lab.common.optional import require


def lab(module: str) -> ModuleType:
    """``module`` (``"altair"``, ``"vl_convert"``, ``"ipywidgets"``, ...), imported now.

    >>> lab("altair").__name__
    'altair'
    """
    return require(module, needed_by="Charts and widgets (cl.plot, cl.timeline, ...)", extra="lab")
