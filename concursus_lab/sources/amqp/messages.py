"""Concursus events as AMQP messages on RabbitMQ: declaring, publishing, receiving, decoding.

**Routing key.** Each event is published with ``<aggregateType>.<eventName>`` (dots in either
become ``_``, since a dot separates the words of a topic key). A downstream processor binds
``parcel.#`` for one aggregate type, ``*.delivered`` for one event across types, or ``#`` for
everything: the two things a processor of an event stream selects on. Keying by aggregate id
instead would spread one aggregate over no fewer queues and let no one bind by kind.

**Body.** One event per message, Concursus's ``EventJson`` (the flat layout), persistent
(``delivery_mode`` 2), ``content_type`` ``application/json``, ``message_id`` the processing
id and ``timestamp`` the processing time in seconds. Publishing waits for the broker's
confirm of every message, with ``mandatory`` set, so a message that reached no queue is
counted, not silently dropped.

**Processing time.** The time in a message's ``processingId``, as for every Concursus store;
events are stamped with one when published (:func:`~concursus_lab.sources.stamping.stamped`).
"""

from __future__ import annotations

import contextlib
import time
import weakref
from collections.abc import Iterator
from typing import Any

import numpy as np
import polars as pl

from concursus_lab.common.optional import require
from concursus_lab.common.progress import bar as progress_bar
from concursus_lab.exceptions import IncompleteWrite, SourceUnavailable
from concursus_lab.frame.schema import SCHEMA, for_writing
from concursus_lab.sources import concursus_json, concursus_json_write
from concursus_lab.sources.stamping import NO_TIME, stamped, untimed

CANONICAL = list(SCHEMA.names())
QUARANTINE_SCHEMA = pl.Schema({"raw": pl.Binary, "reason": pl.String})
_PREFETCH = 1_000
_MAX_PREFETCH = 65_535  # AMQP's prefetch count is a short
#: Seconds a stream read waits for its first message (a busy broker takes a moment to open
#: the stream's reader); an empty stream's read takes this long.
FIRST_WAIT = 2.0


def word(name: str) -> str:
    """``name`` as one word of a topic routing key."""
    return name.replace(".", "_") or "_"


class Channel:
    """A connection and its channel, closed together (on exit, or when collected)."""

    def __init__(self, pika: Any, parameters: Any, url: str) -> None:
        try:
            self.connection = pika.BlockingConnection(parameters)
        except pika.exceptions.AMQPError as exc:
            raise SourceUnavailable(
                f"cannot reach RabbitMQ at {url} ({type(exc).__name__}: {exc}). Is it running? "
                "Start a local one with `concursus-lab services start rabbitmq`."
            ) from exc
        self.channel = self.connection.channel()
        self._close = weakref.finalize(self, _close, self.connection)

    def __enter__(self) -> Any:
        return self.channel

    def __exit__(self, *exc: object) -> None:
        self._close()


def _close(connection: Any) -> None:
    if connection.is_open:
        # A stream's consumer, cancelled on the way, makes the broker close the connection
        # (see read_stream); an interrupt or a dying broker may leave one half-way. Neither
        # matters once the connection is let go of.
        with contextlib.suppress(Exception):
            connection.close()


def declare(channel: Any, exchange: str, stream: str | None, *, create: bool, url: str) -> None:
    """Check (or with ``create``, make) the exchange and the stream bound to it."""
    pika = require("pika", needed_by="RabbitMQ sources")

    try:
        if create:
            channel.exchange_declare(exchange, exchange_type="topic", durable=True)
        else:
            channel.exchange_declare(exchange, passive=True)
        if stream is not None:
            arguments = {"x-queue-type": "stream"}
            channel.queue_declare(stream, durable=True, passive=not create, arguments=arguments)
            if create:
                channel.queue_bind(stream, exchange, routing_key="#")
    except pika.exceptions.ChannelClosedByBroker as exc:
        what = f"stream {stream!r}" if stream and "queue" in str(exc) else f"exchange {exchange!r}"
        if recovering(exc):
            raise SourceUnavailable(
                f"the {what} at {url} is there but not up yet ({exc.reply_text}): a broker "
                "that has just started takes a few seconds to recover its streams. Open it "
                "again in a moment."
            ) from exc
        raise SourceUnavailable(
            f"there is no {what} at {url} ({exc.reply_text}). Pass create=True to make it, "
            f"e.g. cl.open({url!r}, create=True)."
        ) from exc


