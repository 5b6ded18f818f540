"""The latest value of every parameter, per aggregate: time travel with no Python per event.

Many questions need no custom fold: "where is each parcel now?", "which parcels are on
truck LEW-2?". :func:`latest` answers them for every aggregate at once, and :func:`index`
inverts one parameter into Concursus's "lightbulbs by wattage" index, with the same two
time axes and the same duplicate and ordering rules as :func:`~concursus_lab.state_at`:

* ``at`` (exclusive) bounds event time, ``known_at`` (inclusive) bounds processing time;
* deliveries of one identity are one event, the last processed winning (or the first);
* "latest" is by causal order: initial events first, terminal ones last, then event time,
  then stream id. So a value with an older event time that arrives later never overwrites
  a newer one.

A parameter absent from an aggregate's later events keeps its last value; a parameter
whose value is JSON ``null`` counts as absent.

>>> import concursus_lab as cl
>>> from concursus_lab.sample import LoadedOntoTruck, ReceivedAtDepot, parcel_types
>>> events = parcel_types.encode([
...     ReceivedAtDepot("Lewisham", aggregate_id="p1", event_timestamp="2026-03-02 08:00"),
...     LoadedOntoTruck("LEW-2", aggregate_id="p1", event_timestamp="2026-03-02 09:00"),
...     LoadedOntoTruck("LEW-1", aggregate_id="p1", event_timestamp="2026-03-02 08:30",
...                     processing_timestamp="2026-03-02 14:00"),  # older, arrives later
... ])
>>> cl.latest(events).select("aggregate_id", "last_event", "depotId", "truckId").rows()
[('p1', 'loadedOntoTruck', 'Lewisham', 'LEW-2')]

Everything is vectorised (polars and NumPy, no Python per event): rows are sorted once by
a 64-bit hash of their aggregate (checked against a second, independent one: two
aggregates are merged only if both collide), then event time, stream and processing time;
each distinct ``parameters`` text is parsed once, and every value keeps its JSON kind.
"""

from __future__ import annotations

import difflib
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import polars as pl

from concursus_lab.common.time import TimeLike
from concursus_lab.events.types import EventTypes, as_event_types
from concursus_lab.events.upcast import upcast
from concursus_lab.events.upcasters import STORED
from concursus_lab.exceptions import SchemaError
from concursus_lab.frame import conflicts
from concursus_lab.frame.cut import cut
from concursus_lab.frame.identity import check_duplicates
from concursus_lab.frame.keys import gather_rows, string_order
from concursus_lab.frame.order import by_rank, in_identity_order
from concursus_lab.frame.schema import validate
from concursus_lab.timetravel import parameter_values
from concursus_lab.timetravel.buckets import is_bucketed
from concursus_lab.timetravel.latest_buckets import latest_in_buckets
from concursus_lab.timetravel.parameter_values import typed_nulls

_TIME = pl.Datetime("us", "UTC")


