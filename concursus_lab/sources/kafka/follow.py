"""Following a topic: new events as they arrive, a frame per batch, for live views.

:func:`follow` is the generator behind :meth:`KafkaSource.follow
<concursus_lab.sources.kafka.source.KafkaSource.follow>`: it polls from given offsets on,
reconnects after a broker's error and goes on from where it was, and decodes at most
``batch`` records into each frame it yields (every delivery kept), beside the records of
that batch that did not decode (the source keeps them in its quarantine).

A generator left open when the interpreter exits would close its consumer only when it is
collected, after kafka-python's network thread (a daemon) has stopped, and that close waits
for the thread forever. So every consumer a follow opens is also closed by an ``atexit``
hook, which runs while that thread still answers.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import time
import weakref
from collections.abc import Iterator
from typing import Any

import polars as pl

from concursus_lab.sources.kafka.connection import kafka_python
from concursus_lab.sources.kafka.reading import Reader
from concursus_lab.sources.kafka.records import chunks as by_partition
from concursus_lab.sources.kafka.records import split


def follow(
    reader: Reader,
    starts: dict[Any, int],
    keep: pl.Expr | None,
    poll_timeout: float,
    batch: int,
    idle_timeout: float | None,
) -> Iterator[tuple[pl.DataFrame, pl.DataFrame]]:
    """``(events, quarantined)`` for each batch of the records after ``starts``: the frame
    of what decoded (filtered by ``keep``) and the records that did not, either may be empty
    (never both)."""
    kafka = kafka_python()
    positions = dict(starts)

    def connect() -> Any:
        consumer = reader.consumer()
        _close_at_exit(consumer)
        consumer.assign(list(positions))
        for tp, offset in positions.items():
            consumer.seek(tp, offset)
        return consumer

    consumer = connect()
    try:
        last_seen = time.monotonic()
        while True:
            try:
                chunks = by_partition(consumer.poll(timeout_ms=int(poll_timeout * 1000)))
            except kafka.errors.KafkaError:  # reconnect, and go on from where it was
                time.sleep(poll_timeout)
                consumer.close()
                consumer = connect()
                continue
            if not chunks:
                if idle_timeout is not None and time.monotonic() - last_seen > idle_timeout:
                    return
                continue
            last_seen = time.monotonic()
            for tp, records in chunks:
                positions[tp] = max(positions[tp], int(records.offsets[-1]) + 1)
            for part in split(chunks, batch):
                frame, bad = reader.decode(part)
                if keep is not None:
                    frame = frame.filter(keep)
                if frame.height or bad.height:
                    yield frame, bad
    finally:
        consumer.close()


_OPEN: weakref.WeakSet[Any] = weakref.WeakSet()


def _close_at_exit(consumer: Any) -> None:
    _OPEN.add(consumer)
    _register_once()


@functools.cache
def _register_once() -> None:
    atexit.register(_close_open_consumers)


def _close_open_consumers() -> None:
    for consumer in list(_OPEN):
        with contextlib.suppress(Exception):
            consumer.close(autocommit=False)
