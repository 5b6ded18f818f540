"""One aggregate's history as replay sees it: every delivery, and what became of it.

``cl.history`` lists an aggregate's deliveries in causal replay order (see
``frame/order.py``), each marked with what the replay of ``cl.state_at`` did with it: not
known yet, after ``at``, a duplicate (or a conflicting one), undecodable, skipped by the
creation rules, or applied. It uses the same rules (``frame/``) as the fold, so the marks
are exactly why a state is what it is.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from concursus_lab.common.time import TimeLike
from concursus_lab.events.decode import classify
from concursus_lab.events.types import EventTypes, as_event_types
from concursus_lab.events.upcast import upcast
from concursus_lab.exceptions import SchemaError
from concursus_lab.frame import conflicts
from concursus_lab.frame.creation import creation_mask
from concursus_lab.frame.cut import bounds, happened_before, known_by
from concursus_lab.frame.identity import check_duplicates, decide, tie_columns
from concursus_lab.frame.order import causal_order
from concursus_lab.frame.schema import INITIAL, columns_of, validate
from concursus_lab.timetravel.aggregate_ids import deliveries_of
from concursus_lab.timetravel.replay import OUTCOMES

#: The ``status`` labels of :func:`history`, in the order a row is tested for them.
STATUSES = OUTCOMES


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
    ``"conflicting"``
        another delivery of the same identity wins, and it differs from this one in name,
        version or parameters (warned about: most likely another event that the identity
        cannot tell apart);
    ``"undecodable"``
        ``types`` cannot decode it (unknown type, bad parameters);
    ``"skipped"``
        no state exists yet and it is not initial, or a state exists and it is initial;
    ``"applied"``
        the reducer sees it.

    Without ``types``, each row's kind is its ``characteristics`` and the aggregate type is
    taken to declare initial events if any of its rows in ``events`` is initial. Where
    ``types`` declares upcasters (``EventTypes.upcast``), the rows are the events as upcast,
    a split one as its parts, and a ``stored`` column holds each as it was stored (null
    where it was not upcast); see ``docs/versions.md``.

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
    if types is not None:
        types = as_event_types(types)
    check_duplicates(duplicates)
    frame = validate(events, check_parameters=False)
    at, known_at = bounds(at, known_at)
    mine = deliveries_of(frame, aggregate_id, types.aggregate_type if types else None)
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
    mine = mine.select(*columns_of(mine), *tie_columns(mine)).with_row_index("__row")
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
    decision = decide(mine[live_rows], duplicates)
    conflicts.report(decision.conflicts)
    if decision.mask is not None:
        losers = live_rows[~decision.mask]
        status[losers] = "duplicate"
        status[live_rows[decision.conflicting]] = "conflicting"
        live[losers] = False
    if types is not None:  # upcast once duplicates are resolved, as the replay does
        upcast_rows = upcast(types, mine)
        mine = upcast_rows.frame
        if upcast_rows.parent is not None:  # a split event's parts share its fate so far
            status, live = status[upcast_rows.parent], live[upcast_rows.parent]
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
