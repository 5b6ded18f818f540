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
    state = _Run(session, tasks, retries=retries, timeout=timeout)
    try:
        while True:
            state.release_due()
            state.launch_up_to(concurrency)
            if not state.in_flight:
                if state.waiting:
                    sleep(max(0.0, state.waiting[0][0] - time.monotonic()))
                    continue
                if state.exhausted and not state.ready:
                    return state.finished
                continue
            key = state.next_arrival()
            if key is not None:
                state.take(key, on_page, on_task_done)
    except KeyboardInterrupt as exc:
        raise state.stop(exc, state.current) from exc


class _Run:
    """One :func:`run`'s tasks: ready to ask for a page, waiting out a backoff, or in flight."""

    def __init__(self, session: Any, tasks: Iterable[Task], *, retries: int, timeout: float):
        self.session = session
        self.retries = retries
        self.timeout = timeout
        self.transient = transient_errors()
        self.source: Iterator[Task] = iter(tasks)
        self.ready: deque[Task] = deque()
        self.waiting: list[tuple[float, int, Task]] = []  # (when, tiebreak, task)
        self.tiebreak = itertools.count()
        self.in_flight: dict[int, tuple[Any, Task]] = {}
        self.arrived: queue.SimpleQueue = queue.SimpleQueue()
        self.finished = 0
        self.exhausted = False
        self.current: Task | None = None  # the task whose page is being handed over

    def release_due(self) -> None:
        """Tasks whose backoff is over become ready."""
        now = time.monotonic()
        while self.waiting and self.waiting[0][0] <= now:
            self.ready.append(heapq.heappop(self.waiting)[2])

    def launch_up_to(self, concurrency: int) -> None:
        """Ask for pages, ready tasks first, then new ones, until ``concurrency`` are in flight."""
        while len(self.in_flight) < concurrency:
            if self.ready:
                self._launch(self.ready.popleft())
                continue
            if self.exhausted:
                break
            task = next(self.source, None)
            if task is None:
                self.exhausted = True
                break
            self._launch(task)

    def _launch(self, task: Task) -> None:
        future = self.session.execute_async(
            task.statement, paging_state=task.paging_state, timeout=self.timeout
        )
        key = id(future)
        self.in_flight[key] = (future, task)
        future.add_callbacks(
            callback=lambda _rows, k=key: self.arrived.put(k),
            errback=lambda _exc, k=key: self.arrived.put(k),
        )

    def next_arrival(self) -> int | None:
        """The key of the next page to arrive, or None when a backoff ends first."""
        wait = None if not self.waiting else max(0.01, self.waiting[0][0] - time.monotonic())
        try:
            return self.arrived.get(timeout=wait)
        except queue.Empty:
            return None

    def take(
        self,
        key: int,
        on_page: Callable[[Task, list], None],
        on_task_done: Callable[[Task], None] | None,
    ) -> None:
        """Hand an arrived page over, then queue its task's next page; or retry, or stop."""
        future, task = self.in_flight.pop(key)
        try:
            result = future.result()
        except self.transient as exc:
            self._retry_later(task, exc)
            return
        except Exception as exc:
            raise self.stop(exc, task) from exc
        task.failures = 0
        rows = result.current_rows
        self.current = task
        on_page(task, rows)
        self.current = None
        # The driver keeps the page in a reference cycle around its future; emptying
        # the list frees the rows now, not at the collector's next pass.
        task.pages += 1
        task.rows += len(rows)
        task.paging_state = result.paging_state
        rows.clear()
        del result, future
        if task.paging_state is None:
            task.done = True
            self.finished += 1
            if on_task_done is not None:
                on_task_done(task)
        else:
            self.ready.appendleft(task)  # finish a started task first: less held state

    def _retry_later(self, task: Task, exc: BaseException) -> None:
        """Ask for the same page again after a backoff, or stop after ``retries`` in a row."""
        task.failures += 1
        if task.failures > self.retries:
            raise self.stop(exc, task) from exc
        backoff = min(MAX_BACKOFF, FIRST_BACKOFF * 2 ** (task.failures - 1))
        heapq.heappush(self.waiting, (time.monotonic() + backoff, next(self.tiebreak), task))

    def stop(self, cause: BaseException, failed: Task | None) -> Stopped:
        """The :class:`Stopped` for this run now: ``failed`` and every task not finished."""
        unfinished = [failed] if failed is not None else []
        unfinished += [task for _, task in self.in_flight.values()]
        unfinished += list(self.ready) + [task for _, _, task in self.waiting]
        return Stopped(cause, unfinished, self.finished)
