"""Sample histories: parcels moving through depots, as in Concursus's own talk, honestly messy.

``parcels(n)`` simulates parcels received at a depot, loaded onto trucks, and delivered or
failed and retried the next day, then delivers the events the way real systems do:

* processing lag with a long tail: most events are logged within seconds, a depot whose
  intake scanner uploads in batches adds minutes, and drivers' phones that lose signal hold
  their events for hours;
* so events arrive out of order (a load logged before the receipt it follows);
* about 1% of events are delivered twice (a retried write), some of them hours later;
* one depot's scanner clock runs 90 seconds fast, so its events look processed before they
  happened (negative lateness);
* two stream ids: ``""`` for depot scanners, ``"driver-app"`` for the drivers' phones.

Everything is vectorised (10 million events need no Python loop per event) and repeatable
for a seed. ``parcel_types``, ``ParcelState`` and ``parcel_state`` are the domain's event
types, state and reducer, ready for ``cl.state_at(events, parcel_state, types=parcel_types)``.

``orders_export(n)`` is another shape altogether: a web shop's order events as its team
exports them (a wide table, naive local times to the minute, re-exports and one corrected
row), with ``order_types``, ``order_state`` and the mapping ``ORDERS`` that reads it
(``data/orders.csv`` is one such export; see docs/own-events.md).

>>> from concursus_lab import sample
>>> frame = sample.parcels(100, seed=1)
>>> frame.columns[:3]
['aggregate_type', 'aggregate_id', 'event_timestamp']
>>> sorted(frame["name"].unique())
['delivered', 'deliveryFailed', 'loadedOntoTruck', 'receivedAtDepot']
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from concursus_lab.common.time import to_utc
from concursus_lab.exceptions import SchemaError
from concursus_lab.frame.schema import COLUMNS, NEITHER, TERMINAL
from concursus_lab.frame.timeuuid import time_uuids
from concursus_lab.sample.orders import ORDERS, OrderState, order_state, order_types, orders_export
from concursus_lab.sample.parcels import (
    Delivered,
    DeliveryFailed,
    LoadedOntoTruck,
    ParcelState,
    ReceivedAtDepot,
    on_board,
    parcel_state,
    parcel_types,
)
from concursus_lab.sources.fixtures import FIXTURES, fixture

DEPOTS = ("Lewisham", "Croydon", "Hackney", "Camden", "Brixton", "Greenwich")
TRUCKS_PER_DEPOT = 4
EVENT_NAMES = ("receivedAtDepot", "loadedOntoTruck", "deliveryFailed", "delivered")
_RECEIVED, _LOADED, _FAILED, _DELIVERED = range(4)

_SECOND = 1_000_000
_MINUTE = 60 * _SECOND
_HOUR = 60 * _MINUTE
_DAY = 24 * _HOUR


def _check_share(name: str, value: object) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= 1:
        raise SchemaError(f"`{name}` must be a share between 0 and 1, got {value!r}.")


@dataclass(frozen=True)
class Messiness:
    """How messy ``parcels`` makes delivery; the defaults are what the sample data uses.

    Attributes
    ----------
    fast_clock_depot, clock_ahead:
        The depot whose scanner clock runs ahead, and by how much.
    batch_depot, batch_every:
        The depot whose intake scanner uploads in batches (adds up to ``batch_every`` of
        lag), while its loading scanner is live: quick loads overtake their receipts.
    offline_rate, offline_lag:
        Share of driver-app events held back while the phone has no signal, and the
        (min, max) of that extra lag.
    minutes_rate:
        Share of all events delayed by minutes (a busy pipeline).
    duplicate_rate, late_duplicate_rate:
        Share of events delivered a second time within a minute, and hours later.
    """

    fast_clock_depot: str = "Croydon"
    clock_ahead: dt.timedelta = dt.timedelta(seconds=90)
    batch_depot: str = "Hackney"
    batch_every: dt.timedelta = dt.timedelta(minutes=30)
    offline_rate: float = 0.06
    offline_lag: tuple[dt.timedelta, dt.timedelta] = (
        dt.timedelta(hours=1),
        dt.timedelta(hours=9),
    )
    minutes_rate: float = 0.03
    duplicate_rate: float = 0.009
    late_duplicate_rate: float = 0.001
    failure_rate: float = 0.12

    def __post_init__(self) -> None:
        """Every field checked, so that nothing is drawn from nonsense (a rate of 2)."""
        for name in ("fast_clock_depot", "batch_depot"):
            if getattr(self, name) not in DEPOTS:
                raise SchemaError(
                    f"`{name}` must be one of the sample's depots {DEPOTS}, got "
                    f"{getattr(self, name)!r}."
                )
        for name in ("clock_ahead", "batch_every"):
            if not isinstance(getattr(self, name), dt.timedelta):
                raise SchemaError(
                    f"`{name}` must be a datetime.timedelta, got {getattr(self, name)!r}."
                )
        lag = self.offline_lag
        if not (
            isinstance(lag, tuple)
            and len(lag) == 2
            and all(isinstance(x, dt.timedelta) for x in lag)
            and dt.timedelta(0) <= lag[0] <= lag[1]
        ):
            raise SchemaError(
                f"`offline_lag` must be a (min, max) pair of timedeltas with 0 <= min <= max, "
                f"got {lag!r}."
            )
        for name in (
            "offline_rate",
            "minutes_rate",
            "duplicate_rate",
            "late_duplicate_rate",
            "failure_rate",
        ):
            _check_share(name, getattr(self, name))
        _check_share(
            "duplicate_rate + late_duplicate_rate", self.duplicate_rate + self.late_duplicate_rate
        )


DEFAULT_MESSINESS = Messiness()


def parcels(
    n_parcels: int = 1_000,
    *,
    seed: int = 0,
    start: dt.datetime | str = "2026-03-02",
    days: float = 14,
    messiness: Messiness = DEFAULT_MESSINESS,
) -> pl.DataFrame:
    """A canonical event frame of ``n_parcels`` parcels' histories, in arrival order.

    About 3.3 events per parcel before duplicates. Parcels are received uniformly over
    ``days`` from ``start``; deliveries fail with ``messiness.failure_rate`` and are retried
    the next day, up to three attempts.

    Parameters
    ----------
    n_parcels
        How many parcels (aggregates).
    seed
        The same seed gives the same frame, byte for byte.
    start, days
        When the first parcels arrive, and over how many days.
    messiness
        How delivery is disturbed; see :class:`Messiness`.

    Every argument is checked first: a wrong one is a
    :class:`~concursus_lab.exceptions.SchemaError` naming it.
    """
    for name, value in (("n_parcels", n_parcels), ("seed", seed)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise SchemaError(f"`{name}` must be a non-negative int, got {value!r}.")
    if not isinstance(days, (int, float)) or isinstance(days, bool) or not 0 <= days < 1e6:
        raise SchemaError(f"`days` must be a number of days >= 0, got {days!r}.")
    if not isinstance(messiness, Messiness):
        raise SchemaError(
            f"`messiness` must be a cl.sample.Messiness(...), got {messiness!r}; e.g. "
            "Messiness(duplicate_rate=0.05)."
        )
    rng = np.random.default_rng(seed)
    origin = int(to_utc(start, "start").timestamp() * _SECOND)
    m = messiness
    n = n_parcels

    ev, depot = _lives(rng, n, origin, days, m.failure_rate)
    count = len(ev["parcel"])
    at_depot = np.where(ev["kind"] <= _LOADED, depot[ev["parcel"]], -1)
    driver_app = ev["kind"] >= _FAILED

    # processing lag: seconds for most, minutes for some, hours for phones offline
    lag = (rng.lognormal(np.log(1.5), 0.8, count) * _SECOND).astype(np.int64) + 50_000
    busy = rng.random(count) < m.minutes_rate
    lag[busy] += rng.integers(1 * _MINUTE, 15 * _MINUTE, busy.sum())
    batch = (ev["kind"] == _RECEIVED) & (at_depot == DEPOTS.index(m.batch_depot))
    batch_us = int(m.batch_every.total_seconds() * _SECOND)
    lag[batch] += batch_us - (ev["time"][batch] % batch_us)  # uploaded at the next batch
    offline = driver_app & (rng.random(count) < m.offline_rate)
    lo, hi = (int(x.total_seconds() * _SECOND) for x in m.offline_lag)
    lag[offline] += rng.integers(lo, hi, offline.sum())
    processed = ev["time"] + lag

    # the fast clock stamps events ahead of when they happened
    event_time = ev["time"].copy()
    fast = at_depot == DEPOTS.index(m.fast_clock_depot)
    event_time[fast] += int(m.clock_ahead.total_seconds() * _SECOND)

    # repeated deliveries: same event, logged again a little (or a lot) later
    repeat = rng.random(count) < m.duplicate_rate + m.late_duplicate_rate
    late_repeat = repeat & (
        rng.random(count)
        < m.late_duplicate_rate / max(m.duplicate_rate + m.late_duplicate_rate, 1e-12)
    )
    again = np.flatnonzero(repeat)
    redelivery = processed[again] + np.where(
        late_repeat[again],
        rng.integers(1 * _HOUR, 12 * _HOUR, len(again)),
        (rng.lognormal(np.log(20), 0.7, len(again)) * _SECOND).astype(np.int64),
    )
    rows = np.concatenate([np.arange(count), again])
    processed = np.concatenate([processed, redelivery])

    frame = pl.DataFrame(
        {
            "parcel": ev["parcel"][rows],
            "event_us": (event_time[rows] // 1000) * 1000,  # Cassandra keeps milliseconds
            "stream_id": np.where(driver_app[rows], "driver-app", ""),
            "processed_us": (processed // 1000) * 1000,
            "kind": ev["kind"][rows].astype(np.int8),
            "value": ev["value"][rows],
        }
    )
    frame = frame.sort("processed_us", "parcel", "kind", maintain_order=True)
    return _to_canonical(frame, seed)


def _lives(
    rng: np.random.Generator, n: int, origin: int, days: float, failure_rate: float
) -> tuple[dict, np.ndarray]:
    """What happens to ``n`` parcels: received, then up to three loads and attempts each.

    Returns the events (``parcel``, ``time``, ``kind``, ``value`` arrays) and each
    parcel's depot.
    """
    depot = rng.integers(0, len(DEPOTS), n)
    received = origin + (rng.random(n) * days * _DAY).astype(np.int64)
    parts = [_events(np.arange(n), received, _RECEIVED, depot)]

    # attempt k: loaded, then delivered or failed; a failure is retried the next day
    pending = rng.random(n) > 0.02  # 2% are still waiting at the depot
    ready = received.copy()
    for attempt in range(3):
        idx = np.flatnonzero(pending)
        if attempt == 0:
            wait = np.where(
                rng.random(len(idx)) < 0.25,
                rng.integers(3 * _MINUTE, 40 * _MINUTE, len(idx)),  # straight onto a truck
                rng.integers(1 * _HOUR, 8 * _HOUR, len(idx)),
            )
        else:
            wait = rng.integers(14 * _HOUR, 30 * _HOUR, len(idx))  # the next day
        loaded = ready[idx] + wait
        truck = depot[idx] * TRUCKS_PER_DEPOT + rng.integers(0, TRUCKS_PER_DEPOT, len(idx))
        parts.append(_events(idx, loaded, _LOADED, truck))
        outcome = loaded + rng.integers(20 * _MINUTE, 6 * _HOUR, len(idx))
        failed = rng.random(len(idx)) < failure_rate
        parts.append(_events(idx[failed], outcome[failed], _FAILED, np.zeros(failed.sum(), int)))
        ok = ~failed
        destination = rng.integers(0, 100_000, ok.sum())
        parts.append(_events(idx[ok], outcome[ok], _DELIVERED, destination))
        pending = np.zeros(n, dtype=bool)
        pending[idx[failed]] = True
        ready[idx[failed]] = outcome[failed]

    ev = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return ev, depot


def _events(parcel: np.ndarray, time: np.ndarray, kind: int, value: np.ndarray) -> dict:
    return {
        "parcel": np.asarray(parcel, dtype=np.int64),
        "time": np.asarray(time, dtype=np.int64),
        "kind": np.full(len(parcel), kind, dtype=np.int8),
        "value": np.asarray(value, dtype=np.int64),
    }


def _to_canonical(frame: pl.DataFrame, seed: int) -> pl.DataFrame:
    depots = pl.Series(DEPOTS)
    trucks = pl.Series(
        [f"{d[:3].upper()}-{k + 1}" for d in DEPOTS for k in range(TRUCKS_PER_DEPOT)]
    )
    names = pl.Series(EVENT_NAMES)
    kind = pl.col("kind")

    def obj(key: str, text: pl.Expr) -> pl.Expr:
        return pl.concat_str([pl.lit(f'{{"{key}":"'), text, pl.lit('"}')])

    depot_text = depots.gather(frame["value"].clip(0, len(DEPOTS) - 1))
    truck_text = trucks.gather(frame["value"].clip(0, len(trucks) - 1))
    dest_text = frame["value"].cast(pl.String).str.zfill(5)
    processed = frame["processed_us"].cast(pl.Datetime("us", "UTC"))
    out = frame.with_columns(
        aggregate_type=pl.lit("parcel"),
        aggregate_id=pl.concat_str(
            [pl.lit("parcel-"), pl.col("parcel").cast(pl.String).str.zfill(7)]
        ),
        event_timestamp=pl.col("event_us").cast(pl.Datetime("us", "UTC")),
        processing_id=time_uuids(processed, seed=seed),
        processing_timestamp=processed,
        name=names.gather(frame["kind"].cast(pl.Int64)),
        version=pl.lit("0"),
        parameters=pl.when(kind == _RECEIVED)
        .then(obj("depotId", pl.lit(depot_text)))
        .when(kind == _LOADED)
        .then(obj("truckId", pl.lit(truck_text)))
        .when(kind == _DELIVERED)
        .then(obj("destinationId", pl.concat_str([pl.lit("dest-"), pl.lit(dest_text)])))
        .otherwise(pl.lit("{}")),
        characteristics=pl.when(kind == _DELIVERED)
        .then(pl.lit(TERMINAL, pl.Int32))
        .otherwise(pl.lit(NEITHER, pl.Int32)),
    )
    return out.select(COLUMNS)


def write(path: str | Path, n_parcels: int = 1_000, *, seed: int = 0, **options) -> Path:
    """Generate ``parcels(n_parcels, seed=...)`` and append it to a new local store at ``path``."""
    from concursus_lab.sources import open_history as open_source

    store = open_source(str(path), create=True)
    store.append(parcels(n_parcels, seed=seed, **options))
    return Path(path)


__all__ = [
    "FIXTURES",
    "ORDERS",
    "Delivered",
    "DeliveryFailed",
    "LoadedOntoTruck",
    "Messiness",
    "OrderState",
    "ParcelState",
    "ReceivedAtDepot",
    "fixture",
    "on_board",
    "order_state",
    "order_types",
    "orders_export",
    "parcel_state",
    "parcel_types",
    "parcels",
    "write",
]
