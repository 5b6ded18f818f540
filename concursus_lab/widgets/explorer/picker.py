"""The explorer's aggregate picker: the busiest aggregates suggested, any id accepted."""

from __future__ import annotations

import polars as pl

from concursus_lab.events.types import EventTypes
from concursus_lab.exceptions import SchemaError
from concursus_lab.plot.libraries import lab

ipywidgets = lab("ipywidgets")

#: Most aggregates offered in the picker (any id can be typed).
SUGGESTED = 200


def picker(
    events: pl.DataFrame, aggregate_id: str | None, types: EventTypes
) -> tuple[ipywidgets.Combobox, pl.DataFrame]:
    """The aggregate picker (the busiest aggregates suggested) and the chosen one's events."""
    busiest = (
        events.group_by("aggregate_id")
        .len()
        .top_k(SUGGESTED, by=["len", "aggregate_id"], reverse=[False, True])
    )
    suggestions = busiest["aggregate_id"].to_list()
    chosen = aggregate_id if aggregate_id is not None else suggestions[0]
    first = events.filter(pl.col("aggregate_id") == chosen)
    if first.height == 0:
        raise SchemaError(
            f"`aggregate_id` {chosen!r} has no {types.aggregate_type} events; "
            f"try one of {suggestions[:3]!r}."
        )
    combobox = ipywidgets.Combobox(
        options=suggestions,
        value=chosen,
        description="aggregate",
        placeholder="an aggregate id",
        ensure_option=False,
        continuous_update=False,
    )
    return combobox, first
