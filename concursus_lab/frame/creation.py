"""The creation rules: which of an aggregate's events its reducer sees.

As Concursus replays an aggregate (in causal order, see ``order.py``):

* while it has no state, only an initial event creates one; other events are skipped;
* once it has a state, further initial events are skipped;
* an aggregate type that declares no initial event type at all (the sample's parcels)
  lets its reducer see every event, starting from None.

Since initial events sort first, an aggregate's state is created by its first row or not
at all. Every replay (``state_at``, ``history``, keyed folds, the Spark engine) asks
:func:`creation_mask`.

>>> import numpy as np
>>> kinds = np.array([1, 1, 0, 0, 2])  # initial, initial, event | event, terminal
>>> start = np.array([True, False, False, True, False])
>>> creation_mask(kinds, start, declares_initial=True).tolist()
[True, False, True, False, False]
"""

from __future__ import annotations

import numpy as np

from concursus_lab.frame.schema import INITIAL


def creation_mask(
    kinds: np.ndarray,
    start: np.ndarray,
    declares_initial: bool,
    created: np.ndarray | None = None,
) -> np.ndarray:
    """Which rows (causally sorted, ``start`` marking each aggregate's first) the reducer
    sees, by the creation rules; ``kinds`` are the rows' kinds (1 initial).

    ``created`` (a flag per aggregate, in order) marks aggregates that already have a state
    before these rows (a replay that resumes from a kept state, ``concursus_lab/live``):
    their initial events are all skipped, their other events all seen.

    >>> creation_mask(np.array([1, 0, 0]), np.array([True, False, True]), True,
    ...               created=np.array([True, False])).tolist()
    [False, True, False]
    """
    if not declares_initial:
        return np.ones(len(kinds), dtype=bool)
    segment = np.cumsum(start) - 1
    is_initial = kinds == INITIAL
    made = np.zeros(int(start.sum()), dtype=bool)
    made[segment[is_initial & start]] = True
    if created is None:
        return np.where(is_initial, start, made[segment])
    before = np.asarray(created, dtype=bool)[segment]
    return np.where(is_initial, start & ~before, made[segment] | before)
