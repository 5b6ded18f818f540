"""Running statements page by page, without a server: a fake session answers each page.

The real server going away mid-scan is tests/integration/test_cassandra.py's slow restart
test; these pin down the rules of :func:`paging.run` themselves: paging states, the
concurrency cap, retries with backoff, and what :class:`paging.Stopped` reports.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from concursus_lab.sources.cassandra import paging

cassandra = pytest.importorskip("cassandra")


@dataclass
class Page:
    current_rows: list
    paging_state: bytes | None


class Future:
    def __init__(self, outcome):
        self._outcome = outcome

    def add_callbacks(self, callback, errback):
        if isinstance(self._outcome, BaseException):
            errback(self._outcome)
        else:
            callback(self._outcome.current_rows)

    def result(self):
        if isinstance(self._outcome, BaseException):
            raise self._outcome
        return self._outcome


class Session:
    """Each statement is a list of pages; an exception in it fails that request once."""

    def __init__(self):
        self.asked: list[tuple[str, bytes | None]] = []
        self.outcomes: dict[tuple[str, bytes | None], list] = {}
        self.pages: dict[str, int] = {}
        self.most_in_flight = 0

    def script(self, statement: str, pages: int, rows: int = 2, *, failures=None):
        failures = failures or {}
        for page in range(pages):
            state = None if page == 0 else f"{statement}:{page}".encode()
            after = None if page == pages - 1 else f"{statement}:{page + 1}".encode()
            outcome = Page([(statement, page, k) for k in range(rows)], after)
            self.outcomes[(statement, state)] = [*failures.get(page, ()), outcome]

    def execute_async(self, statement, paging_state=None, timeout=None):
        self.asked.append((statement, paging_state))
        outcome = self.outcomes[(statement, paging_state)].pop(0)
        return Future(outcome)


def tasks(*statements: str) -> list[paging.Task]:
    return [paging.Task(s, f"task {s}") for s in statements]


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch):
    monkeypatch.setattr(paging, "FIRST_BACKOFF", 0.001)


def test_every_task_is_read_to_its_last_page_in_order():
    session = Session()
    session.script("a", 3)
    session.script("b", 1)
    got, done = [], []
    run = tasks("a", "b")
    finished = paging.run(
        session,
        run,
        on_page=lambda task, rows: got.extend(rows),
        on_task_done=lambda task: done.append(task.statement),
        concurrency=2,
        retries=0,
        timeout=1.0,
    )
    assert finished == 2
    assert sorted(done) == ["a", "b"]
    assert [r for r in got if r[0] == "a"] == [("a", p, k) for p in range(3) for k in range(2)]
    assert [(t.pages, t.rows, t.done, t.paging_state) for t in run] == [
        (3, 6, True, None),
        (1, 2, True, None),
    ]
    # each page was asked for with the paging state of the one before
    assert [s for s in session.asked if s[0] == "a"] == [("a", None), ("a", b"a:1"), ("a", b"a:2")]


def test_the_rows_list_is_emptied_after_each_page():
    session = Session()
    session.script("a", 2)
    lists = []
    paging.run(
        session,
        tasks("a"),
        on_page=lambda task, rows: lists.append(rows),
        concurrency=1,
        retries=0,
        timeout=1.0,
    )
    assert lists == [[], []]


def test_a_page_that_fails_for_a_passing_reason_is_asked_for_again_from_its_state():
    from cassandra import OperationTimedOut

    session = Session()
    session.script("a", 2, failures={1: [OperationTimedOut("slow"), OperationTimedOut("slow")]})
    got = []
    run = tasks("a")
    assert (
        paging.run(
            session,
            run,
            on_page=lambda task, rows: got.extend(rows),
            concurrency=1,
            retries=2,
            timeout=1.0,
        )
        == 1
    )
    assert session.asked == [("a", None), ("a", b"a:1"), ("a", b"a:1"), ("a", b"a:1")]
    assert len(got) == 4 and run[0].failures == 0  # rows not read twice or skipped


def test_too_many_failures_in_a_row_stop_the_run_and_say_what_was_finished():
    from cassandra import OperationTimedOut

    session = Session()
    session.script("a", 1)
    session.script("b", 2, failures={1: [OperationTimedOut("down")] * 3})
    run = tasks("a", "b")
    with pytest.raises(paging.Stopped) as stop:
        paging.run(
            session, run, on_page=lambda task, rows: None, concurrency=1, retries=2, timeout=1.0
        )
    assert isinstance(stop.value.cause, OperationTimedOut)
    assert stop.value.finished == 1
    assert stop.value.unfinished == [run[1]]
    assert run[1].rows == 2 and run[1].failures == 3


def test_an_error_that_does_not_pass_stops_at_once():
    session = Session()
    session.script("a", 2, failures={0: [ValueError("bad statement")]})
    with pytest.raises(paging.Stopped, match="bad statement") as stop:
        paging.run(
            session,
            tasks("a"),
            on_page=lambda task, rows: None,
            concurrency=1,
            retries=5,
            timeout=1.0,
        )
    assert session.asked == [("a", None)]
    assert stop.value.finished == 0


def test_an_interrupt_while_a_page_is_handed_over_lists_that_task():
    session = Session()
    session.script("a", 2)
    session.script("b", 2)
    run = tasks("a", "b")

    def interrupt(task, rows):
        raise KeyboardInterrupt

    with pytest.raises(paging.Stopped) as stop:
        paging.run(session, run, on_page=interrupt, concurrency=2, retries=0, timeout=1.0)
    assert isinstance(stop.value.cause, KeyboardInterrupt)
    assert set(map(id, stop.value.unfinished)) == set(map(id, run))


def test_no_more_than_concurrency_pages_are_in_flight():
    class Counting(Session):
        def __init__(self):
            super().__init__()
            self.open: list[Future] = []

        def execute_async(self, statement, paging_state=None, timeout=None):
            self.asked.append((statement, paging_state))
            future = Held(self.outcomes[(statement, paging_state)].pop(0), self)
            self.open.append(future)
            self.most_in_flight = max(self.most_in_flight, len(self.open))
            return future

    class Held(Future):
        """Answers only when the run asks for its result, so pages pile up in flight."""

        def __init__(self, outcome, session):
            super().__init__(outcome)
            self.session = session

        def add_callbacks(self, callback, errback):
            callback(None)

        def result(self):
            self.session.open.remove(self)
            return super().result()

    session = Counting()
    for name in "abcdef":
        session.script(name, 2)
    finished = paging.run(
        session,
        tasks(*"abcdef"),
        on_page=lambda task, rows: None,
        concurrency=3,
        retries=0,
        timeout=1.0,
    )
    assert finished == 6
    assert session.most_in_flight == 3