def latest(
    events: pl.DataFrame | pl.LazyFrame | Any,
    *,
    at: TimeLike | None = None,
    known_at: TimeLike | None = None,
    duplicates: str = "last",
    types: EventTypes | Sequence[EventTypes] | None = None,
    buckets: int | None = None,
    progress: bool | None = None,
) -> pl.DataFrame:
    """One row per aggregate: its last event and the latest value of each parameter.

    Parameters
    ----------
    events
        A canonical event frame (any number of aggregate types).
    at
        Only events strictly before this event time count (None: all).
    known_at
        Only deliveries processed at or before this time count (None: all).
    duplicates
        ``"last"`` (the last processed delivery of an identity wins) or ``"first"``.
    types
        The :class:`~concursus_lab.EventTypes` (one, or a list) whose upcasters to apply:
        their aggregate types' older events are read as upcast (``docs/versions.md``),
        a split event as its parts. None: parameters as stored.
    buckets
        Answer this many hash buckets of whole aggregates at a time (default: 16 for a
        ``LazyFrame`` or a local store, which are always read so; a frame in memory at once,
        however large: in buckets of itself it took 30-45% more CPU at 10M events for a 13%
        lower peak): the working memory is a bucket's, the answer the same, row for row,
        each column typed over all buckets (:mod:`~concursus_lab.timetravel.latest_buckets`).
    progress
        A bar of buckets when answering in buckets (None: only if it takes a while).

    Returns
    -------
    polars.DataFrame
        ``aggregate_type``, ``aggregate_id``, ``last_event`` (the name of the causally last
        event), ``last_event_timestamp``, ``events`` (events counted), then one column per
        parameter name seen, in alphabetical order; sorted by aggregate. Values keep their
        JSON kind (:mod:`~concursus_lab.timetravel.parameter_values`): a column whose values
        are all strings, booleans, integers within 64 bits or other numbers is ``String``,
        ``Boolean``, ``Int64`` or ``Float64``; any other holds each value's JSON text, so
        ``1``, ``1.0`` and ``"1"`` show as ``'1'``, ``'1.0'`` and ``'"1"'``.

    Examples
    --------
    >>> import concursus_lab as cl
    >>> from concursus_lab.sample import Delivered, LoadedOntoTruck, parcel_types
    >>> events = parcel_types.encode([
    ...     LoadedOntoTruck("LEW-2", aggregate_id="p1", event_timestamp="2026-03-02 09:00"),
    ...     Delivered("dest-7", aggregate_id="p1", event_timestamp="2026-03-02 11:00"),
    ...     LoadedOntoTruck("CAM-1", aggregate_id="p2", event_timestamp="2026-03-02 10:00"),
    ... ])
    >>> cl.latest(events).drop("aggregate_type", "last_event_timestamp").rows()
    [('p1', 'delivered', 2, 'dest-7', 'LEW-2'), ('p2', 'loadedOntoTruck', 1, None, 'CAM-1')]
    >>> cl.latest(events, at="2026-03-02 10:30").select("aggregate_id", "last_event").rows()
    [('p1', 'loadedOntoTruck'), ('p2', 'loadedOntoTruck')]
    """
    if is_bucketed(events, buckets):
        check_duplicates(duplicates, keep_means=None)

        def answer(rows: pl.DataFrame, as_text: frozenset[str]):
            return latest_frame(
                rows, at, known_at, duplicates, as_text=as_text, nulls=False, types=types
            )

        return latest_in_buckets(events, buckets, answer, progress=progress)
    return latest_frame(events, at, known_at, duplicates, types=types)[0]


def latest_frame(
    events: pl.DataFrame,
    at: TimeLike | None,
    known_at: TimeLike | None,
    duplicates: str,
    *,
    only: str | None = None,
    as_text: frozenset[str] = frozenset(),
    nulls: bool = True,
    types: EventTypes | Sequence[EventTypes] | None = None,
) -> tuple[pl.DataFrame, dict[str, list[int]]]:
    """:func:`latest`'s frame (or, with ``only``, its ``aggregate_id`` and ``value`` of
    that parameter) and the kinds each parameter column shows
    (:mod:`~concursus_lab.timetravel.parameter_values`).

    ``as_text`` names columns to give as JSON texts whatever their kinds, and ``nulls=False``
    leaves columns that are only ever null as ``Null``: a Spark bucket's answer, merged with
    the others' before it is typed as one frame would be.
    """
    keyed, kinds = _latest_rows(
        events, at, known_at, duplicates, only=only, as_text=as_text, types=types
    )
    if only is not None:
        out = keyed.select("aggregate_id", pl.col("__p0").alias("value"))
    else:
        out = keyed.select(
            "aggregate_type",
            "aggregate_id",
            pl.col("__name").alias("last_event"),
            pl.col("__ts").cast(_TIME).alias("last_event_timestamp"),
            pl.col("__count").cast(pl.Int64).alias("events"),
            *[pl.col(f"__p{i}").alias(key) for i, key in enumerate(kinds)],
        )
    return (typed_nulls(out) if nulls else out), kinds


def index(
    events: pl.DataFrame,
    parameter: str,
    *,
    at: TimeLike | None = None,
    known_at: TimeLike | None = None,
    duplicates: str = "last",
    types: EventTypes | Sequence[EventTypes] | None = None,
) -> pl.DataFrame:
    """Aggregates grouped by the latest value of one parameter (Concursus's index).

    Returns a frame of ``value`` and ``aggregate_ids`` (sorted list of the ids whose latest
    value it is), sorted by value; aggregates that never had the parameter are left out.
    The time bounds, rules and ``types`` are those of :func:`latest`, and ``value`` is typed
    as its column there: values of different JSON kinds are never one value.

    >>> import concursus_lab as cl
    >>> from concursus_lab.sample import LoadedOntoTruck, parcel_types
    >>> events = parcel_types.encode([
    ...     LoadedOntoTruck(truck, aggregate_id=parcel, event_timestamp=time)
    ...     for truck, parcel, time in [("LEW-2", "p1", "2026-03-02 09:00"),
    ...                                 ("LEW-2", "p2", "2026-03-02 09:30"),
    ...                                 ("CAM-1", "p3", "2026-03-02 10:00"),
    ...                                 ("CAM-1", "p1", "2026-03-02 10:15")]
    ... ])
    >>> cl.index(events, "truckId").rows()
    [('CAM-1', ['p1', 'p3']), ('LEW-2', ['p2'])]
    >>> cl.index(events, "truckId", at="2026-03-02 10:00").rows()
    [('LEW-2', ['p1', 'p2'])]
    >>> cl.index(events, "truck")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    concursus_lab.exceptions.SchemaError: no event has a parameter 'truck' (did you mean ...
    """
    if not isinstance(parameter, str):
        raise SchemaError(f"`parameter` must be a parameter name, got {parameter!r}.")
    out, _ = latest_frame(events, at, known_at, duplicates, only=parameter, types=types)
    return by_value(out)


