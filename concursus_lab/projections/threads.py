"""Narrative threads: the events of different aggregates that share a parameter value.

A truck's day is not an aggregate: it is the parcels loaded onto it, and what became of
them. :func:`threads` links those events into one timeline per value of a parameter
(``via="truckId"``): an event belongs to the thread its aggregate last named, in causal
order (initial events first, terminal ones last, then event time, then stream id), so a
parcel's ``delivered`` joins the truck it was loaded onto, and a parcel loaded onto a second
truck after a failed delivery moves to that truck's thread.

The result is an event frame (every column kept, a ``thread`` column added) that every
function taking events takes, :func:`~concursus_lab.timeline` included. Everything is
vectorised; each ``parameters`` text is read by polars, not parsed in Python.

>>> import concursus_lab as cl
>>> on_trucks = cl.threads(cl.sample.fixture("messy"), via="truckId")
>>> on_trucks.filter(thread="CRO-4").select("aggregate_id", "name").rows()
[('parcel-D', 'loadedOntoTruck'), ('parcel-D', 'loadedOntoTruck'), ('parcel-D', 'deliveryFailed')]
"""

from __future__ import annotations

import re

import numpy as np
import polars as pl

from concursus_lab.exceptions import SchemaError
from concursus_lab.frame.keys import aggregate_hashes, sorted_codes
from concursus_lab.frame.order import causal_order
from concursus_lab.frame.schema import validate

SPANS = ("segment", "aggregate")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def threads(
    events: pl.DataFrame,
    via: str,
    *,
    span: str = "segment",
    as_aggregates: bool = False,
) -> pl.DataFrame:
    """Link events of different aggregates that share the value of parameter ``via``.

    Parameters
    ----------
    events
        A canonical event frame (deliveries are kept as they are: repeats stay repeats).
    via
        The parameter whose value names a thread, e.g. ``"truckId"``. Values are compared
        as text (a number's JSON text); JSON null counts as absent.
    span
        ``"segment"`` (default): an event belongs to the thread its aggregate last named,
        in causal order; events before the first value belong to none and are left out.
        ``"aggregate"``: every event of an aggregate belongs to every thread it ever named
        (a parcel loaded onto two trucks appears, whole, in both).
    as_aggregates
        Make each thread an aggregate of its own: ``aggregate_type`` becomes ``via`` and
        ``aggregate_id`` the thread, the member's own kept in ``member_type`` and
        ``member_id``, so :func:`~concursus_lab.timeline` draws one row per thread.

    Returns
    -------
    polars.DataFrame
        The events (every column) with ``thread`` (String), sorted by thread and event time
        (then aggregate, stream and processing time). ``events`` is not changed.

    Examples
    --------
    >>> import concursus_lab as cl
    >>> events = cl.sample.fixture("messy")
    >>> cl.threads(events, via="truckId").group_by("thread").len().sort("thread").rows()
    [('CAM-1', 3), ('CRO-4', 3), ('HAC-2', 2), ('HAC-3', 2), ('LEW-1', 2)]
    >>> whole = cl.threads(events, via="truckId", span="aggregate")
    >>> whole.filter(thread="HAC-2").select("name").to_series().to_list()
    ['receivedAtDepot', 'loadedOntoTruck', 'deliveryFailed', 'loadedOntoTruck', 'delivered']
    >>> trucks = cl.threads(events, via="truckId", as_aggregates=True)
    >>> sorted(trucks["aggregate_id"].unique())  # one timeline row per truck
    ['CAM-1', 'CRO-4', 'HAC-2', 'HAC-3', 'LEW-1']
    """
    if not isinstance(via, str) or not _NAME.fullmatch(via):
        raise SchemaError(f"`via` must be the name of a parameter, such as 'truckId', got {via!r}.")
    if span not in SPANS:
        raise SchemaError(
            f"`span` must be one of {SPANS}, got {span!r}: 'segment' follows each aggregate "
            "from the event that names a value to the next that names another; 'aggregate' "
            "puts an aggregate's whole history in every thread it named."
        )
    if not isinstance(as_aggregates, bool):
        raise SchemaError(f"`as_aggregates` must be True or False, got {as_aggregates!r}.")
    frame = validate(events, check_parameters=False)
    for column in ("thread", "member_type", "member_id"):
        if column in frame.columns:
            raise SchemaError(f"`events` already has a `{column}` column; rename or drop it first.")
    n = frame.height
    named = frame.select(pl.col("parameters").str.json_path_match(f"$.{via}")).to_series()
    order, first = causal_order(frame, frame["characteristics"].to_numpy())
    group = np.cumsum(first) - 1
    carried = carry_forward(named.gather(pl.Series(order, dtype=pl.Int64)), first)
    if span == "segment":
        rows, thread = order, carried
    else:  # every event of an aggregate, once per value it ever named
        pairs = (
            pl.DataFrame({"group": group, "thread": carried})
            .filter(pl.col("thread").is_not_null())
            .unique(maintain_order=True)
        )
        members = pl.DataFrame({"group": group, "position": np.arange(n)}).join(
            pairs, on="group", how="inner", maintain_order="left_right"
        )
        rows = order[members["position"].to_numpy()]
        thread = members["thread"]
    kept = thread.is_not_null().to_numpy()
    rows, thread = rows[kept], thread.filter(pl.Series(kept))
    codes, _ = sorted_codes(thread)
    h, _ = aggregate_hashes(frame)
    ts = frame["event_timestamp"].dt.epoch("us").to_numpy()[rows]
    stream, _ = sorted_codes(frame["stream_id"])
    pts = frame["processing_timestamp"].dt.epoch("us").to_numpy()[rows]
    final = np.lexsort((rows, pts, stream[rows], h[rows], ts, codes))
    linked = frame[rows[final]].with_columns(thread.gather(pl.Series(final)).alias("thread"))
    out = linked
    if not as_aggregates:
        return out
    return out.with_columns(
        pl.col("aggregate_type").alias("member_type"),
        pl.col("aggregate_id").alias("member_id"),
        pl.lit(via, pl.String).alias("aggregate_type"),
        pl.col("thread").alias("aggregate_id"),
    )


def carry_forward(values: pl.Series, first: np.ndarray) -> pl.Series:
    """``values`` with each null filled by the last non-null before it in its group (groups
    are runs that start where ``first`` is True); null before a group's first value."""
    n = values.len()
    if n == 0:
        return values
    position = np.arange(n)
    last = np.maximum.accumulate(np.where(values.is_not_null().to_numpy(), position, -1))
    group_start = np.maximum.accumulate(np.where(first, position, 0))
    found = last >= group_start
    picked = values.gather(pl.Series(np.where(found, last, 0), dtype=pl.Int64))
    return pl.select(pl.when(pl.Series(found)).then(picked)).to_series().alias(values.name)
