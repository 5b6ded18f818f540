"""A parcel history written over three versions of one event, and its twin in the newest.

``receivedAtDepot`` was written as v0 ``{"depot"}``, then v1 ``{"depotId"}`` (a field
renamed), and is v2 ``{"depotId", "priority"}`` now (a field added, 0 when absent); an old
``transferred`` event ``{"toDepot", "truck"}`` is now two events, ``receivedAtDepot`` (priority
1) and ``loadedOntoTruck`` (a split). :func:`histories` writes the same parcels twice: as
stored over the years (old writers first, duplicates, late arrivals) and as the newest
version only; folded with :func:`where`, both must give the same states.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random

import orjson
import polars as pl

import concursus_lab as cl

START = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def declare(
    received_v0: dict | None = None, transferred: dict | None = None, *, split: bool = True
) -> cl.EventTypes:
    """The parcel's event types now, with the upcasters of their older versions;
    ``received_v0`` and ``transferred`` declare those two upcasters otherwise (the keywords
    of ``upcast``), as tests of broken upcasters need; without ``split`` there is no
    ``transferred`` upcaster (its rows are then of no declared type)."""
    parcel = cl.EventTypes("parcel")

    @parcel.event(version="2")
    class ReceivedAtDepot:
        depotId: str
        priority: int

    @parcel.event
    class LoadedOntoTruck:
        truckId: str

    @parcel.terminal
    class Delivered:
        destinationId: str

    parcel.upcast(("receivedAtDepot", "1"), to=ReceivedAtDepot, add={"priority": 0})
    v0 = received_v0 or {"rename": {"depot": "depotId"}}
    parcel.upcast(("receivedAtDepot", "0"), to=("receivedAtDepot", "1"), **v0)
    if split:
        into = transferred or {"columns": transferred_columns}
        parcel.upcast("transferred", to=[ReceivedAtDepot, LoadedOntoTruck], **into)
    return parcel


def transferred_columns(p: pl.DataFrame) -> list[pl.DataFrame]:
    """transferred v0 split into receivedAtDepot v2 (priority 1) and loadedOntoTruck."""
    return [
        p.select(pl.col("toDepot").alias("depotId"), pl.lit(1).alias("priority")),
        p.select(pl.col("truck").alias("truckId")),
    ]


@dataclasses.dataclass(frozen=True)
class Where:
    status: str
    depot: str | None = None
    priority: int = 0
    truck: str | None = None
    moves: int = 0


def where(state: Where | None, event: object) -> Where:
    """Where a parcel is (a reducer over the newest versions only)."""
    state = state or Where("new")
    kind = type(event).__name__
    if kind == "ReceivedAtDepot":
        return Where("at depot", event.depotId, event.priority, None, state.moves + 1)
    if kind == "LoadedOntoTruck":
        return dataclasses.replace(state, status="on truck", truck=event.truckId)
    if kind == "Delivered":
        return dataclasses.replace(state, status="delivered", truck=None)
    raise TypeError(f"not a parcel event now: {event!r}")


def histories(parcels: int = 60, seed: int = 7) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(as stored, as the newest version only): the same parcels' events."""
    rng = random.Random(seed)
    stored: list[dict] = []
    newest: list[dict] = []
    for p in range(parcels):
        mine, twin = _parcel(rng, f"p{p:03d}", p)
        if rng.random() < 0.3:  # the parcel's first event delivered again, an hour later
            later = {"processing_timestamp": mine[0]["processing_timestamp"] + HOUR}
            mine.append(mine[0] | later)
            twin.append(twin[0] | later)
        stored += mine
        newest += twin
    return _frame(stored), _frame(newest)


HOUR = dt.timedelta(hours=1)


def _parcel(rng: random.Random, pid: str, p: int) -> tuple[list[dict], list[dict]]:
    mine: list[dict] = []
    twin: list[dict] = []
    at = START + dt.timedelta(minutes=rng.randrange(0, 600))
    for step in range(rng.randrange(2, 7)):
        at += dt.timedelta(minutes=rng.randrange(1, 90))
        seen = at + dt.timedelta(minutes=rng.choice([0, 0, 0, 5, 400]))  # some arrive late
        era = min(2, int((seen - START) / (8 * HOUR)))  # the version its writer wrote
        depot, truck = f"D{rng.randrange(5)}", f"T{rng.randrange(4)}"
        row = {"aggregate_id": pid, "event_timestamp": at, "processing_timestamp": seen}
        if era == 0 and step > 0 and rng.random() < 0.4:
            split = {"name": "transferred", "version": "0"}
            mine.append(row | split | {"p": {"toDepot": depot, "truck": truck}})
            twin.append(row | _received(depot, 1))
            twin.append(row | _loaded(truck) | {"stream_id": "~"})  # right after the first
        elif step == 0 or rng.random() < 0.5:
            old = [{"depot": depot}, {"depotId": depot}, {"depotId": depot, "priority": 2}]
            mine.append(row | {"name": "receivedAtDepot", "version": str(era), "p": old[era]})
            twin.append(row | _received(depot, 2 if era == 2 else 0))
        else:
            mine.append(row | _loaded(truck))
            twin.append(row | _loaded(truck))
    if rng.random() < 0.5:
        at += dt.timedelta(minutes=30)
        done = {"name": "delivered", "version": "0", "p": {"destinationId": f"x{p}"}}
        last = {"aggregate_id": pid, "event_timestamp": at, "processing_timestamp": at} | done
        mine.append(last)
        twin.append(last)
    return mine, twin


def _received(depot: str, priority: int) -> dict:
    params = {"depotId": depot, "priority": priority}
    return {"name": "receivedAtDepot", "version": "2", "p": params}


def _loaded(truck: str) -> dict:
    return {"name": "loadedOntoTruck", "version": "0", "p": {"truckId": truck}}


def _frame(rows: list[dict]) -> pl.DataFrame:
    time = pl.Datetime("us", "UTC")
    frame = pl.DataFrame(
        {
            "aggregate_type": ["parcel"] * len(rows),
            "aggregate_id": [r["aggregate_id"] for r in rows],
            "event_timestamp": pl.Series([r["event_timestamp"] for r in rows], dtype=time),
            "stream_id": [r.get("stream_id", "") for r in rows],
            "processing_id": pl.Series([None] * len(rows), dtype=pl.String),
            "processing_timestamp": pl.Series(
                [r["processing_timestamp"] for r in rows], dtype=time
            ),
            "name": [r["name"] for r in rows],
            "version": [r["version"] for r in rows],
            "parameters": [
                orjson.dumps(r["p"], option=orjson.OPT_SORT_KEYS).decode() for r in rows
            ],
            "characteristics": pl.Series(
                [2 if r["name"] == "delivered" else 0 for r in rows], dtype=pl.Int32
            ),
        }
    )
    return cl.frame.validate(frame)
