"""``live_view``: a live fold's states and deliveries, updated in place as batches arrive.

:class:`LiveView` shows a :func:`cl.live.states <concursus_lab.live.states>` fold: a table
of the aggregates the latest batches changed (restated ones, whose past a late delivery
changed, highlighted and on top) and a timeline of the deliveries read, event time against
processing time (a late delivery lies above the others of its moment; the ones that
restated a past state are drawn large and red). Its front end, :class:`LiveBoard`, is an
anywidget (``_live_view.js``) that keeps the rows and points it drew and only adds, moves
and drops what a batch changes: the chart is never drawn again from scratch. The pause
button holds batches in the kernel (the fold goes on); resuming shows them.

Feed it each batch's changes as they come: ``view.update(live.update(frame))``, or
``for changes in live.follow(topic): view.update(changes)``, or let :meth:`LiveView.follow`
run the follow in a thread, so that the kernel stays free to hear the pause button.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import polars as pl

from concursus_lab.exceptions import SchemaError, SourceError
from concursus_lab.live import Changes, LiveStates
from concursus_lab.plot.libraries import lab
from concursus_lab.widgets._base import SummaryWidget
from concursus_lab.widgets._follower import Follower
from concursus_lab.widgets._live_data import batch_points, batch_rows, merged_rows

anywidget = lab("anywidget")
traitlets = lab("traitlets")


class LiveBoard(anywidget.AnyWidget):
    """The front end: the rows, the points, the caption, and the pause button's state."""

    _esm = Path(__file__).with_name("_live_view.js")
    _css = Path(__file__).with_name("_live_view.css")
    rows = traitlets.List([]).tag(sync=True)
    points = traitlets.List([]).tag(sync=True)
    caption = traitlets.Unicode("").tag(sync=True)
    paused = traitlets.Bool(False).tag(sync=True)
    held = traitlets.Int(0).tag(sync=True)


class LiveView(SummaryWidget):
    """A live fold's latest changes (a table) and deliveries (a timeline), kept in place.

    Parameters
    ----------
    live
        The live fold whose batches this shows.
    rows
        Most aggregates in the table (the latest changed).
    points
        Most deliveries on the timeline (the latest read).
    """

    def __init__(self, live: LiveStates, *, rows: int = 20, points: int = 2_000) -> None:
        for name, value in (("rows", rows), ("points", points)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise SchemaError(f"`{name}` must be a positive int, got {value!r}.")
        self.live = live
        self.board = LiveBoard()
        self._limits = (rows, points)
        self._next = 0  # the number of the next point
        self._held: list[tuple[Changes, pl.DataFrame]] = []
        self._shown = 0  # batches shown
        self._restated = 0  # restated aggregates shown, over all batches
        self._lock = threading.Lock()
        self.follower = Follower("cl-live-view")
        self.board.observe(self._paused, names="paused")
        super().__init__([self.board])
        self.add_class("cl-live-view")
        self.board.caption = self._caption()

    # ----------------------------------------------------------------------- feeding

    def update(self, changes: Changes) -> None:
        """Show ``changes``, the batch the live fold folded last (held while paused)."""
        if changes.batch != self.live.batches:
            raise SourceError(
                f"these are the changes of batch {changes.batch}, but the live fold has "
                f"folded {self.live.batches} batches: give the view each batch's changes as "
                "it comes, `view.update(live.update(frame))`, so its deliveries are known."
            )
        deliveries = self.live.deliveries.tail(changes.read) if changes.read else None
        with self._lock:
            self._held.append((changes, deliveries))
            if not self.board.paused:
                self._show()
            else:
                with self.board.hold_sync():
                    self.board.held = len(self._held)
                    self.board.caption = self._caption()

    def follow(self, source: Any, **options: Any) -> threading.Thread:
        """Follow ``source`` with the live fold in a thread, showing each batch; returns the
        thread (:meth:`stop` ends it). ``options`` are :meth:`LiveStates.follow`'s."""
        if self.follower.running:  # before the follow binds anything
            raise SourceError("this view already follows a source; call `view.stop()` first.")
        return self.follower.start(self.live.follow(source, **options), self.update)

    def stop(self, timeout: float | None = None) -> bool:
        """Stop the follow that :meth:`follow` started; True once its thread has ended.

        A follow cannot be interrupted while it waits for records: it stops after the next
        batch it brings, or when its ``idle_timeout`` ends it. ``timeout`` is how long to
        wait for that (None: as long as it takes).
        """
        return self.follower.stop(timeout)

    # ----------------------------------------------------------------------- showing

    @property
    def paused(self) -> bool:
        """True while batches are held rather than shown (the pause button, or set here)."""
        return self.board.paused

    @paused.setter
    def paused(self, value: bool) -> None:
        self.board.paused = bool(value)

    def _paused(self, change: dict) -> None:
        with self._lock:
            if not change["new"]:
                self._show()
            else:
                self.board.caption = self._caption()

    def _show(self) -> None:
        """Show every held batch, in order, in one change of the board's traits."""
        rows, points = list(self.board.rows), list(self.board.points)
        limit_rows, limit_points = self._limits
        for changes, deliveries in self._held:
            new = batch_rows(changes)
            rows = merged_rows(rows, new, limit_rows)
            self._restated += sum(row["restated"] for row in new)
            if deliveries is not None:
                added = batch_points(deliveries, changes, self._next)
                self._next += len(added)
                points = [*points, *added][-limit_points:]
            self._shown = changes.batch
        self._held.clear()
        with self.board.hold_sync():
            self.board.rows = rows
            self.board.points = points
            self.board.held = 0
            self.board.caption = self._caption()

    def _caption(self) -> str:
        held = len(self._held)
        text = (
            f"batch {self._shown:,}: {self._next:,} deliveries shown, "
            f"{self._restated:,} restated states"
        )
        return f"{text}; paused, {held:,} batches held" if self.board.paused else text

    def summary(self) -> str:
        """A short deterministic text: what the table and the timeline show."""
        rows, points = self.board.rows, self.board.points
        restated = sum(1 for row in rows if row["restated"])
        late = sum(1 for point in points if point[5])
        return (
            f"live view of {self.live.summary()}\n{self.board.caption}\n"
            f"table: {len(rows):,} aggregates ({restated:,} restated); timeline: "
            f"{len(points):,} deliveries ({late:,} restating a past state)"
        )


def live_view(live: LiveStates, *, rows: int = 20, points: int = 2_000) -> LiveView:
    """A :class:`LiveView` of ``live``: feed it with ``view.update(changes)`` or
    ``view.follow(source)``.

    >>> import polars as pl
    >>> import concursus_lab as cl
    >>> from concursus_lab.sample import parcel_state, parcel_types
    >>> from concursus_lab.widgets import live_view
    >>> events = cl.sample.parcels(30, seed=3)
    >>> received = pl.col("name") == "receivedAtDepot"  # these arrive late
    >>> live = cl.live.states(parcel_state, types=parcel_types)
    >>> view = live_view(live, rows=5)
    >>> view.update(live.update(events.filter(~received)))
    >>> view.update(live.update(events.filter(received)))
    >>> print(view)
    live view of live parcel states: 30 states from 95 deliveries in 2 batches
    batch 2: 95 deliveries shown, 30 restated states
    table: 5 aggregates (5 restated); timeline: 95 deliveries (30 restating a past state)
    """
    return LiveView(live, rows=rows, points=points)
