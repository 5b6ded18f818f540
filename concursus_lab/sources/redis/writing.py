"""Writing a frame as Concursus's ``RedisEventLog`` and ``RedisAggregateCatalogue`` do.

Each event becomes one member, its ``EventJson`` text (the flat layout), of the set
``<aggregateType>:<aggregateId>``; the catalogue set named after the aggregate type gains the
aggregates of initial events and loses those of terminal ones
(:func:`~concursus_lab.sources.catalogue.catalogue_changes`). Writes go in ``MULTI``/``EXEC``
transactions of :data:`EVENTS_PER_TRANSACTION` events, so each transaction is stored whole or
not at all, and a failure part-way is reported with the exact count of what is stored.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from concursus_lab.common.optional import require
from concursus_lab.common.progress import bar as progress_bar
from concursus_lab.exceptions import IncompleteWrite
from concursus_lab.frame.schema import INITIAL, for_writing
from concursus_lab.sources import concursus_json_write
from concursus_lab.sources.catalogue import catalogue_changes
from concursus_lab.sources.stamping import stamped

EVENTS_PER_TRANSACTION = 5_000


def append(client: Any, url: str, frame: pl.DataFrame, *, progress: bool | None) -> int:
    """Validate ``frame`` and write it; returns how many events were written."""
    redis = require("redis", needed_by="Redis sources")

    frame = stamped(for_writing(frame, milliseconds="Concursus JSON"), "Redis")
    if frame.height == 0:
        return 0
    members = concursus_json_write.encode(frame, "flat").to_list()
    keys = (frame["aggregate_type"] + ":" + frame["aggregate_id"]).to_list()
    changes = catalogue_changes(frame)
    written = 0
    with progress_bar(progress, total=frame.height, what="writing", unit="events") as bar:
        try:
            for lo in range(0, frame.height, EVENTS_PER_TRANSACTION):
                hi = min(lo + EVENTS_PER_TRANSACTION, frame.height)
                pipe = client.pipeline(transaction=True)
                for key, member in zip(keys[lo:hi], members[lo:hi], strict=True):
                    pipe.sadd(key, member)
                pipe.execute()
                written = hi
                bar.update(hi - lo)
            pipe = client.pipeline(transaction=True)
            for aggregate_type, aggregate_id, change in changes.iter_rows():
                if change == INITIAL:
                    pipe.sadd(aggregate_type, aggregate_id)
                else:
                    pipe.srem(aggregate_type, aggregate_id)
            pipe.execute()
        except redis.RedisError as exc:
            catalogue = "" if written < frame.height else " (all events, but not the catalogue)"
            raise IncompleteWrite(
                f"{written:,} of {frame.height:,} events were written to {url}{catalogue} "
                f"({type(exc).__name__}: {exc}). `.unwritten` holds the others; appending them "
                "again, or the whole frame, is safe: a set keeps one copy of each delivery.",
                written=written,
                unwritten=frame.slice(written),
            ) from exc
    return frame.height
