"""Causal order: the order in which an aggregate's events are replayed, as Concursus does.

The rule, written here once:

* **rank**: initial events first, terminal events last, all others between
  (:func:`causal_rank`);
* within a rank, by ``event_timestamp``, then ``sequence`` (when the frame has one: the
  data's own order of events at one instant), then ``stream_id`` (lexical), then
  ``event_id`` (when the frame has one, lexical: only so that the order is fixed);
* deliveries of one identity (see ``identity.py``) in delivery order (processing time,
  then Kafka's order, then row), and only those that count as ``duplicates=`` asks.

:func:`causal_order` gives the row positions of a whole frame in that order, grouped by
aggregate (aggregates in an arbitrary but fixed order; sort their ids afterwards if the
order matters). It is built from two steps that the replay plan also uses on their own:
:func:`in_identity_order` (group, time order, duplicates) and :func:`by_rank` (the rank
rule), all vectorised (NumPy and polars, no Python per row).

>>> import concursus_lab as cl
>>> from concursus_lab.frame.order import causal_order
>>> messy = cl.sample.fixture("messy")
>>> b = messy.filter(aggregate_id="parcel-B")
>>> order, start = causal_order(b, b["characteristics"].to_numpy())
>>> b[order]["name"].to_list()  # its receipt arrived after its load: replayed before it
['receivedAtDepot', 'loadedOntoTruck', 'deliveryFailed', 'loadedOntoTruck', 'delivered']
"""

from __future__ import annotations

import dataclasses

import numpy as np
import polars as pl

from concursus_lab.frame import conflicts
from concursus_lab.frame.conflicts import Conflicts
from concursus_lab.frame.identity import (
    IDENTITY,
    Duplicates,
    decide,
    identity_of,
    in_delivery_order,
    pick,
    tie_columns,
)
from concursus_lab.frame.keys import (
    exact_aggregates,
    instant_keys,
    row_keys,
    shared_hash,
    sorted_codes,
)
from concursus_lab.frame.schema import INITIAL, TERMINAL


def causal_rank(kinds: np.ndarray) -> np.ndarray:
    """0 for initial events, 2 for terminal ones, 1 for the others: the causal rank.

    ``kinds`` are ``characteristics`` values (1 initial, 2 terminal, 0 neither), or a
    declared type's; any other value ranks with the others.

    >>> causal_rank(np.array([0, 1, 2, -1])).tolist()
    [1, 0, 2, 1]
    """
    return np.where(kinds == INITIAL, 0, np.where(kinds == TERMINAL, 2, 1)).astype(np.int8)


def causal_order(
    frame: pl.DataFrame, kinds: np.ndarray, duplicates: Duplicates = "keep"
) -> tuple[np.ndarray, np.ndarray]:
    """Row positions of ``frame`` in causal replay order, and a flag on each aggregate's
    first row; ``kinds`` holds each row's kind (its ``characteristics``, or its declared
    type's). Deliveries of one identity count as ``duplicates`` says (conflicting ones are
    warned about)."""
    keyed = in_identity_order(frame, duplicates)
    conflicts.report(keyed.conflicts)
    return by_rank(keyed.order, keyed.start, kinds)


@dataclasses.dataclass
class Keyed:
    """A frame's rows in identity order (:func:`identity_order`), with the keys that put
    them so: each row's event and processing time (epoch us) and stream code (``streams``
    holds the sorted stream ids), and the conflicting deliveries left out."""

    order: np.ndarray
    start: np.ndarray
    ts: np.ndarray
    pts: np.ndarray
    stream_code: np.ndarray
    streams: list
    conflicts: Conflicts
    conflicting: np.ndarray  # rows that lost to a delivery that differs from them


def in_identity_order(frame: pl.DataFrame, duplicates: Duplicates) -> Keyed:
    """:func:`identity_order` of a whole frame, keys made here (the replay's first step).

    The caller reports ``.conflicts`` (:func:`~concursus_lab.frame.conflicts.report`)."""
    h, h2, ts, pts = row_keys(frame)
    stream_code, streams = sorted_codes(frame["stream_id"])
    instant = instant_keys(frame, ts, stream_code, len(streams))
    order, start, found, conflicting = identity_order(h, h2, instant, pts, duplicates, frame)
    return Keyed(order, start, ts, pts, stream_code, streams, found, conflicting)


