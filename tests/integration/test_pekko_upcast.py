"""Upcasting by the version a Pekko manifest carries (``ItemRemoved#2``).

The Pekko application of ``tests/integration/pekko`` writes ``ItemRemoved`` under the
manifest ``...ItemRemoved#2`` (a Jackson migration's version), which the journal reader puts
in ``version``. Here today's code knows an ``ItemRemoved`` v3 with a ``reason``; an upcaster
from v2 adds it. Folded through the upcaster, the carts are the states Pekko recovered.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
import pytest

import concursus_lab as cl

pytestmark = [pytest.mark.cassandra, pytest.mark.slow]

carts = cl.EventTypes("ShoppingCart")


@carts.event(name="ItemAdded")
class ItemAdded:
    itemId: str
    quantity: int
    at: dt.datetime
    note: str


@carts.event(name="ItemRemoved", version="3")
class ItemRemoved:
    itemId: str
    at: dt.datetime
    reason: str


@carts.event(name="CheckedOut")
class CheckedOut:
    at: dt.datetime


carts.upcast(("ItemRemoved", "2"), to=ItemRemoved, add={"reason": "not said"})


def cart_state(state: dict | None, event: Any) -> dict:
    """Cart.java's event handler, in Python (a removal's reason aside)."""
    state = state or {"items": {}, "checkedOut": False, "events": 0}
    items = dict(state["items"])
    match event:
        case ItemAdded(itemId=item, quantity=quantity):
            items[item] = items.get(item, 0) + quantity
        case ItemRemoved(itemId=item, reason="not said"):
            items.pop(item, None)
    checked_out = state["checkedOut"] or isinstance(event, CheckedOut)
    return {"items": items, "checkedOut": checked_out, "events": state["events"] + 1}


def test_a_pekko_manifest_s_version_is_upcast_and_folds_to_pekko_s_states(pekko_journal):
    with cl.open(pekko_journal.url, event_time="at") as journal:
        events = journal.events("ShoppingCart")
    removed = events.filter(name="ItemRemoved")
    assert removed.height > 0 and removed["version"].unique().to_list() == ["2"]
    result = cl.state_at(events, cart_state, types=carts)
    assert result.counts["upcast"] == removed.height and result.counts["undecodable"] == 0
    for entity, state in result.states.items():
        assert state == pekko_journal.states[f"ShoppingCart|{entity}"], entity
    assert len(result.states) == 4
    history = cl.history(events, removed["aggregate_id"][0], types=carts)
    upcast = history.filter(pl.col("stored").is_not_null())
    assert upcast["version"].unique().to_list() == ["3"]
    assert upcast["stored"].struct.field("version").unique().to_list() == ["2"]
    assert all('"reason":"not said"' in p for p in upcast["parameters"])
