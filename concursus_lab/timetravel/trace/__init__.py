"""``cl.trace``: one aggregate's replay plan, walked a delivery at a time.

* ``walk.py``: :func:`trace` and its result, :class:`Trace` (the plan of ``cl.state_of``,
  ``timetravel/replay.py``, as ``cl.history`` shows it, folded one step per delivery);
* ``step.py``: a :class:`Step` (one delivery: its fate, the state before and after) and
  the breakpoint rule;
* ``compare.py``: two traces of one aggregate lined up (``Trace.compare``);
* ``view.py``: a trace as an HTML table in a notebook.
"""

from concursus_lab.timetravel.trace.compare import Comparison
from concursus_lab.timetravel.trace.step import RAISED, Step
from concursus_lab.timetravel.trace.walk import SHOWN, Trace, trace

__all__ = ["RAISED", "SHOWN", "Comparison", "Step", "Trace", "trace"]
