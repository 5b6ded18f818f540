"""A live idempotency filter: the Hazelcast map of Concursus's ``IdempotentEventFilter``.

``cl.open("hazelcast://host:5701/<map>")`` opens the map a running filter keeps (Concursus
calls it the *event window*): one entry per event identity the filter let through, put with
``putIfAbsent`` and forgotten after the map's time to live. :meth:`IdempotencyWindow.entries`
reads it as a frame: the identity in the canonical frame's columns, when Hazelcast stored the
entry, when it expires and its TTL. Keys that are not Concursus's ``SerializableEventIdentity``
go to :attr:`~IdempotencyWindow.quarantine`, counted and shown, never dropped silently.
:meth:`~IdempotencyWindow.offer` does what the filter does with a delivery, byte for byte, so
a history can be pushed through the live map; ``cl.idempotency(...).compare(entries)`` says
what a history and a live filter disagree on.

>>> import concursus_lab as cl
>>> window = cl.open("hazelcast://127.0.0.1:5701/eventWindow")      # doctest: +SKIP
>>> window.entries()                                                 # doctest: +SKIP

The client is hazelcast-python-client (``pip install 'concursus-lab[hazelcast]'``); the map's
keys are Java serialization, which that client leaves to a serializer of ours
(:mod:`.keys`), registered with its public ``custom_serializers`` option.
"""

from __future__ import annotations

import datetime as dt
import socket
import threading
import urllib.parse
import weakref
from collections.abc import Iterator
from typing import Any

import polars as pl

from concursus_lab.common import progress as progress_bars
from concursus_lab.common.optional import require
from concursus_lab.exceptions import (
    IncompleteRead,
    IncompleteWrite,
    SourceError,
    SourceUnavailable,
)
from concursus_lab.frame.identity import IDENTITY, by_delivery
from concursus_lab.frame.schema import TIME, validate
from concursus_lab.sources.hazelcast.java_stream import JavaStreamError
from concursus_lab.sources.hazelcast.keys import JavaKey, StoredKey, custom_serializers
from concursus_lab.sources.quarantine import warn_quarantined

ENTRY_SCHEMA = pl.Schema(
    {
        "aggregate_type": pl.String,
        "aggregate_id": pl.String,
        "event_timestamp": TIME,
        "stream_id": pl.String,
        "stored_at": TIME,
        "expires_at": TIME,
        "ttl": pl.Duration("us"),
        "read_at": TIME,
    }
)
"""What :meth:`IdempotencyWindow.entries` returns. ``stored_at`` and ``expires_at`` are
Hazelcast's, to the second (it keeps entry times in seconds); ``expires_at`` and ``ttl`` are
null for an entry that never expires; ``read_at`` is when the read finished (the same on every
row)."""
QUARANTINE_SCHEMA = pl.Schema({"key": pl.Binary, "reason": pl.String})
BATCH = 1_000
"""Entry views asked for at once (each is one request; they travel together)."""
_NEVER = 1 << 62  # Hazelcast's "no expiry" is Long.MAX_VALUE milliseconds
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def hazelcast_client() -> Any:
    return require(
        "hazelcast", "hazelcast.serialization.api", needed_by="Hazelcast windows", extra="hazelcast"
    )


