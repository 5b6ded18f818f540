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
reducer call and building each event's instance is vectorised (polars and NumPy: filters,
duplicates, causal order, decoding the parameters; see ``_order.py`` and ``_decode.py``).
Each event's instance is made just before the reducer sees it (and freed after, unless the
state keeps it), so a fold holds a handful of events, not millions. The fold runs with
Python's cyclic garbage collector paused (hundreds of thousands of new states that all stay
alive are its worst case, and it would find nothing to free), and, with enough events and
two cores, half of the aggregates are folded in a forked process, which also pulls its
states' values out for the result's columns (``_state_columns.py``).

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
import pickle
import sys
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import reduce
from itertools import islice, repeat
from operator import is_not, itemgetter
from typing import Any

import numpy as np
import polars as pl

from concursus_lab._decode import Classified, classify, type_codes
from concursus_lab._gc import paused_gc
from concursus_lab._order import (
    causal_order,
    creation_mask,
    duplicate_losers,
    gather_rows,
    identity_order,
    pack_instant,
    restart,
    row_keys,
    sorted_codes,
    string_order,
)
from concursus_lab._query import _DUPLICATES
from concursus_lab._schema import COLUMNS, INITIAL, TERMINAL, validate
from concursus_lab._state_columns import (
    Extracted,
    extract,
    has_none,
    merge,
    state_columns,
    to_columns,
)
from concursus_lab._time import TimeLike, optional_utc
from concursus_lab._types import EventTypes, sequence_of_types
from concursus_lab.exceptions import ReducerError, SchemaError

Reducer = Callable[[Any, Any], Any]

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
    return (
        "any time"
        if value is None
        else value.strftime("%Y-%m-%d %H:%M:%S.%f UTC").replace(".000000 ", " ")
    )


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
        there are at least ``PARALLEL_MIN_EVENTS`` events to fold and two cores; pass 1
        when other work keeps the second core busy. The result is the same either way.

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
    replay = _prepare(frame, types, at, known_at, duplicates, strict=strict)
    ids = pl.Series(replay.aggregate_ids, dtype=pl.String)
    if _parallel(workers, len(replay.rows)):  # no thread of ours may run across a fork
        folded = _fold(replay, reducer, types, workers)
        order = string_order(ids)
    else:
        with ThreadPoolExecutor(1) as pool:  # the ids are sorted (NumPy) during the fold
            by_id = pool.submit(string_order, ids)
            folded = _fold(replay, reducer, types, workers)
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
    replay = _prepare(frame, types, at, known_at, duplicates, strict=strict)
    folded = _fold(replay, reducer, types)
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
    if duplicates not in _DUPLICATES:
        raise SchemaError(f"`duplicates` must be one of {_DUPLICATES}, got {duplicates!r}.")
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
    pts = mine["processing_timestamp"].dt.epoch("us").to_numpy()
    ts = mine["event_timestamp"].dt.epoch("us").to_numpy()
    live = np.ones(n, dtype=bool)
    if known_at is not None:
        late = pts > _us(known_at)
        status[late] = "not_known_yet"
        live &= ~late
    if at is not None:
        after = live & (ts >= _us(at))
        status[after] = "after_at"
        live &= ~after
    if duplicates != "keep":
        live_rows = np.flatnonzero(live)
        losers = duplicate_losers(mine[live_rows], duplicates)
        if losers is not None:
            status[live_rows[losers]] = "duplicate"
            live[live_rows[losers]] = False
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
    order = causal_order(mine, kinds, keep=True)
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
    window = (pl.col("processing_timestamp") > first) & (pl.col("processing_timestamp") <= second)
    if at is not None:
        window &= pl.col("event_timestamp") < at
    late = frame.filter(window)
    candidates = late["aggregate_id"].unique()
    frame = frame.filter(pl.col("aggregate_id").is_in(candidates.implode()))
    results = []
    for known in (first, second):
        replay = _prepare(frame, types, at, known, duplicates, strict=strict)
        folded = _fold(replay, reducer, types)
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


@dataclasses.dataclass
class _Replay:
    """The rows to replay, in causal order, and what the filters dropped."""

    classified: Classified
    rows: np.ndarray  # applied rows (positions in the classified frame), causal order
    segment_sizes: np.ndarray  # events applied per aggregate, aggregates in replay order
    aggregate_ids: list[str]  # aggregates with at least one applied event
    meta: list[np.ndarray]  # aligned with rows: ids, event us, processing us, stream ids
    counts: dict[str, int]
    undecodable: pl.DataFrame


def _arguments(events, types, at, known_at, duplicates):
    types = sequence_of_types(types)
    if duplicates not in _DUPLICATES:
        raise SchemaError(
            f"`duplicates` must be one of {_DUPLICATES}, got {duplicates!r}: 'last' keeps the "
            "last processed delivery of each identity (as Cassandra does), 'first' the first, "
            "'keep' every delivery."
        )
    frame = validate(events, check_parameters=False)
    return types, frame, optional_utc(at, "at"), optional_utc(known_at, "known_at")


def _check_reducer(reducer: Any) -> None:
    if not callable(reducer):
        raise SchemaError(
            f"`reducer` must be a function (state | None, event) -> state, got {reducer!r}."
        )


