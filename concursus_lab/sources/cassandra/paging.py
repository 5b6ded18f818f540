"""Run many CQL statements concurrently, page by page, surviving a server that goes away.

A :class:`Task` is one statement to run to its last page: a token range of a scan, one
aggregate's partition, or one batch of writes. :func:`run` keeps up to ``concurrency`` pages
in flight, hands each page's rows to a callback as it arrives, and asks for the task's next
page with the ``paging_state`` of the last one. A page that fails for a reason that passes
(the server is restarting, overloaded or slow) is asked for again, with the same paging
state, after a backoff that doubles up to a cap; the same page failing ``retries`` times in
a row stops the run with :class:`Stopped`, which says which tasks were finished and which
were not, so the caller can report exactly what was read.

The driver is only imported by the caller; this module needs just the futures it returns.
"""

from __future__ import annotations

import heapq
import itertools
import queue
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

#: Seconds before the first retry of a page, doubled each time up to :data:`MAX_BACKOFF`.
FIRST_BACKOFF = 0.5
MAX_BACKOFF = 8.0


@dataclass(eq=False)
class Task:
    """One statement run to its last page."""

    statement: Any
    label: str
    paging_state: bytes | None = None
    pages: int = 0
    rows: int = 0
    failures: int = 0
    done: bool = False
    extra: Any = field(default=None, repr=False)


class Stopped(Exception):
    """A run ended before every task was done (an error that did not pass, or an interrupt).

    ``unfinished`` holds the tasks that were started or queued (tasks not yet taken from
    the iterable are not listed); ``finished`` counts the tasks run to their end.
    """

    def __init__(self, cause: BaseException, unfinished: list[Task], finished: int):
        super().__init__(str(cause))
        self.cause = cause
        self.unfinished = unfinished
        self.finished = finished


def transient_errors() -> tuple[type[BaseException], ...]:
    """The driver's errors that say "try again later", not "this statement is wrong"."""
    from cassandra import (
        CoordinationFailure,
        OperationTimedOut,
        ReadTimeout,
        Unavailable,
        WriteTimeout,
    )
    from cassandra.cluster import NoHostAvailable
    from cassandra.connection import ConnectionException
    from cassandra.protocol import (
        IsBootstrappingErrorMessage,
        OverloadedErrorMessage,
        ServerError,
    )

    return (
        CoordinationFailure,
        OperationTimedOut,
        ReadTimeout,
        Unavailable,
        WriteTimeout,
        NoHostAvailable,
        ConnectionException,
        IsBootstrappingErrorMessage,
        OverloadedErrorMessage,
        ServerError,
        ConnectionError,
        OSError,
    )


def run(
    session: Any,
    tasks: Iterable[Task],
    *,
    on_page: Callable[[Task, list], None],
    concurrency: int,
    retries: int,
    timeout: float,
    on_task_done: Callable[[Task], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Run every task to its last page; return how many tasks were run.

    ``on_page(task, rows)`` is called on this thread for each page, in arrival order; the
    list is emptied when it returns, so keep the rows, not the list.
    Raises :class:`Stopped` when a page fails ``retries`` times in a row, fails for a reason
    that does not pass, or the run is interrupted (``KeyboardInterrupt``).
    """
    transient = transient_errors()
    source: Iterator[Task] = iter(tasks)
    ready: deque[Task] = deque()
    waiting: list[tuple[float, int, Task]] = []  # (when, tiebreak, task)
    tiebreak = itertools.count()
    in_flight: dict[int, tuple[Any, Task]] = {}
    arrived: queue.SimpleQueue = queue.SimpleQueue()
    finished = 0
    exhausted = False
    current: Task | None = None  # the task whose page is being handed over

    def launch(task: Task) -> None:
        future = session.execute_async(
            task.statement, paging_state=task.paging_state, timeout=timeout
        )
        key = id(future)
        in_flight[key] = (future, task)
        future.add_callbacks(
            callback=lambda _rows, k=key: arrived.put(k),
            errback=lambda _exc, k=key: arrived.put(k),
        )

    try:
        while True:
            now = time.monotonic()
            while waiting and waiting[0][0] <= now:
                ready.append(heapq.heappop(waiting)[2])
            while len(in_flight) < concurrency:
                if ready:
                    launch(ready.popleft())
                    continue
                if exhausted:
                    break
                task = next(source, None)
                if task is None:
                    exhausted = True
                    break
                launch(task)
            if not in_flight:
                if waiting:
                    sleep(max(0.0, waiting[0][0] - time.monotonic()))
                    continue
                if exhausted and not ready:
                    return finished
                continue
            wait = None if not waiting else max(0.01, waiting[0][0] - time.monotonic())
            try:
                key = arrived.get(timeout=wait)
            except queue.Empty:
                continue
            future, task = in_flight.pop(key)
            try:
                result = future.result()
            except transient as exc:
                task.failures += 1
                if task.failures > retries:
                    raise _stop(exc, task, in_flight, ready, waiting, finished) from exc
                backoff = min(MAX_BACKOFF, FIRST_BACKOFF * 2 ** (task.failures - 1))
                heapq.heappush(waiting, (time.monotonic() + backoff, next(tiebreak), task))
                continue
            except Exception as exc:
                raise _stop(exc, task, in_flight, ready, waiting, finished) from exc
            task.failures = 0
            rows = result.current_rows
            current = task
            on_page(task, rows)
            current = None
            # The driver keeps the page in a reference cycle around its future; emptying
            # the list frees the rows now, even while the caller pauses the collector.
            task.pages += 1
            task.rows += len(rows)
            task.paging_state = result.paging_state
            rows.clear()
            del result, future
            if task.paging_state is None:
                task.done = True
                finished += 1
                if on_task_done is not None:
                    on_task_done(task)
            else:
                ready.appendleft(task)  # finish a started task first: less held state
    except KeyboardInterrupt as exc:
        raise _stop(exc, current, in_flight, ready, waiting, finished) from exc


def _stop(
    cause: BaseException,
    failed: Task | None,
    in_flight: dict[int, tuple[Any, Task]],
    ready: deque[Task],
    waiting: list[tuple[float, int, Task]],
    finished: int,
) -> Stopped:
    unfinished = [failed] if failed is not None else []
    unfinished += [task for _, task in in_flight.values()]
    unfinished += list(ready) + [task for _, _, task in waiting]
    return Stopped(cause, unfinished, finished)
