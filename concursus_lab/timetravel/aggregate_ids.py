"""One aggregate's deliveries, picked by id: an id with none is an error, never "no state yet".

``cl.state_of``, ``cl.history`` and ``cl.trace`` all answer for one aggregate. An id that
has no deliveries at all (a typo, the wrong frame, the wrong aggregate type) would otherwise
answer None or an empty frame, which reads exactly like an aggregate with no state yet; so
all three pick the aggregate's rows here, and an id with no rows raises a
:class:`~concursus_lab.exceptions.SchemaError` naming the id and some near ones. An id whose
deliveries all fall after ``at`` (or are not known yet) is known: it answers None.

>>> import concursus_lab as cl
>>> from concursus_lab.sample import ReceivedAtDepot, parcel_state, parcel_types
>>> events = parcel_types.encode(
...     [ReceivedAtDepot("Lewisham", aggregate_id=p, event_timestamp="2026-03-02") for p in
...      ("p1", "p2", "q7")])
>>> try:  # doctest: +NORMALIZE_WHITESPACE
...     cl.state_of(events, parcel_state, types=parcel_types, aggregate_id="p3")
... except cl.ConcursusLabError as error:
...     print(error)
`aggregate_id` 'p3' has no parcel deliveries in `events` (3 parcel aggregates); did you
mean 'p2', 'p1'?
>>> cl.state_of(events, parcel_state, types=parcel_types, aggregate_id="p1",
...             at="2026-03-01") is None  # known, but no state yet
True
"""

from __future__ import annotations

import difflib

import polars as pl

from concursus_lab.exceptions import SchemaError

#: How many ids are searched for near matches (the sorted first ones, beyond that).
_SEARCHED = 100_000


def deliveries_of(
    frame: pl.DataFrame, aggregate_id: str, aggregate_type: str | None = None
) -> pl.DataFrame:
    """The rows of ``frame`` whose ``aggregate_id`` is ``aggregate_id`` (of every type).

    Raises a :class:`SchemaError` when ``aggregate_id`` is not a string, or has no rows
    (of ``aggregate_type``, when given) in ``frame``, naming the nearest ids.
    """
    if not isinstance(aggregate_id, str):
        raise SchemaError(f"`aggregate_id` must be a string, got {aggregate_id!r}.")
    mine = frame.filter(pl.col("aggregate_id") == aggregate_id)
    if aggregate_type is None:
        known = mine.height > 0
    else:
        known = bool((mine["aggregate_type"] == aggregate_type).any())
    if not known:
        raise _unknown(frame, aggregate_id, aggregate_type)
    return mine


def _unknown(frame: pl.DataFrame, aggregate_id: str, aggregate_type: str | None) -> SchemaError:
    """The error for an id with no deliveries, naming the nearest ids (or some that have)."""
    if aggregate_type is not None:
        frame = frame.filter(pl.col("aggregate_type") == aggregate_type)
    ids = frame["aggregate_id"].unique().sort()
    near = difflib.get_close_matches(aggregate_id, ids.head(_SEARCHED).to_list(), 3, 0.5)
    if near:
        hint = f"; did you mean {', '.join(map(repr, near))}?"
    elif len(ids):
        hint = f"; some that have: {', '.join(map(repr, ids.head(3).to_list()))}."
    else:
        hint = "."
    kind = f"{aggregate_type} " if aggregate_type is not None else ""
    return SchemaError(
        f"`aggregate_id` {aggregate_id!r} has no {kind}deliveries in `events` "
        f"({ids.len():,} {kind}aggregates){hint}"
    )
