"""The types of what concursus-lab's functions return, for type hints and isinstance checks.

Each prints a short deterministic summary and shows richly in a notebook; you get them from
the functions (``cl.state_at`` returns a :class:`StateAt`, ``cl.diff`` a :class:`Diff`, ...)
and rarely need to name them.
"""

from __future__ import annotations

from concursus_lab.delivery.describe import Description
from concursus_lab.delivery.idempotency import IdempotencyReplay
from concursus_lab.delivery.reconcile import Reconciliation
from concursus_lab.delivery.watermark import WatermarkRecommendation, WatermarkReplay
from concursus_lab.events.decoded import Decoded
from concursus_lab.projections.bisect import Bisection
from concursus_lab.projections.chaos import Chaos
from concursus_lab.projections.diff import Diff
from concursus_lab.projections.projection import Fold, Projection
from concursus_lab.timetravel.state_at import StateAt
from concursus_lab.timetravel.state_files import StateFiles
from concursus_lab.timetravel.trace import Trace
from concursus_lab.timetravel.trace.compare import Comparison
from concursus_lab.timetravel.trace.step import Step

__all__ = [
    "Bisection",
    "Chaos",
    "Comparison",
    "Decoded",
    "Description",
    "Diff",
    "Fold",
    "IdempotencyReplay",
    "Projection",
    "Reconciliation",
    "StateAt",
    "StateFiles",
    "Step",
    "Trace",
    "WatermarkRecommendation",
    "WatermarkReplay",
]
