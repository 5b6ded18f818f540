"""A RabbitMQ topic exchange that Concursus events are published to, as a source.

In the processing model of Concursus's talk, the event store publishes each event to a topic
exchange for downstream processors, which receive them out of order. A classic queue keeps no
history, so what this source can do depends on what the broker keeps:

- :meth:`AmqpSource.follow` binds a queue of its own to the exchange and yields the events in
  the order a downstream processor receives them;
- :meth:`AmqpSource.capture` records what arrives for a while into a local store, to replay;
- with ``stream=``, a RabbitMQ *stream* bound to the exchange keeps every message, and
  :meth:`AmqpSource.events` reads its whole history, as for a Kafka topic.

Messages are Concursus's ``EventJson`` (the flat layout, as Concursus's other modules write
it); :meth:`AmqpSource.append` publishes them with the routing key
``<aggregateType>.<eventName>``. See :mod:`.messages` for the choice of key and the decoding.

>>> import concursus_lab as cl
>>> events = cl.open("amqp://127.0.0.1:5672/parcels?stream=parcel-history")  # doctest: +SKIP
"""

from __future__ import annotations

import os
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import polars as pl

from concursus_lab.common.optional import require
from concursus_lab.exceptions import IncompleteRead, SourceError, SourceUnavailable
from concursus_lab.frame.schema import SCHEMA
from concursus_lab.sources.amqp import messages
from concursus_lab.sources.base import Source
from concursus_lab.sources.quarantine import warn_quarantined
from concursus_lab.sources.query import Query

ENVIRONMENT = {
    "username": "CONCURSUS_LAB_AMQP_USERNAME",
    "password": "CONCURSUS_LAB_AMQP_PASSWORD",
}
_OPTIONS = ("stream", "vhost")
_RECOVERY = 30.0  # seconds to wait for a stream a restarted broker is recovering


def pika_module() -> Any:
    return require("pika", needed_by="RabbitMQ sources", extra="rabbitmq")


