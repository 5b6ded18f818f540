"""A web shop's order events as its team exports them: a shape no one designed for Concursus.

:func:`orders_export` makes a wide table, one row per event, as a CSV export or a reporting
table holds them:

* ``order_id``, ``event_no`` (the event's number within its order, 1, 2, ...),
  ``event_type`` (``created``, ``paid``, ``packed``, ``shipped``, ``cancelled``);
* ``occurred_at``: shop-floor time to the minute, **naive, in Europe/London** (so a web
  order's ``created`` and ``paid`` often share one minute);
* ``ingested_at``: when the export job picked it up, ISO 8601 in UTC, minutes to hours later;
* ``amount``, ``sku``, ``channel``: a column for every field of every event type, null where
  an event has no such field;
* re-exports: about 2% of rows appear again, later, unchanged; and one row was corrected after
  its first export (a conflicting repeat: same order and event number, another amount).

``order_types``, :class:`OrderState` and :func:`order_state` are its event types, state and
reducer, and :data:`ORDERS` the mapping that reads it.

>>> frame = orders_export(5, seed=1)
>>> frame.columns
['order_id', 'event_no', 'event_type', 'occurred_at', 'ingested_at', 'amount', 'sku', 'channel']
"""

from __future__ import annotations

import dataclasses

import numpy as np
import polars as pl

from concursus_lab.events.types import EventTypes
from concursus_lab.mapping import Mapping

order_types = EventTypes("order")


@order_types.initial
class Created:
    sku: str
    amount: float
    channel: str


@order_types.event
class Paid:
    amount: float


@order_types.event
class Packed: ...


@order_types.terminal
class Shipped: ...


@order_types.terminal
class Cancelled: ...


@dataclasses.dataclass(frozen=True)
class OrderState:
    sku: str
    amount: float
    channel: str
    paid: float = 0.0
    status: str = "open"


def order_state(state: OrderState | None, event) -> OrderState | None:
    """An order's state, event by event."""
    match event:
        case Created(sku=sku, amount=amount, channel=channel):
            return OrderState(sku, amount, channel)
        case Paid(amount=amount):
            return dataclasses.replace(state, paid=state.paid + amount, status="paid")
        case Packed():
            return dataclasses.replace(state, status="packed")
        case Shipped():
            return dataclasses.replace(state, status="shipped")
        case Cancelled():
            return dataclasses.replace(state, status="cancelled")
    return state


#: How the export maps onto events: naive London times, the event number as the sequence.
ORDERS = Mapping(
    aggregate_type="order",
    aggregate_id="order_id",
    name="event_type",
    event_time="occurred_at",
    processing_time="ingested_at",
    sequence="event_no",
    time_zone="Europe/London",
    types=order_types,
)

_SKUS = ("kettle", "toaster", "mug", "teapot", "scales", "whisk")
_MINUTE = 60_000_000


def orders_export(orders: int = 200, *, seed: int = 1) -> pl.DataFrame:
    """``orders`` orders' events as the shop's export holds them; see the module docstring."""
    rng = np.random.default_rng(seed)
    start = 1_772_355_600_000_000  # 2026-03-01 09:00 UTC (GMT: London time too)
    rows: list[dict] = []
    for i in range(orders):
        rows.extend(_order(rng, f"A-{i:05d}", start + int(rng.integers(0, 5 * 24 * 60)) * _MINUTE))
    frame = pl.DataFrame(rows, schema=_SCHEMA, orient="row")
    again = frame.sample(fraction=0.02, seed=seed).with_columns(
        pl.col("ingested_at") + pl.duration(hours=6)
    )
    corrected = frame.filter(event_type="paid").head(1).with_columns(
        pl.col("amount") + 2.0, pl.col("ingested_at") + pl.duration(days=1)
    )
    frame = pl.concat([frame, again, corrected]).sort("ingested_at", "order_id", "event_no")
    return frame.with_columns(
        pl.col("occurred_at").dt.strftime("%Y-%m-%d %H:%M"),
        pl.col("ingested_at").dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
    )


_SCHEMA = {
    "order_id": pl.String,
    "event_no": pl.Int64,
    "event_type": pl.String,
    "occurred_at": pl.Datetime("us"),
    "ingested_at": pl.Datetime("us"),
    "amount": pl.Float64,
    "sku": pl.String,
    "channel": pl.String,
}


def _order(rng: np.random.Generator, order_id: str, at: int) -> list[dict]:
    web = rng.random() < 0.7
    amount = float(rng.integers(500, 9000)) / 100
    steps = [("created", 0)]
    steps.append(("paid", 0 if web else int(rng.integers(1, 30))))  # web orders pay at once
    if rng.random() < 0.1:
        steps.append(("cancelled", int(rng.integers(30, 600))))
    else:
        steps.append(("packed", int(rng.integers(60, 1440))))
        steps.append(("shipped", steps[-1][1] + int(rng.integers(30, 600))))
    out = []
    for number, (kind, minutes) in enumerate(steps, start=1):
        occurred = at + minutes * _MINUTE
        lag = int(rng.lognormal(4, 1.2) * 1_000_000)  # the export job: minutes, a long tail
        out.append(
            {
                "order_id": order_id,
                "event_no": number,
                "event_type": kind,
                "occurred_at": occurred,
                "ingested_at": occurred + lag,
                "amount": amount if kind in ("created", "paid") else None,
                "sku": str(rng.choice(_SKUS)) if kind == "created" else None,
                "channel": ("web" if web else "shop") if kind == "created" else None,
            }
        )
    return out
