"""A live idempotency filter held against a history: what each says the filter remembers.

A replay (:func:`~concursus_lab.delivery.idempotency.idempotency`) knows, for any moment, which
identities the filter should hold: those stored (a first delivery, or a repeat that slipped
through) less than ``ttl`` before it. A live filter's map, read at that moment
(``cl.open("hazelcast://...").entries()``), says which it does hold. :func:`compare` lines the
two up, one row per identity, with a ``status``:

``held``
    the history and the map agree: the filter holds it;
``missing``
    the history says it should still be held, the map has none: the entry was evicted early
    (a map under its size limit forgets before the TTL), or the filter never saw the delivery,
    so a repeat now would pass;
``not in history``
    the map holds an identity the history lacks: the filter let through an event the history
    never stored (lost, or not written yet);
``held past expiry``
    both know it, but by the history it should be gone: the map's TTL is longer than the one
    replayed, or the clocks of the store and the map differ.

Identities neither holds (expired on both sides) are not listed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

from concursus_lab.common.text import plural
from concursus_lab.frame.identity import IDENTITY

STATUSES: tuple[str, ...] = ("held", "missing", "not in history", "held past expiry")
STATUS = pl.Enum(list(STATUSES))


@dataclass(frozen=True)
class FilterComparison:
    """What :func:`compare` found; prints as a short deterministic text.

    Attributes
    ----------
    identities
        One row per identity held by either side: the identity, ``status`` (an Enum of
        :data:`STATUSES`), ``stored_at`` and ``expires_at`` by the history, and
        ``live_stored_at`` and ``live_expires_at`` by the map.
    at
        The moment compared (when the map was read).
    ttl
        The TTL the history was replayed with.
    """

    identities: pl.DataFrame
    at: dt.datetime
    ttl: dt.timedelta | None

    @property
    def counts(self) -> dict[str, int]:
        """How many identities had each status."""
        found = dict(self.identities["status"].value_counts().iter_rows())
        return {name: found.get(name, 0) for name in STATUSES}

    def __str__(self) -> str:
        c = self.counts
        agree = "agree" if c["held"] == self.identities.height else "disagree"
        return (
            f"Live filter vs history at {self.at:%Y-%m-%d %H:%M:%S} UTC: they {agree}; "
            f"{plural(c['held'], 'identity', 'identities')} held, {c['missing']:,} missing from "
            f"the map, {c['not in history']:,} not in the history, {c['held past expiry']:,} "
            f"held past expiry."
        )

    def _repr_markdown_(self) -> str:
        return str(self)


def held(deliveries: pl.DataFrame, ttl: dt.timedelta | None, at: dt.datetime) -> pl.DataFrame:
    """The identities a filter holds at ``at``, by a replay's ``deliveries`` (with their
    ``outcome``): each one's last storing delivery at or before ``at`` and when it expires."""
    stored = (
        deliveries.filter((pl.col("outcome") != "stopped") & (pl.col("processing_timestamp") <= at))
        .group_by(IDENTITY)
        .agg(pl.col("processing_timestamp").max().alias("stored_at"))
    )
    if ttl is None:
        return stored.with_columns(
            pl.lit(None, dtype=stored["stored_at"].dtype).alias("expires_at")
        )
    stored = stored.with_columns((pl.col("stored_at") + ttl).alias("expires_at"))
    return stored.filter(pl.col("expires_at") > at)


def compare(
    deliveries: pl.DataFrame, ttl: dt.timedelta | None, entries: pl.DataFrame, at: dt.datetime
) -> FilterComparison:
    """Line up a replay's ``deliveries`` with a live map's ``entries`` at ``at``."""
    expected = held(deliveries, ttl, at)
    live = entries.select(
        *IDENTITY,
        pl.col("stored_at").alias("live_stored_at"),
        pl.col("expires_at").alias("live_expires_at"),
    )
    known = deliveries.select(IDENTITY).unique().with_columns(pl.lit(True).alias("_known"))
    both = expected.join(live, on=list(IDENTITY), how="full", coalesce=True, nulls_equal=True)
    both = both.join(known, on=list(IDENTITY), how="left", nulls_equal=True)
    status = (
        pl.when(pl.col("stored_at").is_not_null() & pl.col("live_stored_at").is_not_null())
        .then(pl.lit("held"))
        .when(pl.col("stored_at").is_not_null())
        .then(pl.lit("missing"))
        .when(pl.col("_known").is_null())
        .then(pl.lit("not in history"))
        .otherwise(pl.lit("held past expiry"))
    )
    identities = (
        both.with_columns(status.cast(STATUS).alias("status"))
        .select(*IDENTITY, "status", "stored_at", "expires_at", "live_stored_at", "live_expires_at")
        .sort(IDENTITY)
    )
    return FilterComparison(identities, at, ttl)
