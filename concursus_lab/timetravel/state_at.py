"""Time travel: fold typed events into states at any event time, as known at any processing time.

The rules are Concursus's (README.md, "Past states, on both time axes"):

* ``at`` bounds event time, exclusive: only events that happened strictly before it count
  (Concursus's ``getState(id, upTo)``); ``known_at`` bounds processing time, inclusive: only
  deliveries logged at or before it count. Either may be None (no bound).
* Deliveries of one identity (aggregate type, aggregate id, event timestamp, stream id;
  or the frame's ``event_id`` or ``sequence`` when it has one) are one event: the last
  processed wins, as a Cassandra upsert does (``duplicates="first"`` keeps the first, as
  an idempotency filter does; ``"keep"`` applies every delivery). Deliveries that lose to
  one that differs from them in name, version or parameters are *conflicting*: counted
  apart and warned about (:class:`~concursus_lab.exceptions.ConflictingDeliveries`).
* Replay order is causal: initial events first, terminal events last, the others between;
  within each, by event timestamp, then sequence (when the frame has one), then stream id.
  An event's kind is its declared type's.
* While an aggregate has no state only an initial event creates one; once it has one,
  further initial events are skipped. Where no initial event type is declared, the reducer
  sees every event, starting from None.
* Events that cannot be decoded are never dropped silently: they are counted and returned
  beside the result (``strict=True`` raises :class:`~concursus_lab.DecodeError` instead).

Each rule has one home in ``frame/`` (identity.py, cut.py, order.py, creation.py), shared
with every other replay. A reducer is a plain function ``(state | None, event) -> state``.
Everything but the reducer call and building each event's instance is vectorised:
``replay.py`` works out which rows a fold sees and in what order (polars and NumPy),
``reducing.py`` folds them (in this process; in two only when asked with ``workers=2``), and
``state_columns.py`` turns the states into the result's columns. ``history.py`` shows one
aggregate's replay, ``restatements.py`` what late deliveries changed.

>>> import concursus_lab as cl
>>> from concursus_lab.sample import parcel_state, parcel_types
>>> events = cl.sample.parcels(200, seed=7)
>>> states = cl.state_at(events, parcel_state, types=parcel_types,
...                      at="2026-03-09", known_at="2026-03-09")
>>> states.frame.columns[:4]
['aggregate_id', 'status', 'depot', 'truck']
>>> states.frame.columns[-2:]
['events_applied', 'last_event_timestamp']
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import html
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from itertools import repeat
from operator import is_not, itemgetter
from typing import Any

import numpy as np
import polars as pl

from concursus_lab.common.gc_pause import paused_gc
from concursus_lab.common.text import plural
from concursus_lab.common.time import TimeLike
from concursus_lab.events.decoded import reason_counts
from concursus_lab.events.types import EventTypes, as_event_types
from concursus_lab.exceptions import SchemaError, UndecodableEvents
from concursus_lab.frame import conflicts
from concursus_lab.frame.conflicts import user_level
from concursus_lab.frame.cut import bounds
from concursus_lab.frame.identity import check_duplicates
from concursus_lab.frame.keys import string_order
from concursus_lab.frame.schema import validate
from concursus_lab.timetravel.aggregate_ids import deliveries_of
from concursus_lab.timetravel.buckets import chosen_buckets, each_bucket, is_bucketed, put_together
from concursus_lab.timetravel.reducer import Reducer, check_reducer
from concursus_lab.timetravel.reducing import Folded, check_workers, reduce_aggregates
from concursus_lab.timetravel.replay import prepare
from concursus_lab.timetravel.state_columns import (
    extract,
    has_none,
    state_class,
    to_columns,
    warn_shapeless,
)
from concursus_lab.timetravel.state_files import TAIL, StateFiles, write_states
from concursus_lab.timetravel.summary import summary_lines

_TIME = pl.Datetime("us", "UTC")


# ---------------------------------------------------------------------------- the result


@dataclasses.dataclass(frozen=True, repr=False, eq=False)
class StateAt:
    """States of every aggregate at one time, with what was left out and why.

    Attributes
    ----------
    frame
        One row per aggregate that has a state, sorted by ``aggregate_id``: the state's
        fields as columns (or one ``state`` column), ``events_applied`` and
        ``last_event_timestamp`` (the latest event time among the events applied). With
        no states, the fields of the class the reducer's return annotation names.
    states
        ``aggregate_id -> state object``, the reducer's own values (made on first use).
    aggregate_type, at, known_at
        The question asked.
    counts
        How many deliveries of this aggregate type were read, and what became of them:
        ``read = not_known_yet + after_at + duplicate + conflicting + undecodable + skipped
        + applied - split``. ``upcast`` counts the deliveries that counted and were upcast
        from an older version (``EventTypes.upcast``), ``split`` the events their splits
        added: undecodable, skipped and applied count events, a split one as its parts.
        ``conflicting`` counts the deliveries that lost to a delivery of the
        same identity that differs from them (name, version or parameters): most likely
        other events the identity cannot tell apart (see
        :class:`~concursus_lab.exceptions.ConflictingDeliveries`).
        ``other_aggregate_types`` counts the rows of other aggregate types (not read).
    undecodable
        The rows that could not be decoded, with a ``reason`` column.
    """

    frame: pl.DataFrame
    aggregate_type: str
    at: dt.datetime | None
    known_at: dt.datetime | None
    counts: dict[str, int]
    undecodable: pl.DataFrame
    #: (ids, states, order): ``states`` (and ``ids``) in the order folded, ``order`` the
    #: positions of the frame's rows in them. ``ids`` None: they are the frame's
    #: ``aggregate_id`` (a million ids kept twice, as Python texts too, were ~0.2x the frame).
    _folded: tuple[list[str] | None, list[Any], np.ndarray] = dataclasses.field(repr=False)

    @functools.cached_property
    def states(self) -> dict[str, Any]:
        """``aggregate_id -> state object`` (the reducer's own values), sorted by id.

        Made on first use: the frame is the answer most often looked at, and a dict of
        hundreds of thousands of states takes a noticeable part of a second to build.
        """
        ids, states, order = self._folded
        # pausing the collector: 300k parcels' dataclass states, this dict 0.41 s -> 0.32 s
        with paused_gc():
            keys = self.frame["aggregate_id"].to_list() if ids is None else _take(ids, order)
            return dict(zip(keys, _take(states, order), strict=True))

    @property
    def skipped(self) -> int:
        """Events skipped by the creation rules (no state yet, or a repeated initial)."""
        return self.counts["skipped"]

    @property
    def duplicates(self) -> int:
        """Deliveries dropped as repeats of an identity already counted."""
        return self.counts["duplicate"]

    @property
    def conflicting(self) -> int:
        """Deliveries dropped as repeats of an identity though they differ from the one
        that counts (name, version or parameters)."""
        return self.counts["conflicting"]

    @property
    def applied(self) -> int:
        """Events the reducer saw."""
        return self.counts["applied"]

    def summary(self) -> str:
        """Two deterministic lines: the question, and what became of the events."""
        return "\n".join(
            summary_lines(
                self.frame.height,
                self.aggregate_type,
                self.at,
                self.known_at,
                self.counts,
                self.undecodable,
            )
        )

    def __repr__(self) -> str:
        return f"{self.summary()}\n{self.frame!r}"

    def _repr_html_(self) -> str:
        try:
            summary = "<br>".join(html.escape(line) for line in self.summary().splitlines())
            return f"<p>{summary}</p>{self.frame._repr_html_()}"
        except Exception as exc:
            return f"<pre>{html.escape(repr(exc))}</pre>"

    def __len__(self) -> int:
        return self.frame.height


# ------------------------------------------------------------------------------ public


def state_at(
    events: pl.DataFrame | pl.LazyFrame | Any,
    reducer: Reducer,
    *,
    types: EventTypes,
    at: TimeLike | None = None,
    known_at: TimeLike | None = None,
    duplicates: str = "last",
    strict: bool = False,
    workers: int = 1,
    buckets: int | None = None,
    progress: bool | None = None,
    into: str | os.PathLike | None = None,
) -> StateAt | StateFiles:
    """The state of every aggregate at event time ``at``, as known at processing time ``known_at``.

    Parameters
    ----------
    events
        A canonical event frame; rows of other aggregate types than ``types``' are ignored
        (and counted). A history larger than memory: a ``LazyFrame`` (``pl.scan_parquet``)
        or a local store (``cl.open("data/big")``, every delivery read), folded a hash
        bucket of whole aggregates at a time (:mod:`~concursus_lab.timetravel.buckets`).
    reducer
        A plain function ``(state | None, event) -> state``; events are instances of the
        classes declared in ``types``. It must not return None for an aggregate type that
        declares initial events.
    types
        The :class:`~concursus_lab.EventTypes` of the aggregate type.
    at
        Only events that happened strictly before this time count (None: all).
    known_at
        Only deliveries processed at or before this time count (None: all).
    duplicates
        ``"last"`` (the last processed delivery of an identity wins, as Cassandra does),
        ``"first"`` (the first wins) or ``"keep"`` (every delivery is applied).
    strict
        Raise :class:`~concursus_lab.DecodeError` if any row cannot be decoded, instead of
        counting it and returning it in ``.undecodable``.
    workers
        1 (default) folds in this process. 2 folds half of the aggregates in a forked copy
        of this process at the same time (Linux only; about 25% faster at a million events
        when the second core is free, 5-10% slower when it is busy). With 2, whatever the
        reducer does besides returning a state (printing, counting, appending to a list)
        happens for half of the aggregates in the copy and is lost here: the reducer must
        be a pure function, and its states picklable (else they are folded again here).
        The states are the same either way.
    buckets
        Fold the history this many hash buckets of whole aggregates at a time (default:
        16 for a LazyFrame or a store; a frame in memory of 2,000,000 rows or more in one
        bucket per 500,000 rows, a smaller one at once): the working memory is one
        bucket's, the answer the same, row for row and column for column.
    progress
        A bar of buckets when folding in buckets (None: only if it takes a while).
    into
        A new or empty folder: fold in buckets (as ``buckets`` says) and write each
        bucket's states there as soon as it is folded, one Parquet file a bucket, keeping
        no state in memory (an answer larger than memory;
        :mod:`~concursus_lab.timetravel.state_files`).

    Returns
    -------
    StateAt
        ``.frame`` (one row per aggregate with a state), ``.states`` (the objects), the
        counts of what was left out, and ``.undecodable``. It prints a short summary.
        With ``into``, a :class:`~concursus_lab.timetravel.state_files.StateFiles`: the
        same counts and ``.undecodable``, and ``.frame`` or ``.scan()`` reading the
        states back from the files.

    Examples
    --------
    >>> import concursus_lab as cl
    >>> bulbs = cl.EventTypes("lightbulb")
    >>> @bulbs.initial
    ... class Created:
    ...     wattage: int
    >>> @bulbs.event
    ... class SwitchedOn: ...
    >>> def count_switches(state, event):
    ...     match event:
    ...         case Created(wattage=w):
    ...             return {"wattage": w, "switched_on": 0}
    ...         case SwitchedOn():
    ...             return {**state, "switched_on": state["switched_on"] + 1}
    >>> events = bulbs.encode([
    ...     Created(60, aggregate_id="b1", event_timestamp="2026-03-01 10:00"),
    ...     SwitchedOn(aggregate_id="b1", event_timestamp="2026-03-01 11:00"),
    ...     SwitchedOn(aggregate_id="b1", event_timestamp="2026-03-01 12:00"),  # not before `at`
    ...     SwitchedOn(aggregate_id="b2", event_timestamp="2026-03-01 09:00"),  # never created
    ... ])
    >>> result = cl.state_at(events, count_switches, types=bulbs, at="2026-03-01 12:00")
    >>> print(result.summary())
    1 lightbulb states at 2026-03-01 12:00:00 UTC, as known at any time
    4 deliveries: 2 applied, 1 skipped, 0 duplicate, 1 after `at`, 0 not known yet, 0 undecodable
    >>> result.states["b1"]
    {'wattage': 60, 'switched_on': 1}

    ``types`` of an aggregate type that ``events`` has no event of is a
    :class:`~concursus_lab.exceptions.SchemaError` naming the types it has, not 0 states.
    """
    question = dict(at=at, known_at=known_at, duplicates=duplicates, strict=strict)
    if into is None:
        buckets = chosen_buckets(events, buckets)  # a large frame: in buckets of itself
    if into is not None or is_bucketed(events, buckets):
        check_reducer(reducer)

        def fold(rows: pl.DataFrame) -> StateAt:
            return fold_states(rows, reducer, types=types, workers=workers, **question)

        if into is not None:
            result = write_states(events, buckets, fold, into, progress=progress)
        else:
            with conflicts.one_warning(disjoint=True):  # one warning, not one a bucket
                parts = each_bucket(events, buckets, fold, progress=progress, what="state_at")
                result = merged(list(parts))
        present = (
            events
            if isinstance(events, pl.DataFrame)
            else f"it has {result.counts['other_aggregate_types']:,} rows of other types"
        )
    else:
        result = fold_states(events, reducer, types=types, workers=workers, **question)
        present = events
    if result.counts["read"] == 0 and result.counts["other_aggregate_types"]:
        if isinstance(result, StateFiles):  # its files hold no state: not left behind
            for path in result.files:
                path.unlink()
        raise no_events_of_type(result.aggregate_type, present)
    if isinstance(result, StateAt):
        warn_shapeless(result.frame, reducer, state_class(reducer), "")
    reasons = reason_counts(result.undecodable)
    warn_undecodable(result.aggregate_type, result.counts["undecodable"], reasons)
    return result


def warn_undecodable(aggregate_type: str, count: int, reasons: list[tuple[str, int]]) -> None:
    """Warn, once per call, that ``count`` events could not be decoded and were left out, with
    the commonest ``reasons`` (:func:`~concursus_lab.events.decoded.commonest`) and where they
    are listed (a reader of ``.frame`` alone would otherwise not know), as the sources warn of
    their quarantine."""
    if not count:
        return
    listed = "; ".join(f"{n:,} x {reason}" for reason, n in reasons)
    warnings.warn(
        f"{plural(count, f'{aggregate_type} event')} could not be decoded and "
        f"{'was' if count == 1 else 'were'} left out of the states: they are in "
        f"`.undecodable` ({listed}). Declare the missing types or fix the values, or pass "
        "strict=True to raise instead.",
        UndecodableEvents,
        stacklevel=user_level(),
    )


def merged(parts: list[StateAt]) -> StateAt:
    """One answer of the answers of buckets of whole aggregates: as if folded at once.

    ``parts`` is emptied as it is read, so that each part's rows are copied once, in order
    (:func:`~concursus_lab.timetravel.buckets.put_together`)."""
    first = parts[0]
    question = (first.aggregate_type, first.at, first.known_at)
    states: list[Any] = []
    for part in parts:  # each part's states in its frame's row order (present ones only)
        states.extend(_take(part._folded[1], part._folded[2]))
    # a bucket without states shows placeholder columns where nothing says the state's shape
    frames = [p.frame for p in parts if p.frame.height] or [first.frame]
    keys = dict.fromkeys(k for p in parts for k in p.counts)
    counts = {k: sum(p.counts.get(k, 0) for p in parts) for k in keys}
    undecodable = pl.concat([p.undecodable for p in parts], how="diagonal_relaxed")
    del first, part
    parts.clear()

    def in_order(names: list[str]) -> list[str]:
        return [*(n for n in names if n not in TAIL), *TAIL]

    frame, order = put_together(frames, lambda f: string_order(f["aggregate_id"]), in_order)
    return StateAt(frame, *question, counts, undecodable, (None, states, order))


def fold_states(
    events: pl.DataFrame,
    reducer: Reducer,
    *,
    types: EventTypes,
    at: TimeLike | None = None,
    known_at: TimeLike | None = None,
    duplicates: str = "last",
    strict: bool = False,
    workers: int = 1,
) -> StateAt:
    """:func:`state_at` of a part of a history (a Spark bucket), which may hold no event of
    ``types``' aggregate type without that being a mistake: 0 states, no error."""
    types, frame, at, known_at = arguments(events, types, at, known_at, duplicates)
    check_reducer(reducer)
    replay = prepare(frame, types, at, known_at, duplicates, strict=strict)
    ids = pl.Series(replay.aggregate_ids, dtype=pl.String)
    if check_workers(workers) == 2:  # no thread of ours may run across a fork
        folded = reduce_aggregates(replay, reducer, types, workers)
        order = string_order(ids)
    else:
        with ThreadPoolExecutor(1) as pool:  # the ids are sorted (NumPy) during the fold
            by_id = pool.submit(string_order, ids)
            folded = reduce_aggregates(replay, reducer, types)
            order = by_id.result()
    told = Told(replay.counts, replay.undecodable)
    # the plan (every row's keys and decoded values) and the ids' column go before the
    # result's columns are made: at 1M events 40% of the peak was both at once
    del replay, ids
    return states_result(types, at, known_at, told, folded, order, state_class(reducer))


@dataclasses.dataclass(frozen=True)
class Told:
    """What a replay tells beside its states: its counts and undecodable rows."""

    counts: dict[str, int]
    undecodable: pl.DataFrame


def state_of(
    events: pl.DataFrame,
    reducer: Reducer,
    *,
    types: EventTypes,
    aggregate_id: str,
    at: TimeLike | None = None,
    known_at: TimeLike | None = None,
    duplicates: str = "last",
    strict: bool = False,
) -> Any:
    """The state of one aggregate (or None if it has none yet), as :func:`state_at` defines it.

    An ``aggregate_id`` with no deliveries of ``types``' aggregate type in ``events`` is a
    :class:`~concursus_lab.exceptions.SchemaError` naming near ids, not None.

    >>> import concursus_lab as cl
    >>> from concursus_lab.sample import LoadedOntoTruck, ReceivedAtDepot
    >>> from concursus_lab.sample import parcel_state, parcel_types
    >>> events = parcel_types.encode([
    ...     ReceivedAtDepot("Lewisham", aggregate_id="p1", event_timestamp="2026-03-02 08:00"),
    ...     LoadedOntoTruck("LEW-2", aggregate_id="p1", event_timestamp="2026-03-02 09:00"),
    ... ])
    >>> cl.state_of(events, parcel_state, types=parcel_types, aggregate_id="p1")
    ParcelState(status='on truck', depot='Lewisham', truck='LEW-2', attempts=1, destination=None)
    >>> cl.state_of(events, parcel_state, types=parcel_types, aggregate_id="p1",
    ...             at="2026-03-02 09:00")
    ParcelState(status='at depot', depot='Lewisham', truck=None, attempts=0, destination=None)
    >>> cl.state_of(events, parcel_state, types=parcel_types, aggregate_id="p1",
    ...             at="2026-03-02 08:00") is None
    True
    """
    types, frame, at, known_at = arguments(events, types, at, known_at, duplicates)
    check_reducer(reducer)
    frame = deliveries_of(frame, aggregate_id, types.aggregate_type)
    replay = prepare(frame, types, at, known_at, duplicates, strict=strict)
    folded = reduce_aggregates(replay, reducer, types)
    return folded.states[0] if folded.ids else None


# ------------------------------------------------------------------------- the pipeline


def arguments(events, types, at, known_at, duplicates):
    """The checked arguments every time-travel question takes: (types, frame, at, known_at)."""
    types = as_event_types(types)
    check_duplicates(duplicates)
    frame = validate(events, check_parameters=False)
    return types, frame, *bounds(at, known_at)


def no_events_of_type(aggregate_type: str, present: pl.DataFrame | str) -> SchemaError:
    """The error for ``types=`` of an aggregate type ``events`` has no event of, naming the
    types it has (``present``: the frame, or what is known of it)."""
    if isinstance(present, pl.DataFrame):
        kinds = present.group_by("aggregate_type").len().sort("aggregate_type").rows()
        shown = ", ".join(f"{kind!r} ({plural(n, 'row')})" for kind, n in kinds[:5])
        present = f"its aggregate types are {shown}" + (", ..." if len(kinds) > 5 else "")
    return SchemaError(
        f"`events` has no {aggregate_type} events: {present}; pass `types=` the EventTypes "
        f"of one of them (a frame with no events at all answers 0 states)."
    )


def states_result(types, at, known_at, replay, folded: Folded, order=None, kind=None) -> StateAt:
    """The StateAt of the folded states, rows sorted by id (``order``, if already known);
    ``kind``, the reducer's state class, gives the columns where no state shows them.

    The columns are built in replay order and then sorted by polars; the dict of states
    waits until it is asked for.
    """
    ids, states = folded.ids, folded.states
    if order is None:
        order = string_order(pl.Series(ids, dtype=pl.String))
    if has_none(states):  # only a type without initial events may leave an aggregate None
        present = np.fromiter(map(is_not, states, repeat(None)), dtype=bool, count=len(states))
        order = order[present[order]]
    columns = {"aggregate_id": pl.Series("aggregate_id", ids, dtype=pl.String)}
    extracted = folded.extracted
    if extracted is None or extracted.shape == ("objects",):
        extracted = extract(states, kind)
    columns.update(to_columns(extracted))
    columns["events_applied"] = pl.Series("events_applied", folded.sizes, dtype=pl.Int64)
    columns["last_event_timestamp"] = pl.Series(
        "last_event_timestamp", folded.last, dtype=pl.Int64
    ).cast(_TIME)
    frame = pl.DataFrame(columns)
    if len(order) != frame.height or (np.diff(order) != 1).any():
        frame = frame[order]
    return StateAt(
        frame,
        types.aggregate_type,
        at,
        known_at,
        replay.counts,
        replay.undecodable,
        (None, states, order),  # the ids are the frame's column: not kept twice
    )


def _take(values: list[Any], positions: np.ndarray) -> list[Any]:
    """``[values[i] for i in positions]``, in C."""
    if len(positions) == 0:
        return []
    if len(positions) == 1:
        return [values[int(positions[0])]]
    return list(itemgetter(*positions.tolist())(values))
