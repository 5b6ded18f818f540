"""Restatements: the states that changed once late deliveries arrived.

A state at event time ``at`` is a belief that can change after the fact: a delivery logged
late (a phone out of signal) restates it. ``cl.restatements`` compares the states as known
at two processing times and lists the aggregates whose state changed, with the deliveries
responsible.
"""

from __future__ import annotations

import polars as pl

from concursus_lab.common.time import TimeLike, optional_utc
from concursus_lab.events.types import EventTypes
from concursus_lab.exceptions import SchemaError
from concursus_lab.frame.conflicts import one_warning
from concursus_lab.frame.cut import happened_before, known_by
from concursus_lab.timetravel.reducer import Reducer, check_reducer
from concursus_lab.timetravel.reducing import reduce_aggregates
from concursus_lab.timetravel.replay import prepare
from concursus_lab.timetravel.state_at import arguments, no_events_of_type
from concursus_lab.timetravel.state_columns import state_class, state_columns


@one_warning()  # both replays see the same conflicts: one warning
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
    ``{name, event_timestamp, processing_timestamp, stream_id}`` in processing order. The
    fields are the state class's, the one the reducer's return annotation names, also when
    nothing was restated (see ``state_columns.py``).

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
    types, frame, at, first = arguments(events, types, at, known_at[0], duplicates)
    second = optional_utc(known_at[1], "known_at[1]")
    if first is None or second is None or second < first:
        raise SchemaError(f"`known_at` must be two times with P1 <= P2, got {known_at!r}.")
    check_reducer(reducer)
    everything, frame = frame, frame.filter(pl.col("aggregate_type") == types.aggregate_type)
    if frame.height == 0 and everything.height:
        raise no_events_of_type(types.aggregate_type, everything)
    # deliveries known by P2 but not by P1, of events before `at`
    window = known_by(second) & ~known_by(first) & happened_before(at)
    late = frame.filter(window)
    candidates = late["aggregate_id"].unique()
    frame = frame.filter(pl.col("aggregate_id").is_in(candidates.implode()))
    results = []
    for known in (first, second):
        replay = prepare(frame, types, at, known, duplicates, strict=strict)
        folded = reduce_aggregates(replay, reducer, types)
        results.append(dict(zip(folded.ids, folded.states, strict=True)))
    before, after = results
    changed = sorted(i for i in candidates.to_list() if before.get(i) != after.get(i))
    columns: dict[str, pl.Series] = {"aggregate_id": pl.Series(changed, dtype=pl.String)}
    kind = state_class(reducer)  # the columns, where no state shows them
    old = state_columns([before.get(i) for i in changed], kind)
    new = state_columns([after.get(i) for i in changed], kind)
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
