"""Folding: each aggregate's events through the reducer, in one process or two.

Each event's instance is made just before the reducer sees it (``Classified.stream``), and
the fold runs with Python's cyclic garbage collector paused (hundreds of thousands of new
states that all stay alive are its worst case, and it would find nothing to free). With
enough events and two cores, the first half of the aggregates is folded in a forked copy
of this process, which also pulls its states' values out for the result's columns
(``_state_columns.py``) and sends both back pickled.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import sys
import warnings
from collections.abc import Callable
from functools import reduce
from itertools import islice
from typing import Any

import numpy as np

from concursus_lab.common.gc import paused_gc
from concursus_lab.events.types import EventTypes
from concursus_lab.exceptions import ReducerError, SchemaError
from concursus_lab.timetravel.replay import Replay
from concursus_lab.timetravel.state_columns import Extracted, extract, has_none, merge

Reducer = Callable[[Any, Any], Any]


#: Below this many events to fold, a second process costs more than it saves.
PARALLEL_MIN_EVENTS = 200_000


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


def fold(replay: Replay, reducer: Reducer, types: EventTypes, workers: int | None = 1) -> Folded:
    """Build the events and fold each aggregate's.

    With two workers (Linux, enough events), the first part of the aggregates is folded in
    a forked copy of this process while this one folds the rest; the child also pulls the
    state values out for the columns (:func:`extract`), and sends both back pickled. If
    they cannot be pickled, this process folds that part itself.
    """
    sizes = replay.segment_sizes
    n = len(sizes)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    extracted = None
    try:
        if parallel(workers, len(replay.rows)) and n > 1:
            split = int(np.searchsorted(offsets, offsets[-1] * CHILD_SHARE))
            states, extracted = _fold_two(replay, reducer, offsets, min(max(split, 1), n - 1))
        else:
            states = _fold_range(replay, reducer, 0, n, offsets)
    except _FoldFailed as failed:
        _raise_reducer_error(replay, reducer, failed.index, offsets, failed.__cause__)
    if types.declares_initial and has_none(states):
        k = states.index(None)
        event = _events_of(replay, k, offsets)[-1]
        raise ReducerError(
            f"the reducer returned None for aggregate {replay.aggregate_ids[k]!r} "
            f"(after {event!r}); a reducer returns the new state: did a branch "
            "forget its `return`?",
            replay.aggregate_ids[k],
            event,
        )
    times = replay.meta[1]
    last = np.maximum.reduceat(times, offsets[:-1]) if len(times) else times
    return Folded(replay.aggregate_ids, states, sizes, last, extracted)


#: The share of the events folded by the child when two processes fold: the parent also
#: unpickles the child's states and sorts the ids while the child pickles.
CHILD_SHARE = 0.5


def parallel(workers: int | None, events: int) -> bool:
    """Whether to fold in two processes: asked for, or (None) enough events and two cores.

    Measured on two cores at a million events: two processes take about 25% less time when
    the second core is free, and 5-10% more when another process keeps it busy. A load
    test cannot tell the two apart in time (the load average lags by a minute, and counts
    this process's own earlier folds), so None bets on the free core.
    """
    if workers is not None and workers not in (1, 2):
        raise SchemaError(f"`workers` must be None (choose), 1 or 2, got {workers!r}.")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    can = sys.platform.startswith("linux") and hasattr(os, "fork") and (cores or 1) > 1
    if workers is None:
        return can and events >= PARALLEL_MIN_EVENTS
    return can and workers == 2


def _fold_range(replay: Replay, reducer: Reducer, lo: int, hi: int, offsets) -> list[Any]:
    """Fold aggregates ``lo`` to ``hi`` (exclusive); a reducer error becomes _FoldFailed."""
    a, b = int(offsets[lo]), int(offsets[hi])
    states: list[Any] = []
    with paused_gc():
        stream = replay.classified.stream(replay.rows[a:b], [m[a:b] for m in replay.meta])
        try:
            for size in replay.segment_sizes[lo:hi].tolist():
                states.append(reduce(reducer, islice(stream, size), None))
        except Exception as exc:
            raise _FoldFailed(lo + len(states)) from exc
        finally:
            del stream  # freed before the collector runs again, not scanned by it
    return states


def _fold_two(
    replay: Replay, reducer: Reducer, offsets, split: int
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
                with paused_gc():
                    payload: tuple = ("ok", states, extract(states))
            except _FoldFailed as failed:
                payload = ("failed", failed.index, None)
            try:
                with paused_gc():
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
        with paused_gc():
            my_values = extract(mine)
    except _FoldFailed as failed:
        failure = failed
    finally:
        with os.fdopen(read, "rb") as pipe:
            data = pipe.read()
        os.waitpid(pid, 0)
    try:
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


def _events_of(replay: Replay, k: int, offsets) -> list[Any]:
    a, b = int(offsets[k]), int(offsets[k + 1])
    with paused_gc():
        return replay.classified.build(replay.rows[a:b], [m[a:b] for m in replay.meta])


def _raise_reducer_error(replay: Replay, reducer: Reducer, k: int, offsets, exc) -> None:
    history_ = _events_of(replay, k, offsets)
    aggregate_id = replay.aggregate_ids[k]
    state = None
    for i, event in enumerate(history_):
        try:
            state = reducer(state, event)
        except Exception as again:
            raise ReducerError(
                f"the reducer raised {type(again).__name__}: {again} on event {i + 1} of "
                f"{len(history_)} of aggregate {aggregate_id!r}: {event!r}",
                aggregate_id,
                event,
            ) from again
    raise ReducerError(  # it did not raise again: not a pure function
        f"the reducer raised {type(exc).__name__}: {exc} while folding aggregate "
        f"{aggregate_id!r}, but not when its events were replayed again one by one; "
        "is the reducer a pure function of (state, event)?",
        aggregate_id,
        None,
    ) from exc
