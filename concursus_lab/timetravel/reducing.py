"""Reducing: each aggregate's events through the reducer, in this process or, if asked, two.

Each event's instance is made just before the reducer sees it (``Classified.stream``). By
default every aggregate is folded here, in the calling process. ``workers=2`` folds the
first half of the aggregates (by events) in a forked copy of this process at the same time
(Linux only), which also pulls its states' values out for the result's columns
(``state_columns.py``) and sends both back pickled. What that means for a reducer:

* whatever it does besides returning a state (printing, counting calls, appending to a
  list, writing a file) happens, for half of the aggregates, in the copy, and is lost to
  this process: with ``workers=2`` a reducer must be a pure function of (state, event);
* its states must pickle (else this process folds that half again itself);
* forking a process that runs threads (a Jupyter kernel does) can deadlock in rare cases.

So two processes are a choice the user makes, never a default.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import sys
import warnings
from functools import reduce
from itertools import islice
from typing import Any

import numpy as np

from concursus_lab.common.gc_pause import paused_gc
from concursus_lab.events.types import EventTypes
from concursus_lab.exceptions import SchemaError
from concursus_lab.timetravel.reducer import Reducer, raise_reducer_error, returned_none
from concursus_lab.timetravel.replay import Plan
from concursus_lab.timetravel.state_columns import Extracted, extract, has_none, merge

#: The values of ``workers=``.
WORKERS = (1, 2)


def check_workers(workers: object) -> int:
    """``workers`` if it is 1 or 2 (and 2 can run here), else a :class:`SchemaError`."""
    if workers not in WORKERS or isinstance(workers, bool):
        raise SchemaError(
            f"`workers` must be 1 (fold in this process, the default) or 2 (fold half of the "
            f"aggregates in a forked copy of this process), got {workers!r}."
        )
    if workers == 2 and not (sys.platform.startswith("linux") and hasattr(os, "fork")):
        raise SchemaError(
            f"`workers=2` forks this process, which needs Linux; this is {sys.platform!r}. "
            "Use workers=1."
        )
    return workers  # type: ignore[return-value]


class _FoldFailed(Exception):
    def __init__(self, index: int) -> None:
        self.index = index


@dataclasses.dataclass
class Folded:
    """The fold's output, aggregates in replay order (``extracted``: the states' column
    values, when the fold already pulled them out)."""

    ids: list[str]
    states: list[Any]
    sizes: np.ndarray  # events applied per aggregate
    last: np.ndarray  # latest event time applied, epoch microseconds
    extracted: Extracted | None = None


def reduce_aggregates(
    replay: Plan, reducer: Reducer, types: EventTypes, workers: int = 1
) -> Folded:
    """Build the events and fold each aggregate's, in this process or (``workers=2``) two.

    With two, the first part of the aggregates is folded in a forked copy of this process
    while this one folds the rest; the child also pulls the state values out for the
    columns (:func:`extract`), and sends both back pickled. If they cannot be pickled,
    this process folds that part itself.
    """
    sizes = replay.segment_sizes
    n = len(sizes)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    extracted = None
    try:
        if check_workers(workers) == 2 and n > 1:
            split = int(np.searchsorted(offsets, offsets[-1] * CHILD_SHARE))
            states, extracted = _fold_two(replay, reducer, offsets, min(max(split, 1), n - 1))
        else:
            states = _fold_range(replay, reducer, 0, n, offsets)
    except _FoldFailed as failed:
        _raise_reducer_error(replay, reducer, failed.index, offsets, failed.__cause__)
    if types.declares_initial and has_none(states):
        k = states.index(None)
        event = _events_of(replay, k, offsets)[-1]
        raise returned_none(replay.aggregate_ids[k], event)
    times = replay.made.event_times()
    last = np.maximum.reduceat(times, offsets[:-1]) if len(times) else times
    return Folded(replay.aggregate_ids, states, sizes, last, extracted)


#: The share of the events folded by the child when two processes fold: the parent also
#: unpickles the child's states and sorts the ids while the child pickles.
CHILD_SHARE = 0.5


def _fold_range(replay: Plan, reducer: Reducer, lo: int, hi: int, offsets) -> list[Any]:
    """Fold aggregates ``lo`` to ``hi`` (exclusive); a reducer error becomes _FoldFailed."""
    a, b = int(offsets[lo]), int(offsets[hi])
    states: list[Any] = []
    # pausing the collector: 300k parcels' dataclass states fold 6.6 s -> 5.5 s (2026-12-02)
    with paused_gc():
        # the meta of each chunk of events is made as the stream reaches it
        stream = replay.classified.stream(
            replay.rows[a:b], lambda i, j: replay.made.meta_of(a + i, a + j)
        )
        try:
            for size in replay.segment_sizes[lo:hi].tolist():
                states.append(reduce(reducer, islice(stream, size), None))
        except Exception as exc:
            raise _FoldFailed(lo + len(states)) from exc
        finally:
            del stream  # freed before the collector runs again, not scanned by it
    return states


def _fold_two(
    replay: Plan, reducer: Reducer, offsets, split: int
) -> tuple[list[Any], Extracted | None]:
    """Fold aggregates [0, split) in a forked child and [split, n) here, at the same time.

    Returns all the states, and their column values when both parts had the same shape.
    """
    read, write = os.pipe()
    with warnings.catch_warnings():  # Python 3.12+ warns about forking a threaded process;
        warnings.simplefilter("ignore", DeprecationWarning)  # the child runs no polars code
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child process
        code = 0
        try:
            os.close(read)
            try:
                states = _fold_range(replay, reducer, 0, split, offsets)
                payload: tuple = ("ok", states, extract(states))
            except _FoldFailed as failed:
                payload = ("failed", failed.index, None)
            try:
                data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
            except Exception:
                data = pickle.dumps(("unpicklable", None, None))
            with os.fdopen(write, "wb") as out:
                out.write(data)
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(write)
    mine: list[Any] | None = None
    failure: _FoldFailed | None = None
    try:
        mine = _fold_range(replay, reducer, split, len(offsets) - 1, offsets)
        my_values = extract(mine)
    except _FoldFailed as failed:
        failure = failed
    finally:
        with os.fdopen(read, "rb") as pipe:
            data = pipe.read()
        os.waitpid(pid, 0)
    try:  # pausing the collector: unpickling 150k dataclass states 1.0 s -> 0.37 s
        with paused_gc():
            kind, value, their_values = pickle.loads(data) if data else ("crashed", None, None)
    except Exception:
        kind, value, their_values = "crashed", None, None
    if kind == "failed":
        raise _FoldFailed(value)
    if failure is not None:
        raise failure
    if kind != "ok":
        return _fold_range(replay, reducer, 0, split, offsets) + mine, None
    return value + mine, merge(their_values, my_values)


def _events_of(replay: Plan, k: int, offsets) -> list[Any]:
    a, b = int(offsets[k]), int(offsets[k + 1])
    return replay.classified.build(replay.rows[a:b], [m[a:b] for m in replay.meta])


def _raise_reducer_error(replay: Plan, reducer: Reducer, k: int, offsets, exc) -> None:
    aggregate_id = replay.aggregate_ids[k]
    raise_reducer_error(
        reducer,
        _events_of(replay, k, offsets),
        state=None,
        subject=f"aggregate {aggregate_id!r}",
        aggregate_id=aggregate_id,
        error=exc,
    )
