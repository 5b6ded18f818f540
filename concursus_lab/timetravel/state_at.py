"""Time travel: fold typed events into states at any event time, as known at any processing time.

The rules are Concursus's (see "Time-travel semantics" in DESIGN.md):

* ``at`` bounds event time, exclusive: only events that happened strictly before it count
  (Concursus's ``getState(id, upTo)``); ``known_at`` bounds processing time, inclusive: only
  deliveries logged at or before it count. Either may be None (no bound).
* Deliveries of one identity (aggregate type, aggregate id, event timestamp, stream id) are
  one event: the last processed wins, as a Cassandra upsert does (``duplicates="first"``
  keeps the first, as an idempotency filter does; ``"keep"`` applies every delivery).
* Replay order is causal: initial events first, terminal events last, the others between;
  within each, by event timestamp, then stream id. An event's kind is its declared type's.
* While an aggregate has no state only an initial event creates one; once it has one,
  further initial events are skipped. Where no initial event type is declared, the reducer
  sees every event, starting from None.
* Events that cannot be decoded are never dropped silently: they are counted and returned
  beside the result (``strict=True`` raises :class:`~concursus_lab.DecodeError` instead).

A reducer is a plain function ``(state | None, event) -> state``. Everything but the
reducer call and building each event's instance is vectorised: ``_replay.py`` works out
which rows a fold sees and in what order (polars and NumPy: filters, duplicates, causal
order, decoding the parameters; see ``_order.py`` and ``_decode.py``), ``_fold.py`` folds
them (in two processes, with enough events and two cores), and ``_state_columns.py`` turns
the states into the result's columns.

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
from concurrent.futures import ThreadPoolExecutor
from itertools import repeat
from operator import is_not, itemgetter
from typing import Any

import numpy as np
import polars as pl

from concursus_lab.common.gc import paused_gc
from concursus_lab.common.time import TimeLike, optional_utc, when
from concursus_lab.events.decode import classify
from concursus_lab.events.types import EventTypes, sequence_of_types
from concursus_lab.exceptions import SchemaError
from concursus_lab.frame.creation import creation_mask
from concursus_lab.frame.cut import happened_before, known_by
from concursus_lab.frame.identity import check_duplicates, winners
from concursus_lab.frame.keys import string_order
from concursus_lab.frame.order import causal_order
from concursus_lab.frame.schema import COLUMNS, INITIAL, validate
from concursus_lab.timetravel.folding import Folded, Reducer, fold, parallel
from concursus_lab.timetravel.replay import prepare
from concursus_lab.timetravel.state_columns import (
    extract,
    has_none,
    state_columns,
    to_columns,
)

#: The ``status`` labels of :func:`history`, in the order a row is tested for them.
STATUSES = ("not_known_yet", "after_at", "duplicate", "undecodable", "skipped", "applied")

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
        ``last_event_timestamp`` (the latest event time among the events applied).
    states
        ``aggregate_id -> state object``, the reducer's own values (made on first use).
    aggregate_type, at, known_at
        The question asked.
    counts
        How many deliveries of this aggregate type were read, and what became of them:
        ``read = not_known_yet + after_at + duplicate + undecodable + skipped + applied``.
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
    _folded: tuple[list[str], list[Any], np.ndarray] = dataclasses.field(repr=False)

    @functools.cached_property
    def states(self) -> dict[str, Any]:
        """``aggregate_id -> state object`` (the reducer's own values), sorted by id.

        Made on first use: the frame is the answer most often looked at, and a dict of
        hundreds of thousands of states takes a noticeable part of a second to build.
        """
        ids, states, order = self._folded
        with paused_gc():  # hundreds of thousands of live objects and nothing to free
            return dict(zip(_take(ids, order), _take(states, order), strict=True))

    @property
    def skipped(self) -> int:
        """Events skipped by the creation rules (no state yet, or a repeated initial)."""
        return self.counts["skipped"]

    @property
    def duplicates(self) -> int:
        """Deliveries dropped as repeats of an identity already counted."""
        return self.counts["duplicate"]

    @property
    def applied(self) -> int:
        """Events the reducer saw."""
        return self.counts["applied"]

    def summary(self) -> str:
        """Two deterministic lines: the question, and what became of the events."""
        c = self.counts
        when = f"at {_when(self.at)}, as known at {_when(self.known_at)}"
        lines = [
            f"{self.frame.height:,} {self.aggregate_type} states {when}",
            f"{c['read']:,} deliveries: {c['applied']:,} applied, {c['skipped']:,} "
            f"skipped, {c['duplicate']:,} duplicate, {c['after_at']:,} after `at`, "
            f"{c['not_known_yet']:,} not known yet, {c['undecodable']:,} undecodable",
        ]
        if c["other_aggregate_types"]:
            lines.append(f"({c['other_aggregate_types']:,} rows of other aggregate types ignored)")
        if c["undecodable"]:
            reasons = (
                self.undecodable.group_by("reason")
                .len()
                .sort(["len", "reason"], descending=[True, False])
                .head(3)
            )
            for reason, count in reasons.rows():
                lines.append(f"  undecodable: {count:,} x {reason}")
        return "\n".join(lines)

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


def _when(value: dt.datetime | None) -> str:
    return "any time" if value is None else f"{when(value)} UTC"


# ------------------------------------------------------------------------------ public


def state_at(
    events: pl.DataFrame,
    reducer: Reducer,
    *,
    types: EventTypes,
    at: TimeLike | None = None,
    known_at: TimeLike | None = None,
    duplicates: str = "last",
    strict: bool = False,
    workers: int | None = None,
) -> StateAt:
    """The state of every aggregate at event time ``at``, as known at processing time ``known_at``.

    Parameters
    ----------
    events
        A canonical event frame; rows of other aggregate types than ``types``' are ignored
        (and counted).
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
        1 folds in this process. 2 folds half of the aggregates in a forked copy of this
        process at the same time (Linux only; the reducer must then be a pure function, and
        its states picklable or they are folded again here). None (default) uses 2 when
        there are at least 200,000 events to fold (``_fold.PARALLEL_MIN_EVENTS``) and two
        cores; pass 1 when other work keeps the second core busy. The result is the same
        either way.

    Returns
    -------
    StateAt
        ``.frame`` (one row per aggregate with a state), ``.states`` (the objects), the
        counts of what was left out, and ``.undecodable``. It prints a short summary.

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
    """
    types, frame, at, known_at = _arguments(events, types, at, known_at, duplicates)
    _check_reducer(reducer)
    replay = prepare(frame, types, at, known_at, duplicates, strict=strict)
    ids = pl.Series(replay.aggregate_ids, dtype=pl.String)
    if parallel(workers, len(replay.rows)):  # no thread of ours may run across a fork
        folded = fold(replay, reducer, types, workers)
        order = string_order(ids)
    else:
        with ThreadPoolExecutor(1) as pool:  # the ids are sorted (NumPy) during the fold
            by_id = pool.submit(string_order, ids)
            folded = fold(replay, reducer, types, workers)
            order = by_id.result()
    return _result(types, at, known_at, replay, folded, order)


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
    """The state of one aggregate (or None if it has none), as :func:`state_at` defines it.

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
    if not isinstance(aggregate_id, str):
        raise SchemaError(f"`aggregate_id` must be a string, got {aggregate_id!r}.")
    types, frame, at, known_at = _arguments(events, types, at, known_at, duplicates)
    _check_reducer(reducer)
    frame = frame.filter(pl.col("aggregate_id") == aggregate_id)
    replay = prepare(frame, types, at, known_at, duplicates, strict=strict)
    folded = fold(replay, reducer, types)
    return folded.states[0] if folded.ids else None


def history(
    events: pl.DataFrame,
    aggregate_id: str,
    *,
    at: TimeLike | None = None,
    known_at: TimeLike | None = None,
    types: EventTypes | None = None,
    duplicates: str = "last",
) -> pl.DataFrame:
    """One aggregate's deliveries in causal replay order, each with what replay did with it.

    ``status`` is one of (tested in this order):

    ``"not_known_yet"``
        processed after ``known_at``;
    ``"after_at"``
        happened at or after ``at``;
    ``"duplicate"``
        another delivery of the same identity wins (see ``duplicates``);
    ``"undecodable"``
        ``types`` cannot decode it (unknown type, bad parameters);
    ``"skipped"``
        no state exists yet and it is not initial, or a state exists and it is initial;
    ``"applied"``
        the reducer sees it.

    Without ``types``, each row's kind is its ``characteristics`` and the aggregate type is
    taken to declare initial events if any of its rows in ``events`` is initial.

    >>> import concursus_lab as cl
    >>> from concursus_lab.sample import Delivered, LoadedOntoTruck, parcel_types
    >>> events = parcel_types.encode([
    ...     LoadedOntoTruck("LEW-2", aggregate_id="p1", event_timestamp="2026-03-02 09:00",
    ...                     processing_timestamp="2026-03-02 09:01"),
    ...     LoadedOntoTruck("LEW-2", aggregate_id="p1", event_timestamp="2026-03-02 09:00",
    ...                     processing_timestamp="2026-03-02 09:05"),
    ...     Delivered("dest-1", aggregate_id="p1", event_timestamp="2026-03-02 11:00"),
    ... ])
    >>> cl.history(events, "p1", at="2026-03-02 10:00").select("name", "status").rows()
    [('loadedOntoTruck', 'duplicate'), ('loadedOntoTruck', 'applied'), ('delivered', 'after_at')]
    """
    if not isinstance(aggregate_id, str):
        raise SchemaError(f"`aggregate_id` must be a string, got {aggregate_id!r}.")
    if types is not None:
        types = sequence_of_types(types)
    check_duplicates(duplicates)
    frame = validate(events, check_parameters=False)
    at, known_at = optional_utc(at, "at"), optional_utc(known_at, "known_at")
    mine = frame.filter(pl.col("aggregate_id") == aggregate_id)
    if types is not None:
        aggregate_type = types.aggregate_type
        mine = mine.filter(pl.col("aggregate_type") == aggregate_type)
    else:
        kinds_of_type = mine["aggregate_type"].unique().sort().to_list()
        if len(kinds_of_type) > 1:
            raise SchemaError(
                f"aggregate id {aggregate_id!r} belongs to several aggregate types "
                f"({', '.join(map(repr, kinds_of_type))}); pass `types=` to choose one."
            )
        aggregate_type = kinds_of_type[0] if kinds_of_type else None
    mine = mine.select(COLUMNS).with_row_index("__row")
    if mine.height == 0:
        return mine.drop("__row").with_columns(pl.lit(None, pl.String).alias("status"))
    n = mine.height
    status = np.full(n, "", dtype=object)
    flags = mine.with_columns(
        (~known_by(known_at)).alias("__late"), (~happened_before(at)).alias("__after")
    )
    late = flags["__late"].to_numpy()
    after = ~late & flags["__after"].to_numpy()
    status[late], status[after] = "not_known_yet", "after_at"
    live = ~(late | after)
    live_rows = np.flatnonzero(live)
    counted = winners(mine[live_rows], duplicates)
    if counted is not None:
        losers = live_rows[~counted]
        status[losers] = "duplicate"
        live[losers] = False
    if types is not None:
        classified = classify(types, mine)
        kinds = classified.kinds
        bad = live & (classified.code < 0)
        status[bad] = "undecodable"
        live &= ~bad
        declares_initial = types.declares_initial
        kinds = np.where(kinds < 0, mine["characteristics"].to_numpy(), kinds)
    else:
        kinds = mine["characteristics"].to_numpy()
        declares_initial = bool(
            frame.filter(pl.col("aggregate_type") == aggregate_type)
            .select((pl.col("characteristics") == INITIAL).any())
            .item()
        )
    order, _ = causal_order(mine, kinds)
    live_sorted = order[live[order]]
    start = np.zeros(len(live_sorted), dtype=bool)
    start[:1] = True
    applied = creation_mask(kinds[live_sorted], start, declares_initial)
    status[live_sorted[applied]] = "applied"
    status[live_sorted[~applied]] = "skipped"
    return (
        mine[order]
        .with_columns(pl.Series("status", status[order].tolist(), dtype=pl.String))
        .drop("__row")
    )


def restatements(
    events: pl.DataFrame,
    reducer: Reducer,
    *,
    types: EventTypes,
    at: TimeLike | None = None,
    known_at: tuple[TimeLike, TimeLike],
    duplicates: str = "last",
    strict: bool = False,
) -> pl.DataFrame:
    """Aggregates whose state at ``at`` changed between what was known at two times.

    ``known_at=(P1, P2)`` with P1 <= P2. Only aggregates that received a delivery processed
    in (P1, P2] for an event before ``at`` can change; those are replayed twice and compared
    with ``==``. The result has ``aggregate_id``, each state field as ``<field>_before`` and
    ``<field>_after`` side by side (or ``state_before`` / ``state_after``; null where there
    was no state), and ``late_events``: the deliveries responsible, as a list of
    ``{name, event_timestamp, processing_timestamp, stream_id}`` in processing order.

    >>> import concursus_lab as cl
    >>> from concursus_lab.sample import LoadedOntoTruck, ReceivedAtDepot
    >>> from concursus_lab.sample import parcel_state, parcel_types
    >>> events = parcel_types.encode([
    ...     ReceivedAtDepot("Lewisham", aggregate_id="p1", event_timestamp="2026-03-02 08:00"),
    ...     LoadedOntoTruck("LEW-2", aggregate_id="p1", event_timestamp="2026-03-02 09:00",
    ...                     processing_timestamp="2026-03-02 15:00"),  # a driver's phone
    ... ])
    >>> changed = cl.restatements(events, parcel_state, types=parcel_types,
    ...     at="2026-03-02 12:00", known_at=("2026-03-02 12:00", "2026-03-02 18:00"))
    >>> changed.select("aggregate_id", "status_before", "status_after", "truck_after").rows()
    [('p1', 'at depot', 'on truck', 'LEW-2')]
    >>> changed["late_events"][0][0]["name"]
    'loadedOntoTruck'
    """
    if isinstance(known_at, (str, bytes)) or not hasattr(known_at, "__len__") or len(known_at) != 2:
        raise SchemaError(
            f"`known_at` must be a pair (P1, P2) of processing times, got {known_at!r}: the "
            "states as known at P1 are compared with the states as known at P2."
        )
    types, frame, at, first = _arguments(events, types, at, known_at[0], duplicates)
    second = optional_utc(known_at[1], "known_at[1]")
    if first is None or second is None or second < first:
        raise SchemaError(f"`known_at` must be two times with P1 <= P2, got {known_at!r}.")
    _check_reducer(reducer)
    frame = frame.filter(pl.col("aggregate_type") == types.aggregate_type)
    # deliveries known by P2 but not by P1, of events before `at`
    window = known_by(second) & ~known_by(first) & happened_before(at)
    late = frame.filter(window)
    candidates = late["aggregate_id"].unique()
    frame = frame.filter(pl.col("aggregate_id").is_in(candidates.implode()))
    results = []
    for known in (first, second):
        replay = prepare(frame, types, at, known, duplicates, strict=strict)
        folded = fold(replay, reducer, types)
        results.append(dict(zip(folded.ids, folded.states, strict=True)))
    before, after = results
    changed = sorted(i for i in candidates.to_list() if before.get(i) != after.get(i))
    columns: dict[str, pl.Series] = {"aggregate_id": pl.Series(changed, dtype=pl.String)}
    old = state_columns([before.get(i) for i in changed])
    new = state_columns([after.get(i) for i in changed])
    for name in dict.fromkeys([*old, *new]):
        for suffix, side in (("_before", old), ("_after", new)):
            column = side.get(name)
            if column is None:
                column = pl.Series([None] * len(changed))
            columns[name + suffix] = column.alias(name + suffix)
    out = pl.DataFrame(columns)
    responsible = (
        late.filter(pl.col("aggregate_id").is_in(changed))
        .sort("processing_timestamp", "event_timestamp", "stream_id", maintain_order=True)
        .group_by("aggregate_id", maintain_order=True)
        .agg(
            pl.struct("name", "event_timestamp", "processing_timestamp", "stream_id").alias(
                "late_events"
            )
        )
    )
    return out.join(responsible, on="aggregate_id", how="left", maintain_order="left")


# ------------------------------------------------------------------------- the pipeline


def _arguments(events, types, at, known_at, duplicates):
    types = sequence_of_types(types)
    check_duplicates(duplicates)
    frame = validate(events, check_parameters=False)
    return types, frame, optional_utc(at, "at"), optional_utc(known_at, "known_at")


def _check_reducer(reducer: Any) -> None:
    if not callable(reducer):
        raise SchemaError(
            f"`reducer` must be a function (state | None, event) -> state, got {reducer!r}."
        )


def _result(types, at, known_at, replay, folded: Folded, order=None) -> StateAt:
    """The StateAt of the folded states, rows sorted by id (``order``, if already known).

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
    columns.update(to_columns(folded.extracted or extract(states)))
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
        (ids, states, order),
    )


def _take(values: list[Any], positions: np.ndarray) -> list[Any]:
    """``[values[i] for i in positions]``, in C."""
    if len(positions) == 0:
        return []
    if len(positions) == 1:
        return [values[int(positions[0])]]
    return list(itemgetter(*positions.tolist())(values))
