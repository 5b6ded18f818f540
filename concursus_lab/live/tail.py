"""A replay resumed from kept states: the deliveries after a keyframe, folded on from it.

Time travel's own plan decides what the fold sees (:func:`~concursus_lab.timetravel.replay.
prepare`, told which aggregates already have a state, so that the creation rules hold as if
the replay had run from the start); this module adds what a resumed fold needs on top:

* :func:`fold` starts each aggregate from its kept state (None: from the beginning) and keeps
  the states after the events it is asked to (the next keyframes);
* :func:`outcomes` says what became of each delivery (applied, skipped, duplicate,
  conflicting, undecodable), so that a keyframe knows the counts of what lies before it.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import reduce
from itertools import islice, repeat
from typing import Any

import numpy as np
import polars as pl

from concursus_lab.common.gc_pause import paused_gc
from concursus_lab.events.decode import type_codes
from concursus_lab.events.types import EventTypes
from concursus_lab.frame.identity import decide
from concursus_lab.timetravel.reducer import Reducer, raise_reducer_error, returned_none
from concursus_lab.timetravel.replay import Replay, prepare

#: What became of a delivery, in the order of a keyframe's ``counts``.
OUTCOMES = ("applied", "skipped", "duplicate", "conflicting", "undecodable")
APPLIED, SKIPPED, DUPLICATE, CONFLICTING, UNDECODABLE = range(len(OUTCOMES))

#: What a keyframe counts: the outcomes, then the deliveries that counted (not a duplicate
#: or a conflicting one) and were upcast from an older version (``state_at``'s ``upcast``).
TALLIES = (*OUTCOMES, "upcast")


def plan(
    frame: pl.DataFrame,
    types: EventTypes,
    duplicates: str,
    starts: Mapping[str, Any],
    *,
    strict: bool = False,
) -> Replay:
    """The replay of ``frame`` (rows of ``types``' aggregate type, nothing left out by a time
    bound), for aggregates resuming from ``starts`` (``aggregate_id -> state``)."""
    created = [k for k, state in starts.items() if state is not None]
    return prepare(
        frame,
        types,
        None,
        None,
        duplicates,
        strict=strict,
        created=pl.Series(created, dtype=pl.String) if created else None,
    )


def upcast_rows(types: EventTypes, frame: pl.DataFrame) -> np.ndarray:
    """Whether each of ``frame``'s rows is of an older version that an upcaster starts from
    (the plan upcasts it: ``events/upcast.py``)."""
    if not types.upcasters:
        return np.zeros(frame.height, dtype=bool)
    stored = type_codes(types, frame)
    return (stored < 0) & (type_codes(types, frame, through_upcasters=True) >= 0)


def outcomes(frame: pl.DataFrame, replay: Replay, duplicates: str) -> np.ndarray:
    """What became of each of ``frame``'s rows in ``replay`` (its plan): an :data:`OUTCOMES`
    index per row."""
    code = replay.classified.code
    out = np.where(code >= 0, SKIPPED, DUPLICATE).astype(np.int8)
    if replay.classified.reasons:
        out[np.fromiter(replay.classified.reasons, dtype=np.int64)] = UNDECODABLE
    out[replay.rows] = APPLIED
    if replay.counts["conflicting"]:
        out[decide(frame, duplicates).conflicting] = CONFLICTING  # type: ignore[arg-type]
    return out


def fold(
    replay: Replay,
    reducer: Reducer,
    types: EventTypes,
    starts: Mapping[str, Any],
    keep: np.ndarray | None = None,
) -> tuple[list[Any], dict[int, Any]]:
    """Fold each aggregate of ``replay`` from its start state.

    Returns the states (aggregates in replay order) and, for each applied row index ``j``
    (into ``replay.rows``) flagged in ``keep``, the state just after it.
    """
    sizes = replay.segment_sizes.tolist()
    ids = replay.aggregate_ids
    marks = np.flatnonzero(keep).tolist() if keep is not None else []
    kept: dict[int, Any] = {}
    states: list[Any] = []
    done = 0  # applied rows consumed
    m = 0
    with paused_gc():
        stream = replay.classified.stream(replay.rows, replay.meta)
        try:
            if not marks:  # time travel: no Python code per aggregate (list.extend keeps
                # what it appended when one raises: ``len(states)`` names that aggregate)
                starting = map(starts.get, ids)
                runs = map(islice, repeat(stream), sizes)
                states.extend(map(reduce, repeat(reducer), runs, starting))
            else:
                for k, size in enumerate(sizes):
                    state = starts.get(ids[k])
                    end = done + size
                    while m < len(marks) and marks[m] < end:
                        state = reduce(reducer, islice(stream, marks[m] + 1 - done), state)
                        kept[marks[m]] = state
                        done = marks[m] + 1
                        m += 1
                    state = reduce(reducer, islice(stream, end - done), state)
                    done = end
                    states.append(state)
        except Exception as exc:
            _raise(replay, reducer, starts, len(states), exc)
        finally:
            del stream
    if types.declares_initial and any(s is None for s in states):
        k = states.index(None)
        offsets = np.cumsum([0, *sizes])
        a, b = int(offsets[k]), int(offsets[k + 1])
        events = replay.classified.build(replay.rows[a:b], [x[a:b] for x in replay.meta])
        raise returned_none(ids[k], events[-1])
    return states, kept


def _raise(replay: Replay, reducer: Reducer, starts, k: int, exc: Exception) -> None:
    offsets = np.cumsum([0, *replay.segment_sizes.tolist()])
    a, b = int(offsets[k]), int(offsets[k + 1])
    aggregate_id = replay.aggregate_ids[k]
    raise_reducer_error(
        reducer,
        replay.classified.build(replay.rows[a:b], [x[a:b] for x in replay.meta]),
        state=starts.get(aggregate_id),
        subject=f"aggregate {aggregate_id!r}",
        aggregate_id=aggregate_id,
        error=exc,
    )
