"""Following a source with a live fold: its history first, then each batch as it arrives.

:func:`follow` drives :meth:`LiveStates.update <concursus_lab.live.states.LiveStates.update>`
from a source's ``.follow()``:

* a source whose ``follow`` takes ``offsets`` (a Kafka topic) is read whole first (its
  history, one batch), then followed from the offsets after what was read; a follow that
  stopped (closed, or raised) is started again from the live fold's ``offsets``, so that
  nothing is read twice or missed;
* any other followed source (a RabbitMQ exchange) is followed from the call on (its queue is
  bound then): what was published before is not there to read, and the queue lives only as
  long as its follow;
* a source that cannot be followed but read (a local store that grows) is read again every
  ``poll_timeout`` seconds, and what the live fold has not read yet is folded
  (``polling.py``): its history first, then each append; a follow that stopped goes on from
  the fold's own deliveries.

The offsets move only once a batch is folded: a batch whose fold raised is read again.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

from concursus_lab.exceptions import SchemaError, SourceError
from concursus_lab.live.ahead import ReadAhead
from concursus_lab.live.changes import Changes
from concursus_lab.live.polling import polled


def follow(
    live: Any,
    source: Any,
    *,
    history: bool = True,
    batch: int = 10_000,
    poll_timeout: float = 1.0,
    idle_timeout: float | None = None,
    read_ahead: bool = False,
) -> Iterator[Changes]:
    """Follow ``source`` (a Kafka topic, a RabbitMQ exchange, a local store), folding each
    batch it brings into ``live`` (a :class:`~concursus_lab.live.states.LiveStates`, whose
    ``follow`` this is): a generator of each batch's
    :class:`~concursus_lab.live.changes.Changes`.

    A Kafka topic is read whole first (unless ``history=False``), then followed from the
    offsets after what was read; following it again with the same live fold goes on from
    ``live.offsets``, so a follow that stopped loses and repeats nothing. A RabbitMQ
    exchange is followed from this call on. A local store is read again every
    ``poll_timeout`` seconds (``history`` does not apply: what the fold has not read is
    new). ``batch``, ``poll_timeout`` and ``idle_timeout`` are the source's ``follow()``'s.

    ``read_ahead``: read a followed source's next batch in a thread while this one folds
    (``ahead.py``): on two cores, reading and folding overlap. A follow closed while its
    source waits for records then lets go of the source only at the next records or
    ``idle_timeout``. A store, read again every poll against what the fold holds, cannot
    read ahead.
    """
    method = getattr(source, "follow", None)
    options: dict[str, Any] = {
        "batch": batch,
        "poll_timeout": poll_timeout,
        "idle_timeout": idle_timeout,
    }
    if method is None and callable(getattr(source, "events", None)):
        # a local store: read again every poll, folding what the fold has not read
        if read_ahead:
            raise SchemaError(
                f"{source!r} is read again every poll and compared with what the live fold "
                "holds, so it cannot be read ahead of the fold; follow it with "
                "read_ahead=False (the default)."
            )
        frames = polled(source, live.aggregate_type, lambda: live.deliveries, **options)
        return _folded(live, frames)
    if method is None:
        raise SourceError(
            f"{source!r} cannot be followed: it has neither `.follow()` nor `.events()`. "
            "Follow a Kafka topic, a RabbitMQ exchange or a store, or give a live fold "
            "batches yourself with `live.update(frame)`."
        )
    if "offsets" not in inspect.signature(method).parameters:
        # called now, not when first asked: its queue is bound before anything is published
        frames = method(live.aggregate_type, **options)
        return _folded(live, ReadAhead(frames) if read_ahead else frames)
    return _resumed(live, source, method, options, history, read_ahead)


def _resumed(live: Any, source: Any, method: Any, options: dict, history: bool, ahead: bool):
    if history and live.read == 0 and not live.offsets.kafka:
        yield live.update(source.events(live.aggregate_type, duplicates="keep"))
    frames = method(live.aggregate_type, offsets=live.offsets.kafka, **options)
    yield from _folded(live, ReadAhead(frames) if ahead else frames)


def _folded(live: Any, frames: Iterator) -> Iterator[Changes]:
    try:
        for frame in frames:
            yield live.update(frame)
    finally:
        frames.close()  # type: ignore[attr-defined]