def by_value(pairs: pl.DataFrame) -> pl.DataFrame:
    """``aggregate_id`` and ``value`` rows as the index: each value and its sorted ids."""
    return (
        pairs.filter(pl.col("value").is_not_null())
        .group_by("value")
        .agg(pl.col("aggregate_id").sort().alias("aggregate_ids"))
        .sort("value")
    )


def _latest_rows(
    events: pl.DataFrame,
    at: TimeLike | None,
    known_at: TimeLike | None,
    duplicates: str,
    *,
    only: str | None,
    as_text: frozenset[str],
    types: EventTypes | Sequence[EventTypes] | None,
) -> tuple[pl.DataFrame, dict[str, list[int]]]:
    """Per aggregate: ids, last name and time, count, and each parameter's latest value
    (``__p<i>`` for the i-th parameter name); and the kinds each parameter column shows."""
    check_duplicates(duplicates, keep_means=None)
    frame = validate(events, check_parameters=False)
    frame = cut(frame, at=at, known_at=known_at)
    frame, duplicates = _upcast(frame, _types(types), duplicates)

    # the distinct parameters texts are coded (polars) and read while the rows are sorted
    # (NumPy), and the aggregates' ids are sorted while their values are picked: each pair
    # releases the GIL (mostly), so it runs on two cores at once
    with ThreadPoolExecutor(1) as pool:
        coding = pool.submit(_read_texts, frame["parameters"])
        keyed = in_identity_order(frame, duplicates)
        conflicts.report(keyed.conflicts)
        order, start, ts = keyed.order, keyed.start, keyed.ts
        del keyed  # its other keys (processing times, stream codes): not needed here
        # causal order within each aggregate: its last row is its causally last event
        order, start = by_rank(order, start, frame["characteristics"].to_numpy())
        n = len(order)
        n_groups = int(start.sum())
        firsts = np.flatnonzero(start)
        first_rows = order[firsts]
        last_rows = order[np.r_[firsts[1:], n] - 1] if n_groups else firsts
        last_ts = ts[last_rows]
        del ts
        aggregate_ids = gather_rows(frame["aggregate_id"], first_rows)
        low, high = frame["aggregate_type"].min(), frame["aggregate_type"].max()
        if low != high:
            aggregate_types = gather_rows(frame["aggregate_type"], first_rows)
            ids = (aggregate_types, aggregate_ids)
        else:
            aggregate_types = pl.repeat(low or "", n_groups, dtype=pl.String, eager=True)
            ids = (aggregate_ids,)
        # an index groups by value: only latest's rows need the order of the ids
        sorting = pool.submit(string_order, *ids) if only is None else None
        text_code, texts, values = coding.result()
        keys = values.keys
        if only is not None:
            if only not in keys:
                near = difflib.get_close_matches(only, keys, 1)
                hint = f" (did you mean {near[0]!r}?)" if near else ""
                seen = ", ".join(repr(k) for k in keys) or "none"
                raise SchemaError(
                    f"no event has a parameter {only!r}{hint}. Parameters seen: {seen}."
                )
            keys = [only]
        sorted_text = text_code[order]
        del text_code
        segment = np.cumsum(start, dtype=np.int32 if n < 2**31 else np.int64)
        segment -= 1
        columns: dict[str, pl.Series] = {}
        kinds: dict[str, list[int]] = {}
        for i, key in enumerate(keys):
            picked = _picked(values.holding[key], len(texts), sorted_text, segment, n_groups)
            columns[f"__p{i}"], kinds[key] = values.column(key, picked, as_text=key in as_text)
        counts = np.diff(np.r_[firsts, n]) if n_groups else firsts
        keyed = pl.DataFrame(
            {
                "aggregate_type": aggregate_types,
                "aggregate_id": aggregate_ids,
                "__name": gather_rows(frame["name"], last_rows),
                "__ts": pl.Series(last_ts, dtype=pl.Int64),
                "__count": pl.Series(counts, dtype=pl.Int64),
                **columns,
            }
        )
        by_id = sorting.result() if sorting is not None else None
    if by_id is not None and keyed.height > 1:
        keyed = keyed[by_id]
    return keyed, kinds


