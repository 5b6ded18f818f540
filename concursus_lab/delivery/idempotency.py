"""An idempotency filter replayed over a history: which repeats it stops, which slip through.

Concursus's Hazelcast module filters repeated deliveries with a map of event identities
(``IdempotentEventFilter``): each delivery does ``putIfAbsent(identity, true)`` and goes on only
when the identity was absent. The map is configured with a time to live, so an identity is
forgotten ``ttl`` after it was put, and a repeat that arrives later passes as if it were new:
downstream processes the event twice. :func:`idempotency` replays the deliveries of a history
through that filter, in the order they arrived (:func:`~concursus_lab.frame.identity.by_delivery`),
with the processing time as the filter's clock, and says for every delivery:

``first``
    the identity was never seen: it passes;
``stopped``
    a repeat while its identity is still in the map: the filter stops it;
``slipped``
    a repeat after its entry expired: it passes, and is stored again from then on.

The rules, as Hazelcast applies them to Concursus's map: the identity is the event identity
(:data:`~concursus_lab.frame.identity.IDENTITY`); an entry put at ``t`` is gone from
``t + ttl`` on (a delivery at exactly ``t + ttl`` passes); a ``putIfAbsent`` that finds the
entry writes nothing, so a stopped repeat does not extend its entry's life. ``ttl=None`` is a map
that never forgets.

>>> import concursus_lab as cl
>>> replay = cl.idempotency(cl.sample.fixture("messy"), ttl="1m")
>>> replay.counts
{'first': 15, 'stopped': 1, 'slipped': 1}
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import polars as pl

from concursus_lab.common.text import plural
from concursus_lab.common.time import DurationLike, TimeLike, duration, to_timedelta, to_utc
from concursus_lab.delivery import live_filter
from concursus_lab.delivery.live_filter import FilterComparison
from concursus_lab.exceptions import SchemaError
from concursus_lab.frame.identity import IDENTITY, by_delivery
from concursus_lab.frame.schema import validate

#: What the filter did with each delivery, in the ``outcome`` column.
OUTCOMES: tuple[str, ...] = ("first", "stopped", "slipped")
OUTCOME = pl.Enum(list(OUTCOMES))
_FIRST, _STOPPED, _SLIPPED = range(3)


@dataclass(frozen=True)
class IdempotencyReplay:
    """What :func:`idempotency` found; prints as a short deterministic text.

    Attributes
    ----------
    deliveries
        Every delivery in arrival order: the identity, ``processing_timestamp``, ``name``,
        ``outcome`` (an Enum of :data:`OUTCOMES`) and ``since_stored``: for a repeat, how long
        after its identity was last stored it arrived (null for a first delivery).
    ttl
        The time to live replayed (None: entries never expire).
    longest_repeat
        The longest time from an identity's first delivery to its last one: a TTL longer
        than this would have stopped every repeat. None when nothing repeats.
    """

    deliveries: pl.DataFrame
    ttl: dt.timedelta | None
    longest_repeat: dt.timedelta | None

    @property
    def counts(self) -> dict[str, int]:
        """How many deliveries had each outcome."""
        found = dict(self.deliveries["outcome"].value_counts().iter_rows())
        return {name: found.get(name, 0) for name in OUTCOMES}

    @property
    def slipped(self) -> pl.DataFrame:
        """The repeats that passed the filter: events downstream processed more than once."""
        return self.deliveries.filter(pl.col("outcome") == "slipped")

    def by_ttl(self, ttls: Iterable[DurationLike]) -> pl.DataFrame:
        """The same replay for each of ``ttls``: ``ttl``, ``stopped`` and ``slipped`` counts,
        so a team can choose the TTL (``cl.plot.idempotency`` draws it)."""
        rows = []
        for ttl in ttls:
            limit = _positive(ttl)
            outcome = _outcomes(self.deliveries, limit)[0]
            rows.append(
                {
                    "ttl": limit,
                    "stopped": int((outcome == _STOPPED).sum()),
                    "slipped": int((outcome == _SLIPPED).sum()),
                }
            )
        schema = {"ttl": pl.Duration("us"), "stopped": pl.Int64, "slipped": pl.Int64}
        return pl.DataFrame(rows, schema=schema)

    def held(self, at: TimeLike) -> pl.DataFrame:
        """The identities the filter holds at ``at``: when each was last stored and when it
        expires (see :mod:`~concursus_lab.delivery.live_filter`)."""
        return live_filter.held(self.deliveries, self.ttl, to_utc(at, "at"))

    def compare(self, entries: pl.DataFrame, at: TimeLike | None = None) -> FilterComparison:
        """Hold this replay against a live filter's map, read as ``entries``
        (``cl.open("hazelcast://host:5701/<map>").entries()``).

        ``at`` is the moment compared: by default when the map was read (its ``read_at``).
        See :mod:`~concursus_lab.delivery.live_filter` for what each ``status`` means.
        """
        missing = {*IDENTITY, "stored_at", "expires_at"} - set(entries.columns)
        if missing:
            raise SchemaError(
                f"`entries` lacks {sorted(missing)}: pass what IdempotencyWindow.entries() "
                "returns."
            )
        if at is None:
            if "read_at" not in entries.columns or entries.is_empty():
                raise SchemaError("`entries` holds no read_at: pass at= (the moment it was read).")
            at = entries["read_at"].max()
        return live_filter.compare(self.deliveries, self.ttl, entries, to_utc(at, "at"))

    def __str__(self) -> str:
        c = self.counts
        repeats = c["stopped"] + c["slipped"]
        ttl = "no TTL" if self.ttl is None else f"a TTL of {duration(self.ttl)}"
        seen = plural(self.deliveries.height, "delivery", "deliveries")
        lines = [
            f"Idempotency filter with {ttl}: {seen}, {plural(repeats, 'repeat')}: "
            f"{c['stopped']:,} stopped, {c['slipped']:,} slipped through.",
        ]
        if self.longest_repeat is not None:
            lines.append(
                f"A TTL longer than {duration(self.longest_repeat)} stops every repeat "
                "(the longest time from an event's first delivery to its last)."
            )
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        return str(self).replace("\n", "  \n")


def idempotency(events: pl.DataFrame, ttl: DurationLike | None) -> IdempotencyReplay:
    """Replay ``events`` through Concursus's idempotency filter with time to live ``ttl``.

    Parameters
    ----------
    events
        A canonical frame with every delivery (read it with ``duplicates="keep"``).
    ttl
        How long the filter remembers an identity: a timedelta or a text like ``"10m"``;
        None for a map without expiry (Hazelcast's TTL of 0).

    Returns
    -------
    IdempotencyReplay
        See the module docstring for what each outcome means.
    """
    validate(events)
    limit = None if ttl is None else _positive(ttl)
    arrived = by_delivery(events).select(*IDENTITY, "processing_timestamp", "name")
    outcome, since = _outcomes(arrived, limit)
    deliveries = arrived.with_columns(
        pl.Series("outcome", np.asarray(OUTCOMES)[outcome], dtype=OUTCOME),
        pl.Series("since_stored", since, dtype=pl.Int64).cast(pl.Duration("us")),
    )
    spans = arrived.group_by(IDENTITY).agg(
        pl.len().alias("n"),
        (pl.col("processing_timestamp").max() - pl.col("processing_timestamp").min()).alias("s"),
    )
    longest = spans.filter(pl.col("n") > 1)["s"].max()
    return IdempotencyReplay(deliveries, limit, longest)  # type: ignore[arg-type]


def _positive(ttl: DurationLike) -> dt.timedelta:
    limit = to_timedelta(ttl, "ttl")
    if limit <= dt.timedelta(0):
        raise SchemaError(
            f"`ttl` must be longer than zero, got {ttl!r}. Hazelcast reads a TTL of 0 as "
            "'never expire': for that, pass ttl=None."
        )
    return limit


def _outcomes(arrived: pl.DataFrame, ttl: dt.timedelta | None) -> tuple[np.ndarray, list]:
    """Each delivery's outcome code and, for repeats, microseconds since its entry was stored.

    Deliveries that are alone in their identity are decided without Python; only repeated
    identities are walked, one delivery at a time, since each slip renews the entry.
    """
    n = arrived.height
    outcome = np.full(n, _FIRST, dtype=np.int8)
    since: list[int | None] = [None] * n
    times = arrived["processing_timestamp"].dt.epoch("us").to_numpy()
    groups = (
        arrived.with_row_index("_row")
        .group_by(IDENTITY, maintain_order=True)
        .agg(pl.col("_row"))
        .filter(pl.col("_row").list.len() > 1)["_row"]
    )
    limit = None if ttl is None else ttl // dt.timedelta(microseconds=1)
    for rows in groups.to_list():
        stored = times[rows[0]]
        for row in rows[1:]:
            since[row] = int(times[row] - stored)
            if limit is None or times[row] < stored + limit:
                outcome[row] = _STOPPED
            else:
                outcome[row] = _SLIPPED
                stored = times[row]
    return outcome, since