def _us(value: dt.datetime) -> int:
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _prepare(
    frame: pl.DataFrame,
    types: EventTypes,
    at: dt.datetime | None,
    known_at: dt.datetime | None,
    duplicates: str,
    *,
    strict: bool,
) -> _Replay:
    counts = dict.fromkeys(
        (
            "read",
            "not_known_yet",
            "after_at",
            "duplicate",
            "undecodable",
            "skipped",
            "applied",
            "other_aggregate_types",
        ),
        0,
    )
    mine = pl.col("aggregate_type") == types.aggregate_type
    known = pl.lit(True) if known_at is None else pl.col("processing_timestamp") <= known_at
    before = pl.lit(True) if at is None else pl.col("event_timestamp") < at
    tally = frame.select(
        mine.sum().alias("read"),
        (mine & ~known).sum().alias("not_known_yet"),
        (mine & known & ~before).sum().alias("after_at"),
    ).row(0, named=True)
    counts.update(tally)
    counts["other_aggregate_types"] = frame.height - tally["read"]
    kept = tally["read"] - tally["not_known_yet"] - tally["after_at"]
    frame = frame.select(COLUMNS)
    if kept < frame.height:  # filter only when something is left out (it copies every column)
        frame = frame.filter(mine & known & before)
    # parameters are decoded (polars, regular expressions) while rows are sorted and the
    # replay is worked out as if every row of a declared type decodes (polars and NumPy);
    # both release the GIL, so they share two cores. Rows that turn out not to decode are
    # rare: only then is the replay worked out again.
    codes = type_codes(types, frame)
    kinds = np.array([t.characteristics for t in types] + [-1], dtype=np.int32)[codes]
    with ThreadPoolExecutor(1) as pool:
        decoding = pool.submit(classify, types, frame, codes=codes)
        h, h2, ts, pts = row_keys(frame)
        stream_code, streams = sorted_codes(frame["stream_id"])
        instant = pack_instant(ts, stream_code, len(streams))
        order, start = identity_order(h, h2, instant, pts, duplicates, frame)
        declared = codes[order] >= 0
        times = (ts, pts, stream_code, streams)
        guess = _replay_rows(frame, types, order, start, declared, kinds, times)
        classified = decoding.result()
    counts["duplicate"] = frame.height - len(order)
    if counts["duplicate"]:
        classified.keep_only(order)  # a repeat that lost is a duplicate, not undecodable
    if strict:
        classified.raise_if_undecodable(frame)
    undecodable = classified.undecodable_frame(frame)
    counts["undecodable"] = undecodable.height
    decodable = classified.code[order] >= 0
    if (decodable == declared).all():
        rows, sizes, ids, meta, applied = guess
    else:
        rows, sizes, ids, meta, applied = _replay_rows(
            frame, types, order, start, decodable, kinds, times
        )
    counts["applied"] = applied
    counts["skipped"] = int(decodable.sum()) - applied
    return _Replay(classified, rows, sizes, ids, meta, counts, undecodable)


def _replay_rows(frame, types, order, start, decodable, kinds, times):
    """The rows the reducer sees, in causal order, from the identity order and which rows
    decode: (rows, events per aggregate, aggregate ids, per-row meta, events applied)."""
    ts, pts, stream_code, streams = times
    if not decodable.all():
        order, start = order[decodable], restart(start, decodable)
    # causal order: within each aggregate, initial events first and terminal ones last
    segment = np.cumsum(start) - 1
    kinds = kinds[order]
    rank = np.where(kinds == INITIAL, 0, np.where(kinds == TERMINAL, 2, 1))
    if len(rank) and (rank != 1).any():
        regroup = np.argsort(segment * 3 + rank, kind="stable")
        order, kinds = order[regroup], kinds[regroup]
    applied = creation_mask(kinds, start, types.declares_initial)
    rows = order[applied]
    seg = segment[applied]
    sizes = np.bincount(seg, minlength=int(start.sum()))
    with_events = np.flatnonzero(sizes)
    first_rows = order[np.flatnonzero(start)[with_events]]
    ids = gather_rows(frame["aggregate_id"], first_rows).to_list()
    id_objects = np.empty(len(ids), dtype=object)
    id_objects[:] = ids
    dense = np.zeros(len(sizes), dtype=np.int64)
    dense[with_events] = np.arange(len(with_events))
    stream_objects = np.empty(len(streams), dtype=object)
    stream_objects[:] = streams
    meta = [id_objects[dense[seg]], ts[rows], pts[rows], stream_objects[stream_code[rows]]]
    return rows, sizes[with_events], ids, meta, len(rows)


#: Below this many events to fold, a second process costs more than it saves.
PARALLEL_MIN_EVENTS = 200_000


class _FoldFailed(Exception):
    def __init__(self, index: int) -> None:
        self.index = index


@dataclasses.dataclass
class _Folded:
    """The fold's output, aggregates in replay order (``extracted``: the states' column
    values, when the fold already pulled them out)."""

    ids: list[str]
    states: list[Any]
    sizes: np.ndarray  # events applied per aggregate
    last: np.ndarray  # latest event time applied, epoch microseconds
    extracted: Extracted | None = None


def _fold(replay: _Replay, reducer: Reducer, types: EventTypes, workers: int | None = 1) -> _Folded:
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
        if _parallel(workers, len(replay.rows)) and n > 1:
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
    return _Folded(replay.aggregate_ids, states, sizes, last, extracted)


#: The share of the events folded by the child when two processes fold: the parent also
#: unpickles the child's states and sorts the ids while the child pickles.
CHILD_SHARE = 0.5


def _parallel(workers: int | None, events: int) -> bool:
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


def _fold_range(replay: _Replay, reducer: Reducer, lo: int, hi: int, offsets) -> list[Any]:
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
    replay: _Replay, reducer: Reducer, offsets, split: int
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


def _events_of(replay: _Replay, k: int, offsets) -> list[Any]:
    a, b = int(offsets[k]), int(offsets[k + 1])
    with paused_gc():
        return replay.classified.build(replay.rows[a:b], [m[a:b] for m in replay.meta])


def _raise_reducer_error(replay: _Replay, reducer: Reducer, k: int, offsets, exc) -> None:
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


def _result(types, at, known_at, replay, folded: _Folded, order=None) -> StateAt:
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
