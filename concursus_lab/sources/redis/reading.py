"""The read of a Redis database in Concursus's layout: SCAN for keys, SSCAN for their members.

Concursus's ``RedisEventLog`` keeps each aggregate's events as a set under the key
``<aggregateType>:<aggregateId>``, one member per delivery: the event's JSON (``EventJson``,
the flat layout, ``processingId`` set). :class:`Walk` finds those keys with ``SCAN ... TYPE
set`` (never ``KEYS``, which blocks the server), or takes them as given when the ids are known,
and reads the members of many keys at once with pipelined ``SSCAN`` calls, so a set of any size
is read in pieces and a database of any size in round trips of :data:`KEYS_PER_TRIP` keys.

A key's members count only once its ``SSCAN`` has finished, so a read that is interrupted never
holds half a key. When the connection fails, the walk waits for the server, then scans the keys
again from the beginning and skips those already read (a ``SCAN`` cursor means nothing to a
server that was restarted, and ``SCAN`` promises every key that existed throughout). When the
server stays away for the source's ``timeout``, the walk stops and says what it read.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from concursus_lab.common.optional import require
from concursus_lab.common.progress import bar as progress_bar

#: Keys whose members are fetched in one pipelined round trip.
KEYS_PER_TRIP = 500
#: Members each SSCAN call asks for.
MEMBERS_PER_CALL = 1_000
_GLOB_SPECIAL = str.maketrans({c: f"\\{c}" for c in "*?[]\\"})


def glob_escape(text: str) -> str:
    """``text`` as a Redis glob pattern that matches only itself."""
    return text.translate(_GLOB_SPECIAL)


def event_key(aggregate_type: str, aggregate_id: str) -> str:
    """The set Concursus keeps an aggregate's events in (``AggregateId.toString()``)."""
    return f"{aggregate_type}:{aggregate_id}"


@dataclass
class Walk:
    """One read of the keys of ``client`` that match ``pattern`` (or exactly ``keys``)."""

    client: Any
    pattern: str
    keys: list[str] | None
    timeout: float
    progress: bool | None
    members: list[bytes] = field(default_factory=list)
    owners: list[str] = field(default_factory=list)  # the key each member came from
    done: set[str] = field(default_factory=set)
    stopped_by: str = ""
    missing: bool = False

    def run(self) -> None:
        """Read every key, or stop when the server stays away (``missing`` is then set)."""
        total = len(self.keys) if self.keys is not None else self._call(self.client.dbsize)
        with progress_bar(self.progress, total=total, what="redis", unit="keys") as bar:
            while True:
                try:
                    for batch in self._batches():
                        self._read(batch)
                        bar.update(len(batch))
                    return
                except _Lost as lost:
                    self.stopped_by = lost.why
                    if not self._reconnect():
                        self.missing = True
                        return

    def _batches(self) -> Iterator[list[str]]:
        if self.keys is not None:
            todo = [k for k in self.keys if k not in self.done]
            for lo in range(0, len(todo), KEYS_PER_TRIP):
                yield todo[lo : lo + KEYS_PER_TRIP]
            return
        cursor = 0
        while True:
            cursor, found = self._guard(
                lambda c=cursor: self.client.scan(
                    c, match=self.pattern, count=KEYS_PER_TRIP, _type="set"
                )
            )
            batch = [k for k in dict.fromkeys(f.decode() for f in found) if k not in self.done]
            if batch:
                yield batch
            if int(cursor) == 0:
                return

    def _read(self, keys: list[str]) -> None:
        """All members of ``keys``, a pipelined SSCAN round trip per step of every key."""
        got: dict[str, list[bytes]] = {k: [] for k in keys}
        cursors = dict.fromkeys(keys, 0)
        while cursors:
            pipe = self.client.pipeline(transaction=False)
            for key, cursor in cursors.items():
                pipe.sscan(key, cursor, count=MEMBERS_PER_CALL)
            answers = self._guard(pipe.execute)
            for (key, _), (cursor, members) in zip(list(cursors.items()), answers, strict=True):
                got[key].extend(members)
                if int(cursor) == 0:
                    del cursors[key]
                else:
                    cursors[key] = int(cursor)
        for key, members in got.items():
            self.members.extend(members)
            self.owners.extend([key] * len(members))
            self.done.add(key)

    def _guard(self, call: Any) -> Any:
        redis = require("redis", needed_by="Redis sources")

        try:
            return call()
        except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError) as exc:
            raise _Lost(f"{type(exc).__name__}: {exc}") from exc

    def _call(self, call: Any) -> Any:
        try:
            return self._guard(call)
        except _Lost:
            return None

    def _reconnect(self) -> bool:
        """True once the server answers again, False after ``timeout`` seconds."""
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            time.sleep(0.5)
            try:
                return bool(self._guard(self.client.ping))
            except _Lost as lost:
                self.stopped_by = lost.why
        return False

    def incomplete_message(self, url: str) -> str:
        return (
            f"the read of {url} stopped because the server did not answer for "
            f"{self.timeout:g} s ({self.stopped_by}): {len(self.done):,} keys were read "
            f"({len(self.members):,} deliveries), the others were not. The partial frame is in "
            "`.partial`; read again once the server is back."
        )


class _Lost(Exception):
    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why
