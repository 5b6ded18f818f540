"""A Redis database that Java Concursus's Redis module writes to, as a source.

Concursus's ``concursus-redis`` keeps, for each aggregate, a set under the key
``<aggregateType>:<aggregateId>`` whose members are the JSON of its events (``EventJson``: the
flat layout, each stamped with a time-based ``processingId`` when it is logged), and a
catalogue: a set per aggregate type, named after it, of the aggregates begun and not ended.
:class:`RedisSource` reads and writes exactly that (see :mod:`.reading` for how a read walks
the keys). Redis keeps no time of its own, so an event's processing time is the time in its
``processingId``: a member without a time-based one cannot be placed on that axis and goes
to :attr:`~RedisSource.quarantine`, as does anything that does not decode.

>>> import concursus_lab as cl
>>> source = cl.open("redis://127.0.0.1:6379/0")        # doctest: +SKIP
>>> source.events("parcel", ["parcel-0000321"])          # doctest: +SKIP
"""

from __future__ import annotations

import os
import urllib.parse
import weakref
from typing import Any

import numpy as np
import polars as pl

from concursus_lab.common.optional import require
from concursus_lab.exceptions import (
    IncompleteRead,
    SourceError,
    SourceUnavailable,
)
from concursus_lab.frame.schema import empty
from concursus_lab.sources import concursus_json
from concursus_lab.sources.base import Source
from concursus_lab.sources.quarantine import warn_quarantined
from concursus_lab.sources.query import Query
from concursus_lab.sources.redis import writing
from concursus_lab.sources.redis.reading import Walk, event_key, glob_escape
from concursus_lab.sources.stamping import NO_TIME, untimed

QUARANTINE_SCHEMA = pl.Schema({"key": pl.String, "raw": pl.Binary, "reason": pl.String})
ENVIRONMENT = {
    "username": "CONCURSUS_LAB_REDIS_USERNAME",
    "password": "CONCURSUS_LAB_REDIS_PASSWORD",
}
_ELSEWHERE = "the event of another aggregate: its aggregateType:aggregateId is not this key"


def redis_py() -> Any:
    return require("redis", needed_by="Redis sources", extra="redis")


