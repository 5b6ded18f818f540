"""One aggregate's history as replay sees it: every delivery, and what became of it.

``cl.history`` lists an aggregate's deliveries in causal replay order (see
``frame/order.py``), each marked with the fate the replay plan of ``cl.state_at``
(``replay.py``) gave it: not known yet, after ``at``, a duplicate (or a conflicting one),
undecodable, skipped by the creation rules, or applied. It is that plan shown as a frame
(:func:`as_frame`), so the marks are exactly why a state is what it is; ``cl.trace`` steps
through the same frame.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from concursus_lab.common.time import TimeLike
from concursus_lab.events.decode import type_codes
from concursus_lab.events.types import EventTypes, as_event_types
from concursus_lab.events.upcast import upcast
from concursus_lab.exceptions import SchemaError
from concursus_lab.frame.cut import bounds
from concursus_lab.frame.identity import check_duplicates, tie_columns
from concursus_lab.frame.order import causal_order
from concursus_lab.frame.schema import INITIAL, columns_of, validate
from concursus_lab.timetravel.aggregate_ids import deliveries_of
from concursus_lab.timetravel.replay import OUTCOMES, UNDECODABLE, Plan, Undeclared, prepare

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
    if types is None:
        kinds_of_type = mine["aggregate_type"].unique().sort().to_list()
        if len(kinds_of_type) > 1:
            raise SchemaError(
                f"aggregate id {aggregate_id!r} belongs to several aggregate types "
                f"({', '.join(map(repr, kinds_of_type))}); pass `types=` to choose one."
            )
        aggregate_type = kinds_of_type[0]
        declares_initial = bool(
            frame.filter(pl.col("aggregate_type") == aggregate_type)
            .select((pl.col("characteristics") == INITIAL).any())
            .item()
        )
        types = Undeclared(aggregate_type, declares_initial)
    mine = mine.filter(pl.col("aggregate_type") == types.aggregate_type)
    plan = prepare(mine, types, at, known_at, duplicates, strict=False, shown=True)
    return as_frame(plan, mine, types).drop(PLANNED, INDEX)


#: The columns :func:`as_frame` adds beside ``status``: each row's row in the plan's frame
#: (null: a delivery the plan left out) and its place among the events the fold applies.
PLANNED, INDEX = "__planned", "__index"


def as_frame(plan: Plan, asked: pl.DataFrame, types: EventTypes | Undeclared) -> pl.DataFrame:
    """The deliveries of ``plan`` (made from the rows ``asked``) in causal order, each with
    its fate (``status``), its row in ``plan.frame`` and its place among the events the fold
    applies (:data:`PLANNED`, :data:`INDEX`; null where there is none).

    The plan's frame holds the deliveries the time bounds kept, as upcast; the others (cut
    by a bound, or a split event's losing deliveries) are shown upcast too. All are put in
    causal order by their kinds, the deliveries of one identity in delivery order
    (``frame/order.py``), so the applied rows come in the plan's own order.
    """
    index = plan.index()
    n = plan.frame.height
    source = np.arange(n) if plan.source is None else plan.source
    planned = plan.frame.with_columns(
        _status(plan.fate),
        pl.Series(PLANNED, np.arange(n), dtype=pl.Int64),
        pl.Series(INDEX, index, dtype=pl.Int64).replace(-1, None),
        pl.Series("__at", source, dtype=pl.Int64),
    )
    parts = [planned]
    if plan.left_out is not None and (plan.left_out >= 0).any():
        parts.append(_left_out(plan, asked, types, planned.columns))
    shown = pl.concat(parts) if len(parts) > 1 else planned
    shown = shown.sort("__at", maintain_order=True)  # the rows asked about in their order
    order, _ = causal_order(shown, _kinds(shown, types))
    return shown[order].drop("__at")


def _left_out(plan: Plan, asked: pl.DataFrame, types, columns: list[str]) -> pl.DataFrame:
    """The deliveries the plan left out, as upcast, with their fates."""
    rows = np.flatnonzero(plan.left_out >= 0)
    fates = plan.left_out[rows]
    out = asked.select(*columns_of(asked), *tie_columns(asked))[rows]
    if isinstance(types, EventTypes):
        parts = upcast(types, out)
        out = parts.frame
        if parts.parent is not None:
            rows, fates = rows[parts.parent], fates[parts.parent]
    return out.with_columns(
        _status(fates),
        pl.lit(None, dtype=pl.Int64).alias(PLANNED),
        pl.lit(None, dtype=pl.Int64).alias(INDEX),
        pl.Series("__at", rows, dtype=pl.Int64),
    ).select(columns)


def _status(fates: np.ndarray) -> pl.Series:
    return pl.Series("status", [OUTCOMES[f] for f in fates.tolist()], dtype=pl.String)


def _kinds(shown: pl.DataFrame, types: EventTypes | Undeclared) -> np.ndarray:
    """Each delivery's kind for causal order: its declared type's, else (an unknown type,
    or parameters that do not decode) its ``characteristics``."""
    stated = shown["characteristics"].to_numpy()
    if isinstance(types, Undeclared):
        return stated
    codes = type_codes(types, shown)
    kinds = np.array([t.characteristics for t in types] + [-1], dtype=np.int32)[codes]
    undecodable = (shown["status"] == OUTCOMES[UNDECODABLE]).to_numpy()
    return np.where((kinds < 0) | undecodable, stated, kinds)