#: RabbitMQ's words for a stream a restarted broker has not recovered yet: its queue record
#: (at declare), then its local member, which the stream coordinator starts a moment later
#: (at consume, "PRECONDITION_FAILED - queue ... does not have a replica on the local node").
_RECOVERING = ("is down or inaccessible", "does not have a replica on the local node")


def recovering(error: BaseException | None) -> bool:
    """Whether ``error`` (a :class:`SourceUnavailable` from :func:`declare`, or the broker's
    own close of a channel, e.g. a :class:`Stopped` read's ``cause``) is a stream the broker
    has not recovered yet."""
    cause = error.__cause__ if isinstance(error, SourceUnavailable) else error
    text = str(getattr(cause, "reply_text", ""))
    return any(words in text for words in _RECOVERING)


def read_stream(channel: Any, stream: str, idle: float, progress: bool | None) -> list:
    """Every message of ``stream`` from its first, until none arrives for ``idle`` seconds
    (for the first message, :data:`FIRST_WAIT` at least: the broker opens the stream's reader
    first): ``(offset, body)`` pairs in stream order. A lost connection or an interrupt
    raises :class:`Stopped` with the pairs read so far.

    The consumer is not cancelled: a cancel makes pika reject the messages that came after
    the pause, which a stream refuses by closing the connection. Closing it ends the read.
    """
    pika = require("pika", needed_by="RabbitMQ sources")

    channel.basic_qos(prefetch_count=_PREFETCH)
    got: list = []
    started = time.monotonic()
    try:
        with progress_bar(progress, what=stream, unit="messages") as bar:
            arguments = {"x-stream-offset": "first"}
            for method, properties, body in channel.consume(
                stream, arguments=arguments, inactivity_timeout=idle
            ):
                if method is None:
                    if got or time.monotonic() - started >= max(idle, FIRST_WAIT):
                        break
                    continue
                offset = (properties.headers or {}).get("x-stream-offset", len(got))
                got.append((int(offset), body))
                channel.basic_ack(method.delivery_tag)
                bar.update(1)
    except (pika.exceptions.AMQPError, OSError, KeyboardInterrupt) as exc:
        raise Stopped(got, exc) from exc
    return got