class RedisSource(Source):
    """Concursus's Redis layout in one database; open it with ``cl.open("redis://host/0")``.

    Parameters
    ----------
    host, port, db
        Where the server is, and which numbered database holds the events.
    tls
        Connect with TLS (``rediss://`` URLs do).
    timeout
        Seconds a read waits for a server that stopped answering before it raises
        :class:`~concursus_lab.exceptions.IncompleteRead` with what it had.

    The user name and password come from ``$CONCURSUS_LAB_REDIS_USERNAME`` and
    ``$CONCURSUS_LAB_REDIS_PASSWORD`` (or ``username=``/``password=``), never from the URL.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 6379,
        db: int = 0,
        *,
        tls: bool = False,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 60.0,
    ) -> None:
        redis = redis_py()
        self.url = f"{'rediss' if tls else 'redis'}://{host}:{port}/{db}"
        self._timeout = float(timeout)
        self._client = redis.Redis(
            host=host,
            port=port,
            db=db,
            ssl=tls,
            username=username or os.environ.get(ENVIRONMENT["username"]) or None,
            password=password or os.environ.get(ENVIRONMENT["password"]) or None,
            socket_timeout=30.0,
            socket_connect_timeout=10.0,
            # No silent retries: a read that lost its connection must know it, since a SCAN
            # cursor carried over to a restarted server skips keys (see .reading).
            retry=redis.retry.Retry(redis.backoff.NoBackoff(), 0),
        )
        self._quarantine = pl.DataFrame(schema=QUARANTINE_SCHEMA)
        try:
            self._client.ping()
        except redis.RedisError as exc:
            self._client.close()
            raise SourceUnavailable(
                f"cannot reach Redis at {self.url} ({type(exc).__name__}: {exc}). Is it "
                "running? Start a local one with `concursus-lab services start redis`."
            ) from exc
        self._finalizer = weakref.finalize(self, self._client.close)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisSource:
        """``redis://host:port/db`` (or ``rediss://`` for TLS); no query, no credentials."""
        parts = urllib.parse.urlsplit(url)
        if parts.password is not None or parts.username is not None:
            raise SourceError(
                f"credentials do not belong in a Redis URL ({parts.scheme}://{parts.hostname}"
                f"...): set ${ENVIRONMENT['username']} and ${ENVIRONMENT['password']}."
            )
        if parts.query:
            raise SourceError(
                f"a Redis URL takes no query ({parts.query!r}); pass options to cl.open as "
                "keywords, e.g. cl.open(url, timeout=30)."
            )
        path = parts.path.strip("/") or "0"
        if not path.isdigit():
            raise SourceError(
                f"the path of a Redis URL is the database number, e.g. redis://host:6379/0; "
                f"got {path!r}."
            )
        return cls(
            parts.hostname or "127.0.0.1",
            parts.port or 6379,
            int(path),
            tls=parts.scheme == "rediss",
            **options,
        )

    # -- reading -----------------------------------------------------------------------

    def _events(self, query: Query, progress: bool | None) -> pl.DataFrame:
        walk = Walk(self._client, *self._keys(query), self._timeout, progress)
        walk.run()
        frame, self._quarantine = _decode(walk.members, walk.owners)
        warn_quarantined(self._quarantine, "member(s)", self.url, stacklevel=4)
        result = query.apply(frame)
        if walk.missing:
            raise IncompleteRead(walk.incomplete_message(self.url), partial=result)
        return result

    def _keys(self, query: Query) -> tuple[str, list[str] | None]:
        """The SCAN pattern, or the exact keys when the type and ids are known."""
        if query.aggregate_ids is not None and query.aggregate_type is not None:
            return "", [event_key(query.aggregate_type, i) for i in query.aggregate_ids]
        if query.aggregate_type is not None:
            return f"{glob_escape(query.aggregate_type)}:*", None
        return "*:*", None  # the catalogue's sets are named without a colon

    @property
    def quarantine(self) -> pl.DataFrame:
        """Members the last read could not use: ``key``, ``raw`` (the member) and ``reason``."""
        return self._quarantine

    # -- writing -----------------------------------------------------------------------

    def append(self, frame: pl.DataFrame, *, progress: bool | None = None) -> int:
        """Validate ``frame`` and add each event to its aggregate's set, as Concursus does.

        Every event gets a time-based ``processing_id`` of its ``processing_timestamp`` when it
        has none (a Redis member keeps no other time); the catalogue gains the aggregates of
        initial events and loses those of terminal ones. Events are written in transactions of
        a few thousand (``MULTI``/``EXEC``); nothing is written when validation fails, and a
        failure part-way raises :class:`~concursus_lab.exceptions.IncompleteWrite` saying how
        many events are stored. An identical delivery appended again is the same set member.
        """
        return writing.append(self._client, self.url, frame, progress=progress)

    # -- describing --------------------------------------------------------------------

    def close(self) -> None:
        self._finalizer()

    def __repr__(self) -> str:
        return f"RedisSource({self.url!r})"


def _decode(members: list[bytes], owners: list[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Members -> canonical rows, and the quarantine of those that cannot be used."""
    if not members:
        return empty(), pl.DataFrame(schema=QUARANTINE_SCHEMA)
    rows, bad = concursus_json.decode(members, record_times=np.zeros(len(members), dtype=np.int64))
    keys = pl.Series("key", owners, dtype=pl.String)
    rows = rows.with_columns(keys.gather(rows["record"]).alias("_key"))
    timed = ~untimed(rows["processing_id"])
    at_home = pl.concat_str("aggregate_type", pl.lit(":"), "aggregate_id") == pl.col("_key")
    reason = (
        pl.when(~pl.lit(timed))
        .then(pl.lit(NO_TIME))
        .when(~at_home)
        .then(pl.lit(_ELSEWHERE))
        .otherwise(None)
    )
    why = (
        rows.select("record", reason.alias("reason"))
        .filter(pl.col("reason").is_not_null())
        .unique("record", keep="first", maintain_order=True)
    )
    bad = pl.concat([bad, why]).unique("record", keep="first").sort("record")
    kept = rows.filter(~pl.col("record").is_in(bad["record"].implode()))
    quarantine = bad.select(
        keys.gather(bad["record"]).alias("key"),
        pl.Series("raw", members, dtype=pl.Binary).gather(bad["record"]).alias("raw"),
        "reason",
    )
    return kept.drop("record", "_key"), quarantine
