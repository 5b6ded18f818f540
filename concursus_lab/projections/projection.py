"""Projections: prototype a view of the events before it runs anywhere else.

A projection turns an event history into a *view* (a frame: parcels delivered per depot per
day, each truck's load). :func:`project` runs one over a history, with the two time bounds
of :func:`~concursus_lab.state_at`, and returns the view frame. Two kinds:

* **a plain function** ``events frame -> view frame``, vectorised with polars. It receives
  the events known at ``known_at`` that happened before ``at``, one delivery per event
  identity (the last processed wins, as a Cassandra upsert does), **in arrival order**
  (processing time, then row order): the order a consumer of the stream would have seen
  them. :func:`projection` wraps a function to say that it wants every delivery instead
  (``duplicates="keep"``, as a stream consumer without an idempotency filter sees them),
  or which columns identify a row of its view (``key=``, used by :func:`~concursus_lab.diff`);
* **a fold** of typed events, built by :func:`fold`: a reducer ``(state, event) -> state``
  applied per *key*, where the key is any parameter (``key="truckId"``: a truck's load,
  across parcels) or ``"aggregate_id"``.

A fold follows :func:`~concursus_lab.state_at`'s rules, so that ``key="aggregate_id"`` gives
exactly the states ``state_at`` gives; :mod:`concursus_lab.projections.keyed` states them.

Decoding is the one :meth:`EventTypes.decode <concursus_lab.EventTypes.decode>` and
:func:`~concursus_lab.state_at` use (vectorised; Python runs only the reducer and builds the
instances). Events that cannot be decoded are never dropped silently: :func:`project` warns
with their count and reasons (``Fold.undecodable(events)`` lists them), or raises
:class:`~concursus_lab.DecodeError` for a fold built with ``strict=True``.

>>> import concursus_lab as cl
>>> import polars as pl
>>> events = cl.sample.fixture("messy")
>>> def received_per_depot(events: pl.DataFrame) -> pl.DataFrame:
...     received = events.filter(pl.col("name") == "receivedAtDepot")
...     depot = pl.col("parameters").str.json_path_match("$.depotId").alias("depot")
...     return received.group_by(depot).len("parcels").sort("depot")
>>> cl.project(events, received_per_depot).rows()
[('Brixton', 1), ('Camden', 1), ('Croydon', 1), ('Hackney', 1), ('Lewisham', 1)]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import polars as pl

from concursus_lab.common.time import TimeLike
from concursus_lab.events.types import EventTypes, as_event_types
from concursus_lab.exceptions import ConcursusLabError, ProjectionError, SchemaError
from concursus_lab.frame.cut import cut
from concursus_lab.frame.identity import by_delivery, check_duplicates, resolve
from concursus_lab.frame.schema import validate
from concursus_lab.projections.keyed import fold_view
from concursus_lab.projections.views import as_view, check_fold_key, key_columns
from concursus_lab.timetravel.reducer import Reducer, check_reducer
from concursus_lab.timetravel.state_columns import state_class, warn_shapeless

ViewFunction = Callable[[pl.DataFrame], pl.DataFrame]


# ------------------------------------------------------------------------ the two kinds


@dataclasses.dataclass(frozen=True, eq=False)
class Projection:
    """A plain function ``events -> view``, with how it wants the events; see :func:`projection`.

    Calling it runs :func:`project`: ``p(events, at=..., known_at=...)``.

    Attributes
    ----------
    function
        The function: a polars frame of events in, a polars frame (the view) out.
    duplicates
        ``"last"``, ``"first"`` or ``"keep"`` (every delivery): what it is given.
    key
        The columns that identify a row of the view (None: not declared).
    name
        What to call it (the function's name by default).
    """

    function: ViewFunction
    duplicates: str = "last"
    key: tuple[str, ...] | None = None
    name: str = ""

    def __call__(
        self,
        events: pl.DataFrame,
        *,
        at: TimeLike | None = None,
        known_at: TimeLike | None = None,
    ) -> pl.DataFrame:
        return project(events, self, at=at, known_at=known_at)

    def __repr__(self) -> str:
        key = f", key={list(self.key)!r}" if self.key else ""
        return f"Projection({self.name!r}, duplicates={self.duplicates!r}{key})"

    def _view(self, frame: pl.DataFrame) -> pl.DataFrame:
        try:
            out = self.function(frame)
        except ConcursusLabError:
            raise
        except Exception as exc:
            raise ProjectionError(
                f"projection {self.name!r} raised {type(exc).__name__}: {exc} (given "
                f"{frame.height:,} events; a view must also handle an empty history)"
            ) from exc
        return as_view(out, self.name, self.key)


@dataclasses.dataclass(frozen=True, eq=False)
class Fold:
    """A fold of typed events per key; build it with :func:`fold`.

    Calling it runs :func:`project`: ``f(events, at=..., known_at=...)``.

    Attributes
    ----------
    reducer
        A plain function ``(state, event) -> state``.
    types
        The :class:`~concursus_lab.EventTypes` it folds.
    key
        The parameter (or ``"aggregate_id"``) whose value keys the fold: the view's first
        column.
    initial
        Each key's state before its first event (copied per key unless immutable).
    duplicates
        ``"last"``, ``"first"`` or ``"keep"``, as for :func:`~concursus_lab.state_at`.
    strict
        Raise :class:`~concursus_lab.DecodeError` on undecodable events instead of warning.
    name
        What to call it (the reducer's name by default).
    """

    reducer: Reducer
    types: EventTypes
    key: str = "aggregate_id"
    initial: Any = None
    duplicates: str = "last"
    strict: bool = False
    name: str = ""

    def __call__(
        self,
        events: pl.DataFrame,
        *,
        at: TimeLike | None = None,
        known_at: TimeLike | None = None,
    ) -> pl.DataFrame:
        return project(events, self, at=at, known_at=known_at)

    def __repr__(self) -> str:
        return (
            f"Fold({self.name!r}, types={self.types.aggregate_type!r}, key={self.key!r}, "
            f"duplicates={self.duplicates!r})"
        )

    def undecodable(self, events: pl.DataFrame) -> pl.DataFrame:
        """The rows of ``events`` of this fold's aggregate type that cannot be decoded,
        with a ``reason`` column."""
        return self.types.decode(events).undecodable

    def _view(self, frame: pl.DataFrame) -> pl.DataFrame:
        return fold_view(self, frame)


AnyProjection = Projection | Fold | ViewFunction


def projection(
    function: ViewFunction | None = None,
    *,
    duplicates: str = "last",
    key: str | Sequence[str] | None = None,
    name: str | None = None,
) -> Any:
    """A plain function as a :class:`Projection`, saying what it wants; also a decorator.

    Parameters
    ----------
    function
        ``events frame -> view frame``. Without it, returns a decorator.
    duplicates
        What the function is given: ``"last"`` (default: one delivery per event identity,
        the last processed, as Cassandra keeps it), ``"first"``, or ``"keep"`` (every
        delivery, as a stream consumer sees them).
    key
        The column(s) that identify a row of the view; :func:`~concursus_lab.diff`,
        :func:`~concursus_lab.bisect` and :func:`~concursus_lab.chaos` compare views by it.
    name
        What to call it (default: the function's ``__name__``).

    Returns
    -------
    Projection
        Callable like the function: ``p(events, at=..., known_at=...)`` is
        ``cl.project(events, p, ...)``.

    Examples
    --------
    >>> import polars as pl
    >>> import concursus_lab as cl
    >>> @cl.projection(duplicates="keep", key="name")
    ... def messages(events: pl.DataFrame) -> pl.DataFrame:
    ...     return events.group_by("name").len("messages").sort("name")
    >>> messages
    Projection('messages', duplicates='keep', key=['name'])
    >>> messages(cl.sample.fixture("messy")).rows()  # doctest: +NORMALIZE_WHITESPACE
    [('delivered', 4), ('deliveryFailed', 2), ('loadedOntoTruck', 6),
     ('receivedAtDepot', 5)]
    """
    checked = check_duplicates(duplicates)
    columns = key_columns(key)
    if function is None:
        return lambda f: projection(f, duplicates=checked, key=columns, name=name)
    if isinstance(function, Projection):
        function = function.function
    if isinstance(function, Fold) or not callable(function):
        raise SchemaError(
            f"`function` must be a function events -> view frame, got {function!r}. "
            "A fold is built with cl.fold(reducer, types=..., key=...) instead."
        )
    return Projection(function, checked, columns, name or _name_of(function))


def fold(
    reducer: Reducer,
    *,
    types: EventTypes,
    key: str = "aggregate_id",
    initial: Any = None,
    duplicates: str = "last",
    strict: bool = False,
    name: str | None = None,
) -> Fold:
    """A projection that folds typed events per key: a truck's load, a depot's day.

    The rules are this module's (see its docstring): each aggregate's events in causal
    order, with :func:`~concursus_lab.state_at`'s creation rules; each event belongs to the
    key its aggregate last named; each key's events folded in event-time order.

    Parameters
    ----------
    reducer
        A plain function ``(state, event) -> state``; events are instances of the classes
        declared in ``types``. A key whose state ends as None has no row in the view.
    types
        The :class:`~concursus_lab.EventTypes` of the aggregate type folded; rows of other
        aggregate types are ignored.
    key
        A parameter declared by at least one event type (its values must be strings,
        numbers, booleans, dates or times), or ``"aggregate_id"`` (one state per aggregate:
        the states :func:`~concursus_lab.state_at` gives).
    initial
        Every key's state before its first event (default None). A mutable value (a dict,
        a list) is copied for each key.
    duplicates
        ``"last"`` (default), ``"first"`` or ``"keep"``, as for ``state_at``.
    strict
        Raise :class:`~concursus_lab.DecodeError` when an event cannot be decoded, instead
        of warning and leaving it out.
    name
        What to call it (default: the reducer's ``__name__``).

    Returns
    -------
    Fold
        Run it with :func:`project` (or call it). Its view has the key column, the state
        (a dataclass's fields, a named tuple's, or one ``state`` column), then
        ``events_applied`` and ``last_event_timestamp``, one row per key, sorted by key.

    Examples
    --------
    >>> import concursus_lab as cl
    >>> from concursus_lab.sample import (Delivered, LoadedOntoTruck, ReceivedAtDepot,
    ...                                     parcel_types)
    >>> def on_board(count, event):
    ...     match event:
    ...         case LoadedOntoTruck():
    ...             return count + 1
    ...         case Delivered():
    ...             return count - 1
    ...     return count
    >>> load = cl.fold(on_board, types=parcel_types, key="truckId", initial=0)
    >>> events = parcel_types.encode([
    ...     ReceivedAtDepot("Lewisham", aggregate_id="p1", event_timestamp="2026-03-02 08:00"),
    ...     LoadedOntoTruck("LEW-1", aggregate_id="p1", event_timestamp="2026-03-02 09:00"),
    ...     LoadedOntoTruck("LEW-1", aggregate_id="p2", event_timestamp="2026-03-02 09:10"),
    ...     Delivered("d-1", aggregate_id="p1", event_timestamp="2026-03-02 11:00"),  # on LEW-1
    ... ])
    >>> cl.project(events, load).select("truckId", "state", "events_applied").rows()
    [('LEW-1', 1, 3)]
    >>> cl.project(events, load, at="2026-03-02 10:00")["state"].to_list()
    [2]
    """
    types = as_event_types(types)
    check_reducer(reducer)
    if isinstance(reducer, (Projection, Fold)):
        raise SchemaError("`reducer` is already a projection; pass its reducer function.")
    check_fold_key(types, key)
    if not isinstance(strict, bool):
        raise SchemaError(f"`strict` must be True or False, got {strict!r}.")
    return Fold(
        reducer,
        types,
        key,
        initial,
        check_duplicates(duplicates),
        strict,
        name or _name_of(reducer),
    )


# ------------------------------------------------------------------------------ project


def project(
    events: pl.DataFrame,
    projection: AnyProjection,
    *,
    at: TimeLike | None = None,
    known_at: TimeLike | None = None,
) -> pl.DataFrame:
    """Run a projection over the events that happened before ``at``, as known at ``known_at``.

    Parameters
    ----------
    events
        A canonical event frame (every delivery, or one per event: both work).
    projection
        A plain function ``events -> view`` (given one delivery per event, the last
        processed), a :class:`Projection` made by :func:`projection` (which says what it is
        given), or a :class:`Fold` made by :func:`fold`.
    at
        Only events that happened strictly before this event time count (None: all).
    known_at
        Only deliveries processed at or before this time count (None: all). Duplicates are
        resolved among those, as ``state_at`` does.

    Returns
    -------
    polars.DataFrame
        The view. ``events`` is never changed.

    Raises
    ------
    ProjectionError
        The function raised, or did not return a frame.

    Examples
    --------
    >>> import polars as pl
    >>> import concursus_lab as cl
    >>> events = cl.sample.fixture("messy")
    >>> count = lambda frame: frame.select(pl.len().alias("events"))
    >>> cl.project(events, count).item(), cl.project(events, cl.projection(
    ...     count, duplicates="keep")).item()
    (15, 17)
    >>> cl.project(events, count, at="2026-03-02 12:00", known_at="2026-03-02 10:00").item()
    8
    """
    chosen = as_projection(projection)
    frame = validate(events, check_parameters=False)
    view = chosen._view(bounded(frame, chosen.duplicates, at=at, known_at=known_at))
    if isinstance(chosen, Fold):  # no state, and nothing says its shape: say so
        kind = state_class(chosen.reducer, chosen.initial)
        warn_shapeless(view, chosen.reducer, kind, ", or build the fold with initial= a state")
    return view


def as_projection(projection: Any, name: str = "projection") -> Projection | Fold:
    """``projection`` as a :class:`Projection` or :class:`Fold` (a function is wrapped)."""
    if isinstance(projection, (Projection, Fold)):
        return projection
    if callable(projection):
        return Projection(projection, "last", None, _name_of(projection))
    raise SchemaError(
        f"`{name}` must be a function events -> view frame, cl.projection(...) or "
        f"cl.fold(...), got {projection!r}."
    )


def view_key(projection: Projection | Fold) -> tuple[str, ...] | None:
    """The columns that identify a row of the projection's view, if it says."""
    if isinstance(projection, Fold):
        return (projection.key,)
    return projection.key


def bounded(
    frame: pl.DataFrame,
    duplicates: str,
    *,
    at: TimeLike | None = None,
    known_at: TimeLike | None = None,
) -> pl.DataFrame:
    """Deliveries that happened before ``at`` and were known at ``known_at``, duplicates
    resolved as asked, in arrival order (processing time, then row order)."""
    return resolve(by_delivery(cut(frame, at=at, known_at=known_at)), duplicates)


def _name_of(function: Any) -> str:
    return getattr(function, "__name__", None) or type(function).__name__
