"""Your own events in: one declarative :class:`Mapping` from any table onto the canonical frame.

Teams keep events in tables, exports and topics of their own shape. A mapping says which
column (or field) gives each canonical column, the unit of epoch numbers, the zone of naive
times and what identifies an event; every entry point takes one: :func:`from_polars` and
:func:`from_pandas` for frames, ``cl.open(path, mapping=...)`` for files, tables and topics.
Concursus's own layouts are mappings of the same kind (:func:`Mapping.concursus`).

>>> import polars as pl, concursus_lab as cl
>>> orders = pl.DataFrame({
...     "order_id": ["o1", "o1"], "event_type": ["created", "paid"],
...     "occurred_at": ["2026-03-01 10:00", "2026-03-01 10:00"], "amount": [12.5, 12.5],
... })
>>> events = cl.from_polars(orders, cl.Mapping(
...     aggregate_type="order", aggregate_id="order_id", name="event_type",
...     event_time="occurred_at", time_zone="UTC"))
>>> events.select("aggregate_id", "name", "event_timestamp", "parameters")
shape: (2, 4)
┌──────────────┬─────────┬─────────────────────────┬─────────────────┐
│ aggregate_id ┆ name    ┆ event_timestamp         ┆ parameters      │
│ ---          ┆ ---     ┆ ---                     ┆ ---             │
│ str          ┆ str     ┆ datetime[μs, UTC]       ┆ str             │
╞══════════════╪═════════╪═════════════════════════╪═════════════════╡
│ o1           ┆ created ┆ 2026-03-01 10:00:00 UTC ┆ {"amount":12.5} │
│ o1           ┆ paid    ┆ 2026-03-01 10:00:00 UTC ┆ {"amount":12.5} │
└──────────────┴─────────┴─────────────────────────┴─────────────────┘
"""

from concursus_lab.mapping.frames import from_pandas, from_polars
from concursus_lab.mapping.plan import Mapped, Plan
from concursus_lab.mapping.spec import Mapping

__all__ = ["Mapped", "Mapping", "Plan", "from_pandas", "from_polars"]