class IdempotencyWindow:
    """The map of a live Concursus idempotency filter on a Hazelcast cluster.

    Parameters
    ----------
    address
        ``host:port`` of a member.
    map_name
        The filter's map (``eventWindowName`` in Concursus).
    cluster
        The cluster name (Hazelcast's default, ``dev``, unless the cluster sets another).
    timeout
        Seconds to wait for the cluster, and for each request.
    """

    def __init__(self, address: str, map_name: str, *, cluster: str = "dev", timeout: float = 10.0):
        if not map_name:
            raise SourceError(
                f"no map named in hazelcast://{address}/: give the filter's map, e.g. "
                f"hazelcast://{address}/eventWindow."
            )
        self.address, self.map_name, self.cluster, self.timeout = (
            address,
            map_name,
            cluster,
            timeout,
        )
        self.url = f"hazelcast://{address}/{map_name}"
        self._client: Any = None
        self._link = _Link()
        self._quarantine = pl.DataFrame(schema=QUARANTINE_SCHEMA)
        self._ttls: pl.Series | None = None

    @classmethod
    def from_url(cls, url: str, **options: Any) -> IdempotencyWindow:
        """``hazelcast://host:port/<map>?cluster=<name>`` (port 5701 when left out)."""
        parts = urllib.parse.urlsplit(url)
        query = dict(urllib.parse.parse_qsl(parts.query))
        unknown = set(query) - {"cluster"}
        if unknown:
            raise SourceError(f"unknown option(s) {sorted(unknown)} in {url!r}; only ?cluster=.")
        if "cluster" in query:
            options.setdefault("cluster", query["cluster"])
        address = f"{parts.hostname or '127.0.0.1'}:{parts.port or 5701}"
        return cls(address, parts.path.strip("/"), **options)

    def __repr__(self) -> str:
        return f"IdempotencyWindow({self.url!r}, cluster={self.cluster!r})"

    # --- the connection -------------------------------------------------------------------
    def _map(self) -> Any:
        if self._client is not None and self._link.lost:
            self.close()  # the member went away: connect again, or say it is not there
        if self._client is None:
            self._client, self._link = self._connect()
        return self._client.get_map(self.map_name)

    def _connect(self) -> tuple[Any, _Link]:
        hazelcast = hazelcast_client()
        try:  # refused at once when nothing listens, rather than retried for `timeout`
            socket.create_connection(_host_port(self.address), timeout=self.timeout).close()
        except OSError as exc:
            raise SourceUnavailable(
                f"nothing answers at {self.address} ({exc}): is the Hazelcast member running? "
                f"{_START}, or check the address."
            ) from exc
        link = _Link()
        try:
            client = hazelcast.HazelcastClient(
                cluster_members=[self.address],
                cluster_name=self.cluster,
                cluster_connect_timeout=self.timeout,
                invocation_timeout=self.timeout,
                custom_serializers=custom_serializers(hazelcast.serialization.api.StreamSerializer),
                lifecycle_listeners=[link.on_state],
            )
        except hazelcast.errors.HazelcastError as exc:
            raise SourceUnavailable(
                f"no Hazelcast cluster {self.cluster!r} answered at {self.address} within "
                f"{self.timeout:g} s ({type(exc).__name__}: {exc}). {_START}, or check the "
                f"address and the cluster name (?cluster=)."
            ) from exc
        link.client = client
        weakref.finalize(self, client.shutdown)
        return client, link

    def _gone(self, exc: Exception) -> str:
        """What to say when the member went away (``exc``, the client's error) mid-call;
        the client is let go of, so the next call connects again."""
        self.close()
        return (
            f"the Hazelcast member at {self.address} went away ({type(exc).__name__}: {exc}). "
            f"{_START}, then call again: a member keeps its maps in memory, so one that "
            "restarted holds only what the filter has put since."
        )

    def close(self) -> None:
        """Disconnect from the cluster (a later call connects again)."""
        if self._client is not None:
            self._client.shutdown()
            self._client = None

    def __enter__(self) -> IdempotencyWindow:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- reading --------------------------------------------------------------------------
    def __len__(self) -> int:
        remote = self._map()
        try:
            return int(remote.size().result())
        except hazelcast_client().errors.HazelcastError as exc:
            raise SourceUnavailable(
                f"the size of {self.url} is unknown: {self._gone(exc)}"
            ) from exc

    def entries(self, *, progress: bool | None = None) -> pl.DataFrame:
        """Every entry of the map: its identity, ``stored_at``, ``expires_at``, ``ttl``.

        The keys are read at once, then each entry's view (its creation and expiry times) in
        batches of :data:`BATCH`; an entry that expires between the two is left out. Keys
        that are not Concursus's identity go to :attr:`quarantine` (with a warning).
        """
        remote = self._map()
        hazelcast = hazelcast_client()
        try:
            keys = remote.key_set().result()
        except hazelcast.errors.HazelcastSerializationError as exc:
            raise SourceError(
                f"{self.url} holds keys hazelcast-python-client cannot read ({exc}): "
                "Portable or DataSerializable keys need their factories, which a filter's "
                "map never has; is this the idempotency filter's map?"
            ) from exc
        except hazelcast.errors.HazelcastError as exc:
            raise SourceUnavailable(f"nothing was read from {self.url}: {self._gone(exc)}") from exc
        rows, bad = [], []
        try:
            self._views(remote, keys, rows, bad, progress)
        except hazelcast.errors.HazelcastError as exc:
            raise IncompleteRead(
                f"the read of {self.url} stopped after {len(rows):,} of {len(keys):,} entries: "
                f"{self._gone(exc)} `.partial` holds the entries read.",
                partial=_frame(rows, dt.datetime.now(dt.UTC)),
            ) from exc
        read_at = dt.datetime.now(dt.UTC)
        frame = _frame(rows, read_at)
        self._quarantine = pl.DataFrame(bad, schema=QUARANTINE_SCHEMA, orient="row")
        self._ttls = frame["ttl"]
        warn_quarantined(self._quarantine, "map keys", self.url)
        return frame

    @staticmethod
    def _views(remote: Any, keys: list, rows: list, bad: list, progress: bool | None) -> None:
        """Each key's entry view, in batches of :data:`BATCH`, sorted into ``rows`` and
        ``bad`` as they come (so what was read is kept when the member goes away)."""
        with progress_bars.bar(
            progress, total=len(keys), what="hazelcast entries", unit="keys"
        ) as b:
            for batch in _batches(keys, BATCH):
                views = [remote.get_entry_view(key) for key in batch]
                for key, view in zip(batch, views, strict=True):
                    found = view.result()
                    if found is not None:
                        _sort(key, found, rows, bad)
                b.update(len(batch))

    @property
    def quarantine(self) -> pl.DataFrame:
        """The keys of the last :meth:`entries` read that are not Concursus identities: the
        stored bytes and why they did not decode."""
        return self._quarantine

    @property
    def ttl(self) -> dt.timedelta | None:
        """The time to live the entries of the last :meth:`entries` read carry (the most
        common one), None when they never expire or none was read."""
        if self._ttls is None or self._ttls.drop_nulls().is_empty():
            return None
        return self._ttls.drop_nulls().mode().sort()[0]

    # --- what the filter does -------------------------------------------------------------
    def offer(self, events: pl.DataFrame, *, ttl: dt.timedelta | None = None) -> pl.DataFrame:
        """Offer each delivery of ``events`` to the live filter, as Concursus's does.

        In arrival order, each delivery's identity is put with ``putIfAbsent(identity,
        true)``; the delivery passes when the identity was absent. The map's own time to live
        applies, unless ``ttl`` sets one for these entries.

        Returns
        -------
        polars.DataFrame
            The deliveries in the order offered, with ``passed`` (bool).

        Raises
        ------
        IncompleteWrite
            The member went away: ``.written`` counts the deliveries offered, and
            ``.unwritten`` holds the others (the events, in arrival order), to offer again.
        """
        validate(events)
        ordered = by_delivery(events)
        arrived = ordered.select(*IDENTITY, "processing_timestamp", "name")
        remote = self._map()
        seconds = None if ttl is None else ttl.total_seconds()
        passed: list[bool] = []
        try:
            for batch in _batches(arrived.select(IDENTITY).rows(), BATCH):
                for row in batch:  # one at a time: a repeat inside a batch must see the first
                    key = JavaKey.of_identity(*row)
                    previous = remote.put_if_absent(key, True, ttl=seconds).result()
                    passed.append(previous is None)
        except hazelcast_client().errors.HazelcastError as exc:
            raise IncompleteWrite(
                f"offering to {self.url} stopped after {len(passed):,} of {arrived.height:,} "
                f"deliveries: {self._gone(exc)} `.unwritten` holds the events not offered, in "
                "arrival order (the first may have reached the map before it went).",
                written=len(passed),
                unwritten=ordered.slice(len(passed)),
            ) from exc
        return arrived.with_columns(pl.Series("passed", passed, dtype=pl.Boolean))