def decode(bodies: list) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``(offset, body)`` pairs -> canonical rows with ``stream_offset``, and the quarantine
    of what does not decode or has no time-based processing id."""
    offsets = [o for o, _ in bodies]
    values = [b for _, b in bodies]
    rows, bad = concursus_json.decode(values, record_times=np.zeros(len(values), dtype=np.int64))
    no_time = rows.filter(untimed(rows["processing_id"])).select(
        "record", pl.lit(NO_TIME).alias("reason")
    )
    bad = pl.concat([bad, no_time]).unique("record", keep="first").sort("record")
    rows = rows.filter(~pl.col("record").is_in(bad["record"].implode()))
    offset = pl.Series("stream_offset", offsets, dtype=pl.Int64)
    frame = rows.with_columns(offset.gather(rows["record"])).drop("record")
    quarantine = bad.select(
        pl.Series("raw", values, dtype=pl.Binary).gather(bad["record"]), "reason"
    )
    return frame, quarantine


def bind_own_queue(channel: Any, exchange: str, binding: str) -> str:
    """A new exclusive, auto-deleted queue bound to ``exchange`` with ``binding``."""
    declared = channel.queue_declare("", exclusive=True, auto_delete=True)
    queue = declared.method.queue
    channel.queue_bind(queue, exchange, routing_key=binding)
    return queue


def receive(
    channel: Any, queue: str, batch: int, poll: float, idle: float | None
) -> Iterator[list]:
    """Batches of ``(position, body)`` as they arrive; ends after ``idle`` seconds of none
    (never when ``idle`` is None). An empty batch marks each ``poll`` with nothing new.

    A batch is handed over when it holds ``batch`` messages or ``poll`` seconds have passed
    since the last one (a steady trickle is never held back for a full batch). Its messages
    are acknowledged only once the caller asks for the next batch, so a message is never
    acknowledged before it was handed over. A lost connection or an interrupt while waiting
    raises :class:`Stopped` with the messages taken and not yet handed over.
    """
    pika = require("pika", needed_by="RabbitMQ sources")

    channel.basic_qos(prefetch_count=min(max(batch, _PREFETCH), _MAX_PREFETCH))
    pending: list = []
    received = 0
    tag = None
    last_message = last_batch = time.monotonic()
    try:
        for method, _properties, body in channel.consume(queue, inactivity_timeout=poll):
            now = time.monotonic()
            if method is not None:
                pending.append((received, body))
                received += 1
                tag, last_message = method.delivery_tag, now
                if len(pending) < batch and now - last_batch < poll:
                    continue
            elif not pending and idle is not None and now - last_message > idle:
                return
            yield pending
            pending = []  # handed over: acknowledged now that the caller asks for more
            if tag is not None:
                channel.basic_ack(tag, multiple=True)
                tag = None
            last_batch = time.monotonic()
    except (pika.exceptions.AMQPError, OSError, KeyboardInterrupt) as exc:
        raise Stopped(pending, exc) from exc


class Stopped(Exception):
    """A receive or a stream read ended by a lost connection or an interrupt (``cause``);
    ``held`` is what it had taken and not handed over. The source turns it into
    :class:`~concursus_lab.exceptions.IncompleteRead`: it never reaches a user."""

    def __init__(self, held: list, cause: BaseException) -> None:
        super().__init__(repr(cause))
        self.held, self.cause = held, cause

    @property
    def interrupted(self) -> bool:
        return isinstance(self.cause, KeyboardInterrupt)

    @property
    def why(self) -> str:
        return why(self.cause)


def why(cause: BaseException | None) -> str:
    """Why a read stopped, for a message: "interrupted", or what was lost in pika's words."""
    if cause is None or isinstance(cause, KeyboardInterrupt):
        return "interrupted"
    return f"the connection was lost ({type(cause).__name__}: {cause})"


def until(frames: Iterator[pl.DataFrame], deadline: float) -> Iterator[pl.DataFrame]:
    """The frames of ``frames`` that arrive before ``deadline`` (``time.monotonic()``)."""
    for frame in frames:
        if frame.height:
            yield frame
        if time.monotonic() >= deadline:
            return


def publish(
    channel: Any, exchange: str, frame: pl.DataFrame, url: str, progress: bool | None
) -> int:
    """Publish each event with confirms; returns how many reached a queue."""
    import warnings

    pika = require("pika", needed_by="RabbitMQ sources")

    frame = stamped(for_writing(frame, milliseconds="Concursus JSON"), "RabbitMQ")
    if frame.height == 0:
        return 0
    bodies = concursus_json_write.encode(frame, "flat").to_list()
    pairs = zip(frame["aggregate_type"], frame["name"], strict=True)
    keys = [f"{word(kind)}.{word(name)}" for kind, name in pairs]
    ids = frame["processing_id"].to_list()
    seconds = frame["processing_timestamp"].dt.epoch("s").to_list()
    channel.confirm_delivery()
    routed = unroutable = 0
    with progress_bar(progress, total=frame.height, what="publishing", unit="events") as bar:
        for key, body, pid, at in zip(keys, bodies, ids, seconds, strict=True):
            properties = pika.BasicProperties(
                delivery_mode=2, content_type="application/json", message_id=pid, timestamp=at
            )
            try:
                channel.basic_publish(exchange, key, body, properties, mandatory=True)
                routed += 1
            except pika.exceptions.UnroutableError:
                unroutable += 1
            except pika.exceptions.AMQPError as exc:
                done = routed + unroutable
                raise IncompleteWrite(
                    f"{done:,} of {frame.height:,} events were published to {url} "
                    f"({type(exc).__name__}: {exc}); `.unwritten` holds the others.",
                    written=routed,
                    unwritten=frame.slice(done),
                ) from exc
            bar.update(1)
    if unroutable:
        warnings.warn(
            f"{unroutable:,} of {frame.height:,} events reached no queue on {url}: nothing is "
            "bound to their routing keys, so RabbitMQ dropped them. Bind a queue or a stream "
            "first (cl.open(url + '?stream=<name>', create=True) makes one for every event).",
            stacklevel=3,
        )
    return routed
