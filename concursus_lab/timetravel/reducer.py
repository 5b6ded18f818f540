"""Reducers: what a fold is given, and what the user is told when one raises.

A reducer is a plain function ``(state | None, event) -> state``. When one raises during a
fold, the history it was folding is replayed once more, one event at a time, to name the
event that raises; a reducer that does not raise again is not a pure function of
``(state, event)``, and the error says so. Time travel, traces and keyed folds all raise through
:func:`raise_reducer_error`, and name a reducer that returned None with :func:`returned_none`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from concursus_lab.exceptions import ReducerError, SchemaError

Reducer = Callable[[Any, Any], Any]


def check_reducer(reducer: Any, name: str = "reducer") -> Reducer:
    """``reducer`` if it can be called, else a :class:`SchemaError` saying what it must be."""
    if not callable(reducer):
        raise SchemaError(
            f"`{name}` must be a function (state | None, event) -> state, got {reducer!r}."
        )
    return reducer


def raise_reducer_error(
    reducer: Reducer,
    events: Sequence[Any],
    *,
    state: Any,
    subject: str,
    aggregate_id: str,
    error: BaseException,
) -> NoReturn:
    """Replay ``events`` from ``state`` one at a time and raise :class:`ReducerError` at the
    one that raises (``subject`` names what was folded, e.g. ``aggregate 'p1'``)."""
    for i, event in enumerate(events):
        try:
            state = reducer(state, event)
        except Exception as again:
            raise ReducerError(
                f"the reducer raised {type(again).__name__}: {again} on event {i + 1} of "
                f"{len(events)} of {subject}: {event!r}",
                getattr(event, "aggregate_id", aggregate_id),
                event,
            ) from again
    raise ReducerError(  # it did not raise again: not a pure function
        f"the reducer raised {type(error).__name__}: {error} while folding {subject}, but "
        "not when its events were replayed again one by one; is the reducer a pure function "
        "of (state, event)?",
        aggregate_id,
        None,
    ) from error


def returned_none(aggregate_id: str, event: Any) -> ReducerError:
    """The error for a reducer that returned None where the aggregate type declares initial
    events (after ``event``): a branch that forgot its ``return``."""
    return ReducerError(
        f"the reducer returned None for aggregate {aggregate_id!r} (after {event!r}); a "
        "reducer returns the new state: did a branch forget its `return`?",
        aggregate_id,
        event,
    )
