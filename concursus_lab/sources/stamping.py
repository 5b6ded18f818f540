"""Processing ids for stores that keep no time of their own (Redis sets, RabbitMQ messages).

Where the only processing time a store keeps is the one inside a time-based ``processingId``,
every event written there needs one: :func:`stamped` makes one of the event's
``processing_timestamp`` when it has none, and refuses an id whose time is not that timestamp,
since a read would then return another time. Nothing is written when it refuses. A read from
such a store quarantines what has no such id (:func:`untimed`, with :data:`NO_TIME`): it cannot
be placed on the processing-time axis.
"""

from __future__ import annotations

import polars as pl

from concursus_lab.exceptions import SchemaError
from concursus_lab.frame.timeuuid import processing_time, time_uuids

NO_TIME = (
    "no time-based processingId: this store keeps no time of its own, so when this delivery "
    "was processed is unknown"
)


def untimed(processing_ids: pl.Series) -> pl.Series:
    """True where an id carries no processing time (missing, or not a time-based UUID)."""
    return processing_time(processing_ids).is_null()


def stamped(frame: pl.DataFrame, where: str) -> pl.DataFrame:
    """``frame`` with a time-based ``processing_id`` of its processing time on every event."""
    missing = frame["processing_id"].is_null()
    if missing.any():
        stamps = time_uuids(frame["processing_timestamp"])
        frame = frame.with_columns(
            pl.when(missing).then(stamps).otherwise(pl.col("processing_id")).alias("processing_id")
        )
    kept = processing_time(frame["processing_id"])
    wrong = (kept.is_null() | (kept != frame["processing_timestamp"])).arg_true()
    if wrong.len():
        row = wrong[0]
        raise SchemaError(
            f"{wrong.len():,} events cannot be written to {where}, which keeps no time but a "
            f"processingId's: row {row} has processing_id {frame['processing_id'][row]!r}, "
            f"whose time is not its processing_timestamp {frame['processing_timestamp'][row]}. "
            "Set processing_id to null to have one made from the processing time. Nothing was "
            "written."
        )
    return frame
