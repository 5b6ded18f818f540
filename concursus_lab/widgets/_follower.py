"""A follow run in a thread for a widget, so that the kernel stays free to hear its controls.

A cell that loops over a source's ``follow()`` keeps the kernel busy, and the widget's buttons
and sliders wait for it; :class:`Follower` runs the loop in a thread instead, handing each
batch to the widget, and stops it after the next batch (a follow cannot be interrupted while
it waits for records: its ``idle_timeout`` bounds that wait).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

from concursus_lab.exceptions import SourceError


class Follower:
    """One follow at a time, in a daemon thread named ``name``."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def running(self) -> bool:
        """Whether a follow's thread is running."""
        return self._thread is not None and self._thread.is_alive()

    def start(self, batches: Iterator[Any], take: Callable[[Any], None]) -> threading.Thread:
        """Run ``take(batch)`` for each of ``batches`` (a follow) in a thread; the follow is
        closed when the thread ends."""
        if self.running:
            close = getattr(batches, "close", None)
            if close is not None:
                close()
            raise SourceError("this view already follows a source; call `view.stop()` first.")
        self._stop.clear()

        def run() -> None:
            try:
                for batch in batches:
                    take(batch)
                    if self._stop.is_set():
                        break
            finally:
                close = getattr(batches, "close", None)
                if close is not None:
                    close()

        self._thread = threading.Thread(target=run, name=self._name, daemon=True)
        self._thread.start()
        return self._thread

    def stop(self, timeout: float | None = None) -> bool:
        """Stop after the next batch; True once the thread has ended (waits ``timeout``
        seconds at most, None: as long as it takes)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True


class FollowsSources:
    """``follow`` and ``stop`` for a widget that takes batches with ``update(frame)`` and
    keeps a :class:`Follower` as ``follower``."""

    follower: Follower
    #: Add a batch of deliveries: each widget's own method.
    update: Callable[[Any], None]

    def follow(self, source: Any, **options: Any) -> threading.Thread:
        """Follow ``source`` (anything with ``.follow()``: a Kafka topic, a RabbitMQ
        exchange) in a thread, adding each batch (``update``); ``stop()`` ends it.
        ``options`` are the source's ``follow()``'s (``batch``, ``idle_timeout``, ...)."""
        return self.follower.start(source.follow(**options), self.update)

    def stop(self, timeout: float | None = None) -> bool:
        """Stop the follow ``follow`` started (after its next batch, or when its
        ``idle_timeout`` ends it); True once its thread has ended."""
        return self.follower.stop(timeout)