def _types(types: object) -> list[EventTypes]:
    if types is None:
        return []
    listed = [types] if isinstance(types, EventTypes) else list(types)  # type: ignore[call-overload]
    return [as_event_types(t) for t in listed]


def _upcast(frame: pl.DataFrame, types: list[EventTypes], duplicates: str):
    """``frame`` with the older events of ``types`` upcast, once the deliveries that count
    are chosen (conflicts reported), and the ``duplicates`` rule left to apply."""
    with_upcasters = [t for t in types if t.upcasters]
    if not with_upcasters:
        return frame, duplicates
    keyed = in_identity_order(frame, duplicates)
    conflicts.report(keyed.conflicts)
    counted = np.zeros(frame.height, dtype=bool)
    counted[keyed.order] = True
    frame = frame.filter(pl.Series(counted))
    for t in with_upcasters:
        frame = upcast(t, frame).frame.drop(STORED)
    return frame, "keep"  # a split event's parts share its identity: keep them all


def _picked(
    holding_texts: np.ndarray,
    n_texts: int,
    sorted_text: np.ndarray,
    segment: np.ndarray,
    n_groups: int,
) -> np.ndarray:
    """Per aggregate, which of the texts holding a parameter (a position in
    ``holding_texts``) gives its latest value: of the rows holding it, the causally last
    (-1: none)."""
    position = np.full(n_texts, -1, dtype=np.int64)
    position[holding_texts] = np.arange(len(holding_texts))
    held = position[sorted_text]
    holding = np.flatnonzero(held >= 0)
    picked = np.full(n_groups, -1, dtype=np.int64)
    if len(holding):
        groups = segment[holding]
        bounds = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
        last = np.r_[bounds[1:], len(holding)] - 1
        picked[groups[bounds]] = held[holding[last]]
    return picked


def _read_texts(column: pl.Series) -> tuple[np.ndarray, pl.Series, parameter_values.Values]:
    """:func:`_text_codes`, and every parameter's values in the distinct texts."""
    code, texts = _text_codes(column)
    return code, texts, parameter_values.read(texts)


def _text_codes(column: pl.Series) -> tuple[np.ndarray, pl.Series]:
    """A dense code per row and the distinct texts (the text of code i at position i).

    Texts are told apart by a 64-bit hash (joined back to the rows: 3x faster than a
    categorical at ten million rows); a second, independent hash must then agree within
    each code, so two texts share a code only if both hashes collide, and then a
    categorical decides instead.
    """
    if column.len() == 0:
        return np.zeros(0, dtype=np.int64), pl.Series([], dtype=pl.String)
    first = column.hash(17)
    distinct = first.unique(maintain_order=True)
    some_row = first.arg_unique().to_numpy()  # the first row holding each code's text
    code = first.replace_strict(distinct, pl.int_range(distinct.len(), eager=True))
    del first
    code = code.to_numpy().astype(np.int64, copy=False)
    second = column.hash(31).to_numpy()
    if (second[some_row][code] != second).any():
        return _categorical_codes(column)
    return code, column.gather(pl.Series(some_row))


def _categorical_codes(column: pl.Series) -> tuple[np.ndarray, pl.Series]:
    """:func:`_text_codes` by a categorical with its own, temporary category list (or, on
    older polars, sorted distinct texts looked up row by row)."""
    categories = getattr(pl, "Categories", None)
    if categories is None:  # pragma: no cover - polars < 1.32
        distinct = column.unique().sort()
        return distinct.search_sorted(column).to_numpy().astype(np.int64), distinct
    coded = column.cast(pl.Categorical(categories(f"concursus_lab_{uuid.uuid4().hex}")))
    distinct = coded.unique()
    physical = distinct.to_physical().to_numpy().astype(np.int64)
    lookup = np.full(int(physical.max()) + 1, -1, dtype=np.int64)
    lookup[physical] = np.arange(len(physical))
    return lookup[coded.to_physical().to_numpy()], distinct.cast(pl.String)