def identity_order(
    h: np.ndarray,
    h2: np.ndarray,
    instant: tuple[np.ndarray, ...],
    pts: np.ndarray,
    duplicates: Duplicates,
    frame: pl.DataFrame,
) -> tuple[np.ndarray, np.ndarray, Conflicts, np.ndarray]:
    """Rows grouped by aggregate (hash ``h``), then in causal order within a rank
    (``instant``: :func:`~concursus_lab.frame.keys.instant_keys`), the deliveries of one
    identity in delivery order; as ``duplicates`` says, only the delivery that counts
    (:func:`~concursus_lab.frame.identity.pick`).

    Returns the row positions, a flag marking each aggregate's first row, the conflicting
    deliveries left out (counted, and their row positions). The big sort is one polars
    sort of the keys with the row numbers alongside, with no processing-time or row key,
    and need not be stable: only the few identities delivered more than once are then put
    in delivery order. When two aggregates share the first hash (the second differs within
    a group: ``frame/keys.py``), they are grouped by their ids instead. A frame identified
    by ``sequence`` or ``event_id`` (whose deliveries of one event need not share an
    instant) is resolved first
    (:func:`~concursus_lab.frame.identity.decide`).
    """
    n = len(h)
    if n < 2:
        return np.arange(n, dtype=np.int64), np.ones(n, dtype=bool), Conflicts(), _NONE
    found, kept, conflicting = Conflicts(), None, _NONE
    if duplicates != "keep" and identity_of(frame) != IDENTITY:
        decision = decide(frame, duplicates)
        # one delivery per identity is left: the rest is as with "keep"
        found, kept, duplicates = decision.conflicts, decision.mask, "keep"
        conflicting = decision.conflicting
    order, start, found_here, lost = _grouped(h, h2, instant, pts, duplicates, frame, kept)
    return order, start, found_here or found, lost if len(lost) else conflicting


_NONE = np.zeros(0, dtype=np.int64)


def _grouped(h, h2, instant, pts, duplicates, frame, kept):
    """:func:`identity_order` of the rows ``kept`` (a mask; None: all)."""
    names = [f"i{k}" for k in range(len(instant))]
    keys = pl.DataFrame({"h": h, **dict(zip(names, instant, strict=True))})  # no copy
    if kept is not None:
        keys = keys.filter(pl.Series(kept))
    # only the permutation is sorted (not a sorted copy of every key): the keys are then
    # read in its order one at a time, each let go before the next (less memory at once)
    by = keys.select(pl.arg_sort_by(["h", *names], maintain_order=False)).to_series()
    del keys
    order = by.to_numpy().astype(np.int64)
    del by
    if kept is not None:
        order = np.flatnonzero(kept)[order]
    hs = h[order]
    start = np.ones(len(order), dtype=bool)
    np.not_equal(hs[1:], hs[:-1], out=start[1:])
    del hs
    if shared_hash(h2[order], start):
        h = exact_aggregates(frame)
        return _grouped(h, h, instant, pts, duplicates, frame, kept)
    same = ~start[1:]  # row p and row p + 1 are deliveries of one identity
    for key in instant:
        column = key[order]
        same &= column[1:] == column[:-1]
        del column
    if not same.any():
        return order, start, Conflicts(), _NONE
    return _runs(order, start, same, pts, duplicates, frame)


def _runs(order, start, same, pts, duplicates, frame):
    """Deliveries of one identity are neighbours in ``order`` (a run where ``same``): each
    run put in delivery order, and only the deliveries that count kept."""
    n = len(order)
    pairs = np.flatnonzero(same)
    repeated = np.union1d(pairs, pairs + 1)
    run_start = np.ones(len(repeated), dtype=bool)
    run_start[1:] = ~((repeated[1:] == repeated[:-1] + 1) & same[repeated[:-1]])
    rows = order[repeated]
    ties = [frame[c].to_numpy()[rows] for c in tie_columns(frame)]
    order[repeated] = rows[in_delivery_order(np.cumsum(run_start), pts[rows], rows, ties)]
    counted = pick(run_start, duplicates)
    if counted.all():
        return order, start, Conflicts(), _NONE
    identity = identity_of(frame)
    lost, found = conflicts.find(frame, order[repeated], run_start, counted, identity, duplicates)
    conflicting = order[repeated][lost]
    # a run that lost its first delivery still starts its aggregate if that one did
    run_first = np.maximum.accumulate(np.where(run_start, np.arange(len(repeated)), 0))
    start[repeated[counted]] = start[repeated[run_first[counted]]]
    kept = np.ones(n, dtype=bool)
    kept[repeated[~counted]] = False
    return order[kept], start[kept], found, conflicting


def by_rank(
    order: np.ndarray, start: np.ndarray, kinds: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``order`` (grouped by aggregate, each in time order) with each aggregate's rows
    regrouped by causal rank, stably: initial first, terminal last (:func:`causal_rank`).

    ``kinds`` is indexed by row position (as ``order`` is); each aggregate keeps its first
    position, so ``start`` is unchanged.
    """
    rank = causal_rank(kinds[order])
    inverted = (rank[1:] < rank[:-1]) & ~start[1:]
    if not inverted.any():  # the usual case: no aggregate has a rank out of time order
        return order, start
    # regroup only the aggregates that need it (one pass to find them, a small sort)
    segment = np.cumsum(start) - 1
    needs = np.zeros(int(segment[-1]) + 1, dtype=bool)
    needs[segment[1:][inverted]] = True
    positions = np.flatnonzero(needs[segment])
    regroup = np.argsort(segment[positions] * 3 + rank[positions], kind="stable")
    order = order.copy()
    order[positions] = order[positions[regroup]]
    return order, start


def restart(start: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Group-start flags after dropping rows: a kept row starts a group if it is the first
    kept row of its group."""
    group = np.cumsum(start) - 1
    kept_group = group[keep]
    new = np.ones(len(kept_group), dtype=bool)
    new[1:] = kept_group[1:] != kept_group[:-1]
    return new