class AmqpSource(Source):
    """A topic exchange on a RabbitMQ broker; open it with ``cl.open("amqp://host/exchange")``.

    Parameters
    ----------
    host, port, exchange
        The broker and the topic exchange Concursus publishes to.
    stream
        A RabbitMQ stream bound to the exchange, which keeps its history: :meth:`events`
        reads it whole, up to the first pause of ``idle`` seconds. ``create=True`` makes
        it, bound with ``#`` (every event).
    vhost
        The virtual host (default ``/``).
    create
        Declare the exchange (topic, durable) and the stream when they do not exist.
    idle
        Seconds without a new message after which a read of the stream is at its end.

    The user name and password come from ``$CONCURSUS_LAB_AMQP_USERNAME`` and
    ``$CONCURSUS_LAB_AMQP_PASSWORD`` (RabbitMQ's ``guest`` when unset), never from the URL.
    """

    def __init__(
        self,
        host: str,
        port: int,
        exchange: str,
        *,
        stream: str | None = None,
        vhost: str = "/",
        create: bool = False,
        username: str | None = None,
        password: str | None = None,
        idle: float = 1.0,
    ) -> None:
        pika = pika_module()
        if not exchange:
            raise SourceError("the URL names no exchange: amqp://host:5672/<exchange>.")
        self.exchange, self.stream, self._idle = exchange, stream, float(idle)
        query = f"?stream={stream}" if stream else ""
        self.url = f"amqp://{host}:{port}/{exchange}{query}"
        user = username or os.environ.get(ENVIRONMENT["username"]) or "guest"
        secret = password or os.environ.get(ENVIRONMENT["password"]) or "guest"
        self._parameters = pika.ConnectionParameters(
            host=host,
            port=port,
            virtual_host=vhost,
            credentials=pika.PlainCredentials(user, secret),
            connection_attempts=1,
            socket_timeout=10,
        )
        self._quarantine = pl.DataFrame(schema=messages.QUARANTINE_SCHEMA)
        self._declare(create)

    def _declare(self, create: bool) -> None:
        """Check (or make) the exchange and the stream; a stream that a broker just started
        has not recovered yet is waited for, up to :data:`_RECOVERY` seconds."""
        deadline = time.monotonic() + _RECOVERY
        while True:
            try:
                with self._channel() as channel:
                    messages.declare(
                        channel, self.exchange, self.stream, create=create, url=self.url
                    )
                return
            except SourceUnavailable as exc:
                if not messages.recovering(exc) or time.monotonic() > deadline:
                    raise
            time.sleep(0.5)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> AmqpSource:
        """``amqp://host:port/<exchange>[?stream=<name>&vhost=<vhost>]``, no credentials."""
        parts = urllib.parse.urlsplit(url)
        if parts.username is not None or parts.password is not None:
            raise SourceError(
                f"credentials do not belong in an AMQP URL: set ${ENVIRONMENT['username']} and "
                f"${ENVIRONMENT['password']}."
            )
        query = dict(urllib.parse.parse_qsl(parts.query))
        unknown = sorted(set(query) - set(_OPTIONS))
        if unknown:
            raise SourceError(
                f"unknown option {unknown[0]!r} in {url!r}; an AMQP URL takes {list(_OPTIONS)}."
            )
        exchange = urllib.parse.unquote(parts.path.strip("/"))
        return cls(parts.hostname or "127.0.0.1", parts.port or 5672, exchange, **query, **options)

    def _channel(self) -> messages.Channel:
        """A channel on a new connection, closed (with it) on the way out."""
        return messages.Channel(pika_module(), self._parameters, self.url)

    # -- reading the stream ----------------------------------------------------------------

    def _read_stream(self, progress: bool | None) -> tuple[list, messages.Stopped | None]:
        """``(offset, body)`` pairs of the whole stream and how the read stopped, if it did. A
        stream that a restarted broker has not recovered yet refuses its first read (after
        its queue is back, its local member starts a moment later): that is waited for, up to
        :data:`_RECOVERY` seconds, as opening waits for the queue."""
        deadline = time.monotonic() + _RECOVERY
        while True:
            with self._channel() as channel:
                try:
                    return messages.read_stream(channel, self.stream, self._idle, progress), None
                except messages.Stopped as stop:
                    late = time.monotonic() > deadline
                    if stop.held or late or not messages.recovering(stop.cause):
                        return stop.held, stop
            time.sleep(0.5)

    def _events(self, query: Query, progress: bool | None) -> pl.DataFrame:
        """The whole history of the stream, up to the first pause of ``idle`` seconds."""
        if self.stream is None:
            raise SourceError(
                f"the exchange {self.exchange!r} keeps no history (a RabbitMQ exchange only "
                "routes): follow it with .follow(), record it with .capture(into=...), or "
                "open a stream bound to it with ?stream=<name>."
            )
        bodies, stopped = self._read_stream(progress)
        frame, self._quarantine = messages.decode(bodies)
        warn_quarantined(self._quarantine, "message(s)", self.url, stacklevel=4)
        result = query.apply(frame, order="stream_offset")
        if stopped is not None:
            again = "" if stopped.interrupted else f" once RabbitMQ is back ({_START})"
            raise IncompleteRead(
                f"the read of stream {self.stream!r} on {self.url} stopped, {stopped.why}, "
                f"after {len(bodies):,} messages. `.partial` holds the events read. The stream "
                f"keeps every message: read again{again}.",
                partial=result,
            ) from stopped.cause
        return result

    @property
    def quarantine(self) -> pl.DataFrame:
        """Messages the last read or follow could not decode, with their ``reason``."""
        return self._quarantine

    # -- following the exchange ------------------------------------------------------------

    def follow(
        self,
        aggregate_type: str | None = None,
        *,
        batch: int = 1_000,
        poll_timeout: float = 1.0,
        idle_timeout: float | None = None,
    ) -> Iterator[pl.DataFrame]:
        """New events as a downstream processor receives them: a generator of frames.

        A queue of its own (exclusive, deleted when the generator closes) is bound to the
        exchange for every event, or for ``aggregate_type``'s (routing key
        ``<type>.#``), before this returns, so nothing published after the call is missed.
        Frames hold at most ``batch`` events, in the order they were received, with
        ``stream_offset`` (the position in what this generator received); a frame is yielded
        once it is full or ``poll_timeout`` seconds after the last one, and the generator stops
        after ``idle_timeout`` seconds without an event. A message is acknowledged only once
        its frame was yielded and the next one asked for.

        Raises
        ------
        IncompleteRead
            The connection was lost, or the wait was interrupted: ``.partial`` holds the
            events received and not yet yielded, and the message says how many were.
        """
        if not isinstance(batch, int) or batch < 1:
            raise SourceError(f"`batch` must be a positive int, got {batch!r}.")
        return self._follow(aggregate_type, batch, poll_timeout, idle_timeout, ticks=False)

    def _follow(
        self, aggregate_type: str | None, batch: int, poll: float, idle: float | None, ticks: bool
    ) -> Iterator[pl.DataFrame]:
        """The generator behind :meth:`follow`; with ``ticks``, an empty frame at every poll
        that brought nothing, so that a caller can look at the clock."""
        binding = "#" if aggregate_type is None else f"{messages.word(aggregate_type)}.#"
        own = self._channel()  # closed by the generator, or when it is collected unstarted
        queue = messages.bind_own_queue(own.channel, self.exchange, binding)
        return self._frames(own, queue, batch, poll, idle, ticks)

    def _frames(
        self,
        own: messages.Channel,
        queue: str,
        batch: int,
        poll: float,
        idle: float | None,
        ticks: bool,
    ) -> Iterator[pl.DataFrame]:
        handed = 0  # messages handed over (yielded, or quarantined)
        try:
            for bodies in messages.receive(own.channel, queue, batch, poll, idle):
                frame = self._decoded(bodies)
                if frame.height or ticks:
                    yield frame
                handed += len(bodies)
        except messages.Stopped as stop:
            held = self._decoded(stop.held)
            received = f"{handed + len(stop.held):,} received, {handed:,} yielded"
            raise IncompleteRead(
                f"following {self.url} stopped, {stop.why}: {received}. `.partial` holds the "
                f"{len(stop.held):,} received and not yet yielded. {_gone(stop.cause, 'follow')}",
                partial=held,
            ) from stop.cause
        finally:
            own.__exit__(None, None, None)

    def _decoded(self, bodies: list) -> pl.DataFrame:
        """The events of ``bodies``; what does not decode joins :attr:`quarantine`."""
        frame, bad = messages.decode(bodies)
        if bad.height:
            self._quarantine = pl.concat([self._quarantine, bad])
            warn_quarantined(bad, "message(s)", self.url)
        return frame

    def capture(
        self,
        into: Source,
        *,
        duration: float,
        aggregate_type: str | None = None,
        progress: bool | None = None,
    ) -> int:
        """Record what arrives on the exchange for ``duration`` seconds into ``into`` (a local
        store, say), to replay later; returns how many events were recorded.

        What arrives is appended at least every half second, and each message is
        acknowledged only once its event is appended.

        Raises
        ------
        IncompleteRead
            The broker was lost, or the capture was interrupted: what had arrived is
            appended first, then the message says how many events were recorded, and
            ``.partial`` holds them.
        """
        started = time.monotonic()
        recorded: list[pl.DataFrame] = []
        poll = min(0.5, float(duration))
        live = self._follow(aggregate_type, 1_000, poll, None, ticks=True)
        try:
            for frame in messages.until(live, started + float(duration)):
                _record(into, frame, recorded)
        except IncompleteRead as stop:  # the broker was lost, or an interrupt, while waiting
            _record(into, stop.partial, recorded)
            cause = stop.__cause__
            raise IncompleteRead(
                f"capturing {self.url} into {into!r} stopped after "
                f"{time.monotonic() - started:.1f} s of {float(duration):g}, "
                f"{messages.why(cause)}: {sum(f.height for f in recorded):,} events were "
                f"recorded, every one that arrived; `.partial` holds them. "
                f"{_gone(cause, 'capture')}",
                partial=_frame(recorded),
            ) from cause
        except KeyboardInterrupt as exc:  # while appending
            raise IncompleteRead(
                f"capturing {self.url} into {into!r} was interrupted while appending a batch: "
                f"{sum(f.height for f in recorded):,} events were recorded before it "
                f"(`.partial` holds them); the batch is there only if that append finished.",
                partial=_frame(recorded),
            ) from exc
        finally:
            live.close()
        return sum(f.height for f in recorded)

    # -- publishing ------------------------------------------------------------------------

    def append(self, frame: pl.DataFrame, *, progress: bool | None = None) -> int:
        """Publish one message per event, as a Concursus publisher would; returns how many
        reached at least one queue (those that reached none are counted in a warning:
        RabbitMQ drops them). Persistent messages with publisher confirms; see
        :mod:`.messages` for the routing key."""
        with self._channel() as channel:
            return messages.publish(channel, self.exchange, frame, self.url, progress)

    def __repr__(self) -> str:
        return f"AmqpSource({self.url!r})"


_START = "a local one: `concursus-lab services start rabbitmq`"


def _gone(cause: BaseException | None, what: str) -> str:
    """What became of the messages not yet delivered, and what to do next."""
    went = (
        f"Messages the broker had not delivered yet went with this {what}'s own queue "
        "(it is deleted with its connection)."
    )
    if cause is None or isinstance(cause, KeyboardInterrupt):
        return went
    return (
        f"{went} Once RabbitMQ is back ({_START}), {what} again; to keep every message "
        "through an outage, bind a stream (?stream=<name>, create=True) and read it with "
        ".events()."
    )


def _record(into: Source, frame: pl.DataFrame, recorded: list[pl.DataFrame]) -> None:
    """Append ``frame``'s events to ``into``, and keep them in ``recorded`` once there."""
    if frame.height:
        events = frame.select(messages.CANONICAL)
        into.append(events, progress=False)
        recorded.append(events)


def _frame(recorded: list[pl.DataFrame]) -> pl.DataFrame:
    return pl.concat(recorded) if recorded else pl.DataFrame(schema=SCHEMA)
