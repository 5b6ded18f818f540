"""concursus-lab's own model (``engine="model"``, the default): no engine's exact rules.

A bounded-out-of-orderness watermark in the spirit of Flink's
``WatermarkStrategy.forBoundedOutOfOrderness``, but evaluated after every delivery and to
the microsecond:

* each partition's watermark is the largest event time it has delivered minus
  ``max_out_of_orderness``; the overall watermark is the smallest of them, so a slow
  partition holds every other one back, and one that has delivered nothing yet holds it
  back entirely;
* with ``idle_timeout``, a partition silent for longer than that (processing time) is left
  out of the minimum until it delivers again; the watermark never moves backwards;
* an event is *on time* at or after the watermark it met, *late* when behind it by at most
  ``allowed_lateness``, *dropped* when further behind.

See :mod:`concursus_lab.delivery.engines` for the rules in terms of the front (here the
combined newest event time) and the other engines for their documented semantics.
"""

from __future__ import annotations

import numpy as np

from concursus_lab.common.time import exact
from concursus_lab.delivery.arrivals import MAX, MIN, Stream, shift
from concursus_lab.delivery.engines import Engine, Fronts, Settings, running_max


def replay(stream: Stream, idle: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The combined newest event time after each event, and each event's own distance.

    Returns ``after`` (length n): at position j, once event j has been processed (and
    idleness judged at its processing time), the smallest over active partitions of the
    newest event time each has delivered, made monotone; ``MIN`` while some active
    partition has delivered nothing. And ``own`` (length n): how far each event's own
    partition had already gone past its event time (0 when it had not), the bound that
    partition alone would need for it.
    """
    n = len(stream.event)
    event, processed, code = stream.event, stream.processed, stream.code
    own = np.zeros(n, np.int64)
    if n == 0:
        return np.full(n, MAX, np.int64), own
    if stream.partitions == 1 and idle is None:  # the common case, in fewer passes
        newest = running_max(event)
        previous = newest[:-1]  # before each event but the first (which has no distance)
        np.subtract(previous, event[1:], out=own[1:])  # in place: no temporary copies
        np.maximum(own, 0, out=own)
        own[1:][previous == MIN] = 0
        return newest, own
    combined = np.full(n, MAX, np.int64)
    for p in range(stream.partitions):
        mine = code == p
        newest = running_max(event, mine)
        at = np.flatnonzero(mine)
        previous = shift(newest)[at]
        own[at] = np.where(previous == MIN, 0, np.maximum(previous - event[at], 0))
        if idle is not None:  # a partition's clock starts with the stream
            last = np.maximum.accumulate(np.where(mine, processed, processed[0]))
            newest[processed - last > idle] = MAX  # idle: out of the minimum
        np.minimum(combined, newest, out=combined)
    after = np.where(combined == MAX, MIN, combined)  # every partition idle: no news
    return np.maximum.accumulate(after), own  # the watermark never moves backwards


def fronts_and_own(stream: Stream, idle: int | None) -> tuple[Fronts, np.ndarray]:
    """The fronts, and each event's own partition's distance, from one :func:`replay`."""
    after, own = replay(stream, idle)
    both = np.empty(len(after) + 1, np.int64)  # `met` is `after` shifted: one buffer for both
    both[0] = MIN
    both[1:] = after
    del after
    return Fronts(met=both[:-1], after=both[1:], at=stream.processed), own


def _fronts(stream: Stream, settings: Settings) -> Fronts:
    return fronts_and_own(stream, settings.idle)[0]


def _describe(settings: Settings, unit: int) -> str:
    return (
        f"watermark: {exact(_td(settings.bound, unit))} out-of-orderness, "
        f"{exact(_td(settings.allowed, unit))} allowed lateness"
    )


def _td(value: int, unit: int):
    import datetime as dt

    return dt.timedelta(microseconds=value * unit)


ENGINE = Engine(
    name="model",
    unit=1,
    own_end=1,
    fire_on_close=False,
    options=("allowed_lateness", "idle_timeout"),
    fronts=_fronts,
    describe=_describe,
    config=None,
    docs="concursus-lab's own model (see concursus_lab.delivery.engines.model)",
)
