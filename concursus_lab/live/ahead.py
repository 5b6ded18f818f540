"""Reading ahead: a followed source's next batch is read while the fold folds this one.

A live fold following Kafka spends its time in two places: reading and decoding records,
and folding them. :class:`ReadAhead` moves the reading into a thread, at most ``depth``
batches ahead, so that on two cores the two overlap (decoding runs in polars, which lets
the fold's Python run meanwhile). What it changes for a follow (``following.py``):

* nothing for what is folded or the offsets: batches come in the order read, and a live
  fold's offsets move only when a batch is folded, so a batch read ahead and never folded
  is read again by the next follow;
* an error reading is raised where the batch would have been, in the follow;
* closing it stops the reading at the source's next batch: a source that waits for records
  (a Kafka follow without ``idle_timeout``) ends its read, and closes its consumer, only
  when the next records or the idle timeout come. The thread is a daemon: it never holds
  the interpreter open.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

import polars as pl

_FRAME, _END, _ERROR = range(3)


class ReadAhead:
    """An iterator of ``frames`` (a source's follow) read in a thread, ``depth`` ahead."""

    def __init__(self, frames: Iterator[pl.DataFrame], depth: int = 1) -> None:
        self._queue: queue.Queue[tuple[int, Any]] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._done = False
        self._thread = threading.Thread(
            target=self._read, args=(frames,), name="concursus-lab read-ahead", daemon=True
        )
        self._thread.start()

    def _read(self, frames: Iterator[pl.DataFrame]) -> None:
        try:
            for frame in frames:
                if not self._put((_FRAME, frame)):
                    return
            self._put((_END, None))
        except BaseException as exc:  # raised in the follow, where the batch was awaited
            self._put((_ERROR, exc))
        finally:
            frames.close()  # type: ignore[attr-defined]

    def _put(self, item: tuple[int, Any]) -> bool:
        """Hand ``item`` over, unless the reader was closed meanwhile."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> ReadAhead:
        return self

    def __next__(self) -> pl.DataFrame:
        if self._done:
            raise StopIteration
        kind, value = self._queue.get()
        if kind == _FRAME:
            return value
        self._done = True
        if kind == _ERROR:
            raise value
        raise StopIteration

    def close(self) -> None:
        """Stop reading (at the source's next batch: see the module's text)."""
        self._done = True
        self._stop.set()
        while True:  # let a reader blocked on a full queue see the stop
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
