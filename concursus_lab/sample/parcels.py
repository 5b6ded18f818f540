"""The sample parcels' event types, their state, and a reducer: ready for ``cl.state_at``.

The parcel domain declares no initial event type (a parcel exists once anything happens
to it), so its reducer sees every event, starting from None:

>>> import concursus_lab as cl
>>> from concursus_lab.sample import ParcelState, parcel_state, parcel_types
>>> parcel_types
EventTypes('parcel')
  event     receivedAtDepot  v0  (depotId: str)
  event     loadedOntoTruck  v0  (truckId: str)
  event     deliveryFailed   v0  ()
  terminal  delivered        v0  (destinationId: str)
>>> states = cl.state_at(cl.sample.parcels(3, seed=1), parcel_state, types=parcel_types)
>>> print(*states.frame.columns)
aggregate_id status depot truck attempts destination events_applied last_event_timestamp
>>> states.frame.height
3
"""

from __future__ import annotations

from dataclasses import dataclass

from concursus_lab.events.types import EventTypes

parcel_types = EventTypes("parcel")


@parcel_types.event
class ReceivedAtDepot:
    """A depot scanned the parcel in."""

    depotId: str


@parcel_types.event
class LoadedOntoTruck:
    """The parcel went onto a delivery truck."""

    truckId: str


@parcel_types.event
class DeliveryFailed:
    """The driver could not deliver; the parcel goes back to the depot and is retried."""


@parcel_types.terminal
class Delivered:
    """The parcel reached its destination."""

    destinationId: str


@dataclass(frozen=True, slots=True)
class ParcelState:
    """Where a parcel is: ``status`` is "at depot", "on truck", "failed" or "delivered".

    Slotted: an answer keeps one per parcel (80 bytes each instead of 120)."""

    status: str
    depot: str | None = None
    truck: str | None = None
    attempts: int = 0
    destination: str | None = None


def parcel_state(state: ParcelState | None, event: object) -> ParcelState:
    """Fold one parcel event into the parcel's state (a plain reducer)."""
    if state is None:
        state = ParcelState("new")
    match event:
        case ReceivedAtDepot(depotId=depot):
            return ParcelState("at depot", depot, None, state.attempts, None)
        case LoadedOntoTruck(truckId=truck):
            return ParcelState("on truck", state.depot, truck, state.attempts + 1, None)
        case DeliveryFailed():
            return ParcelState("failed", state.depot, state.truck, state.attempts, None)
        case Delivered(destinationId=destination):
            return ParcelState("delivered", state.depot, state.truck, state.attempts, destination)
    raise TypeError(f"not a parcel event: {event!r}")


def on_board(count: int, event: object) -> int:
    """A truck's load: +1 for each parcel loaded onto it, -1 when one is delivered or fails.

    For a fold keyed by truck, ``cl.fold(on_board, types=parcel_types, key="truckId",
    initial=0)``: a delivery carries no truck, so it counts for the one its parcel was
    loaded onto last.
    """
    match event:
        case LoadedOntoTruck():
            return count + 1
        case Delivered() | DeliveryFailed():
            return count - 1
    return count