_START = "Start it with `concursus-lab services start hazelcast` (a local one)"


class _Link:
    """What a window's client reports about its connection: ``lost`` once the client has no
    connection left to the cluster. The client is then shut down (from a thread of its own:
    not the client's reactor, which calls this), so that requests under way fail at once
    instead of waiting out the invocation timeout."""

    def __init__(self) -> None:
        self.lost = False
        self.client: Any = None

    def on_state(self, state: str) -> None:
        if state == "DISCONNECTED" and self.client is not None:
            self.lost = True
            threading.Thread(target=self.client.shutdown, daemon=True).start()


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


def _batches(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _millis(value: int) -> dt.datetime | None:
    return None if value >= _NEVER or value <= 0 else _EPOCH + dt.timedelta(milliseconds=value)


def _sort(key: Any, view: Any, rows: list, bad: list) -> None:
    """Put one entry in ``rows`` (an identity) or ``bad`` (anything else)."""
    if isinstance(key, StoredKey) and not isinstance(key, JavaKey):
        bad.append((key.payload, f"a {key.kind} key (Hazelcast type id {key.type_id})"))
        return
    if not isinstance(key, JavaKey):
        bad.append((repr(key).encode(), f"a {type(key).__name__} key, not Java serialization"))
        return
    try:
        identity = key.identity()
    except JavaStreamError as exc:
        bad.append((key.payload, str(exc)))
        return
    ttl = None if view.ttl >= _NEVER or view.ttl <= 0 else dt.timedelta(milliseconds=view.ttl)
    rows.append(
        (
            *(identity[column] for column in IDENTITY),
            # creation_time is -1 unless the map keeps per-entry statistics (off by default
            # since Hazelcast 4.2); for entries only ever put, their last update is their birth
            _millis(view.creation_time) or _millis(view.last_update_time),
            _millis(view.expiration_time),
            ttl,
        )
    )


def _frame(rows: list, read_at: dt.datetime) -> pl.DataFrame:
    columns = [name for name in ENTRY_SCHEMA if name != "read_at"]
    schema = pl.Schema({name: ENTRY_SCHEMA[name] for name in columns})
    frame = pl.DataFrame(rows, schema=schema, orient="row")
    return frame.with_columns(pl.lit(read_at, dtype=TIME).alias("read_at")).sort(IDENTITY)
