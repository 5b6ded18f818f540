"""``cl.explore``: one aggregate's state on both time axes, with a slider for each.

Pick an aggregate; the ``at`` slider bounds event time (exclusive: what had happened
before), the ``known_at`` slider bounds processing time (inclusive: what had been logged
by then). The state is :func:`cl.state_of <concursus_lab.state_of>` at both; the table is
:func:`cl.history <concursus_lab.history>`, each delivery marked applied, not happened yet,
not known yet, duplicate, skipped or undecodable; a small chart puts every delivery at
(event time, processing time), so what counts is the lower-left corner the sliders cut.

The sliders stop where something changes: at each of the aggregate's event times (just
after it, so that event is included) and at each processing time.

Step mode (the "step through" toggle, or ``explorer.step_mode = True``) replays the
aggregate at the sliders' cut one delivery at a time with :func:`cl.trace
<concursus_lab.trace>`: forward and back (buttons, arrow keys), the state with the fields
each step changed highlighted, a breakpoint box, and the step ringed on the chart
(``_stepper.py``).

* ``widget.py``: :class:`Explorer` and :func:`explore`;
* ``chart.py``: the (event time, processing time) chart of one aggregate's deliveries;
* ``picker.py``: the aggregate picker;
* ``describe.py``: the status names, the table's columns, a state as text.
"""

from concursus_lab.widgets.explorer.describe import STATUS_LABELS, describe_state
from concursus_lab.widgets.explorer.widget import Explorer, explore

__all__ = ["STATUS_LABELS", "Explorer", "describe_state", "explore"]
