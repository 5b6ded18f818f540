"""The types of what concursus-lab's functions return, for type hints and isinstance checks.

Each prints a short deterministic summary and shows richly in a notebook; you get them from
the functions (``cl.state_at`` returns a :class:`StateAt`, ``cl.diff`` a :class:`Diff`, ...)
and rarely need to name them.
"""

from __future__ import annotations

from concursus_lab._chaos import Bisection, Chaos
from concursus_lab._describe import Description
from concursus_lab._diff import Diff
from concursus_lab._project import Fold, Projection
from concursus_lab._reconcile import Reconciliation
from concursus_lab._timetravel import StateAt
from concursus_lab._types import Decoded
from concursus_lab._watermark import WatermarkRecommendation, WatermarkReplay

__all__ = [
    "Bisection",
    "Chaos",
    "Decoded",
    "Description",
    "Diff",
    "Fold",
    "Projection",
    "Reconciliation",
    "StateAt",
    "WatermarkRecommendation",
    "WatermarkReplay",
]
