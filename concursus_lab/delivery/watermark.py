"""How long to wait before trusting a history: a watermark simulator and its recommender.

A stream processor cannot wait forever for late events. A *bounded-out-of-orderness*
watermark (Flink's ``WatermarkStrategy.forBoundedOutOfOrderness``) declares, as events
arrive, "nothing older than the newest event time seen, minus a bound, is still to come";
whatever arrives behind it is late. :func:`watermark` replays a history in arrival order
under such a watermark and says what every event would have met;
:func:`recommend_watermark` finds the smallest bound that keeps a share of events on time.

The model, exactly:

* **Arrival order** is processing time, ties broken by ``kafka_offset`` when the frame has
  one, then by row position.
* **Partitions.** Each partition (``by``, by default ``kafka_partition``) keeps its own
  watermark: the largest event time it has delivered so far minus ``max_out_of_orderness``.
  The overall watermark is the smallest of them, so a slow partition holds every other one
  back, and a partition that has delivered nothing yet holds the watermark back entirely.
  A frame without the ``by`` column (a local store, Cassandra) is replayed as one partition.
* **Idleness.** With ``idle_timeout``, a partition that has delivered nothing for longer than
  that (in processing time) is left out of the minimum until it delivers again. The overall
  watermark never moves backwards, also when an idle partition wakes up behind it.
* **Classification.** Each event is judged against the watermark in force when it arrives
  (computed from the events before it): *on time* when its event time is at or after the
  watermark, *late* when it is behind by at most ``allowed_lateness`` (a window would still
  update its result), *dropped* when it is further behind.
* **Added wait.** An on-time event's result is final only once the watermark has passed its
  event time; the wait is the processing time from its arrival to that moment. The watermark
  is re-evaluated each time an event has been processed (idleness included), so it moves
  only when events arrive: in a sparse stream the wait is mostly the gap to the next event.

>>> import concursus_lab as cl
>>> events = cl.sample.parcels(500, seed=1)
>>> result = cl.watermark(events, max_out_of_orderness="2m")
>>> result.events.columns[-2:]
['watermark', 'status']
>>> result.on_time + result.late + result.dropped == events.height
True
>>> print(cl.recommend_watermark(events, keep=0.95))  # doctest: +NORMALIZE_WHITESPACE
to keep 95.0% of 1,621 events on time: max_out_of_orderness=3min 35.677s (one partition:
the frame has no `kafka_partition` column)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from concursus_lab.common.time import (
    DurationLike,
    TimeLike,
    duration,
    exact,
    optional_utc,
    to_timedelta,
)
from concursus_lab.exceptions import SchemaError
from concursus_lab.frame.schema import TIME, validate
from concursus_lab.timetravel.state_at import state_at

#: What happened to each event, in the ``status`` column.
STATUSES: tuple[str, ...] = ("on_time", "late", "dropped")
STATUS = pl.Enum(list(STATUSES))

#: The column that names partitions by default: the Kafka partition a record came from.
DEFAULT_BY = "kafka_partition"

#: More partitions than this is a sign that ``by`` names a key, not a source partition.
MAX_PARTITIONS = 1024

_MIN = np.iinfo(np.int64).min
_MAX = np.iinfo(np.int64).max


@dataclass(frozen=True)
class WatermarkReplay:
    """What :func:`watermark` found; prints as a short deterministic text.

    Attributes
    ----------
    events
        The input frame (canonical columns first, extras kept, rows in input order) with
        ``watermark`` (the overall watermark when the event arrived; null while there was
        none) and ``status`` (``"on_time"``, ``"late"`` or ``"dropped"``, an Enum) added.
    by_partition
        One row per partition: the ``by`` key (or ``partition`` = 0 for one partition),
        ``events``, ``on_time``, ``late``, ``dropped``.
    added_wait
        ``{"p50", "p90", "p99", "max"}`` of the wait of on-time events for the watermark to
        pass their event time (timedeltas; None when no event was ever passed).
    unreleased
        On-time events that the watermark had not passed when the history ended.
    wrong_states, aggregates
        With a reducer: aggregates whose state at ``at`` differs when dropped events are
        ignored, out of ``aggregates`` with a state either way; else None.
    """

    events: pl.DataFrame
    max_out_of_orderness: dt.timedelta
    allowed_lateness: dt.timedelta
    idle_timeout: dt.timedelta | None
    by: str | None
    note: str
    by_partition: pl.DataFrame
    added_wait: dict[str, dt.timedelta | None]
    unreleased: int
    wrong_states: int | None = None
    aggregates: int | None = None
    at: dt.datetime | None = None

    @property
    def on_time(self) -> int:
        """Events at or after the watermark when they arrived."""
        return int(self.by_partition["on_time"].sum())

    @property
    def late(self) -> int:
        """Events behind the watermark by at most ``allowed_lateness``."""
        return int(self.by_partition["late"].sum())

    @property
    def dropped(self) -> int:
        """Events behind the watermark by more than ``allowed_lateness``."""
        return int(self.by_partition["dropped"].sum())

    def __str__(self) -> str:
        total = self.events.height
        idle = f", idle after {exact(self.idle_timeout)}" if self.idle_timeout else ""
        lines = [
            f"watermark: {exact(self.max_out_of_orderness)} out-of-orderness, "
            f"{exact(self.allowed_lateness)} allowed lateness, {_partitions(self)}{idle}",
            f"{total:,} event{'' if total == 1 else 's'}: {self.on_time:,} on time, "
            f"{self.late:,} late, {self.dropped:,} dropped ({_share(self.dropped, total)})",
        ]
        if any(v is not None for v in self.added_wait.values()) or self.unreleased:
            waits = ", ".join(f"{k} {duration(v)}" for k, v in self.added_wait.items())
            lines.append(
                f"added wait of on-time events: {waits}; "
                f"{self.unreleased:,} not yet passed by the watermark at the end"
            )
        if self.wrong_states is not None:
            when = "at the end" if self.at is None else f"at {self.at:%Y-%m-%d %H:%M:%S} UTC"
            lines.append(
                f"states {when}: {self.wrong_states:,} of {self.aggregates:,} aggregates "
                "wrong if dropped events are ignored"
            )
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_markdown_(self) -> str:
        return "```\n" + str(self) + "\n```"


@dataclass(frozen=True)
class WatermarkRecommendation:
    """What :func:`recommend_watermark` found; ``.bound`` is the answer.

    Attributes
    ----------
    bound
        The smallest ``max_out_of_orderness`` that keeps ``keep`` of all events on time.
    keep
        The share asked for.
    events
        How many events (deliveries) were replayed.
    by_partition
        One row per partition: the ``by`` key (or ``partition``), ``events``, ``bound`` (the
        bound that partition alone would need to keep ``keep`` of its events on time, a
        Duration), ``on_time`` (its events on time at the recommended bound, under the
        overall watermark) and ``share`` (``on_time / events``).
    """

    bound: dt.timedelta
    keep: float
    events: int
    by: str | None
    note: str
    idle_timeout: dt.timedelta | None
    by_partition: pl.DataFrame

    def __str__(self) -> str:
        text = (
            f"to keep {self.keep:.1%} of {self.events:,} events on time: "
            f"max_out_of_orderness={exact(self.bound)} ({_partitions(self)}"
        )
        if self.by is not None and self.by_partition.height > 1:
            alone = self.by_partition["bound"]
            text += f"; alone they would need {exact(alone.min())} to {exact(alone.max())}"
        if self.idle_timeout:
            text += f"; idle after {exact(self.idle_timeout)}"
        return text + ")"

    def __repr__(self) -> str:
        return str(self)

    def _repr_markdown_(self) -> str:
        return "```\n" + str(self) + "\n```"


def watermark(
    events: pl.DataFrame,
    max_out_of_orderness: DurationLike,
    allowed_lateness: DurationLike = dt.timedelta(0),
    *,
    by: str | None = DEFAULT_BY,
    idle_timeout: DurationLike | None = None,
    reducer: Callable[[Any, Any], Any] | None = None,
    types: Any = None,
    at: TimeLike | None = None,
) -> WatermarkReplay:
    """Replay ``events`` in arrival order under a bounded-out-of-orderness watermark.

    See this module's docstring for the exact model. Pass every delivery
    (``source.events(duplicates="keep")``): a consumer sees repeats too. Fully vectorised:
    the cost is one pass over the events per partition.

    Parameters
    ----------
    events
        A canonical event frame; extra columns (``kafka_partition``, ``kafka_offset``) are
        used when present and kept.
    max_out_of_orderness
        The bound: how far behind the newest event time seen an event may be and still be
        on time. A ``timedelta`` or a text such as ``"90s"``, ``"2m"``, ``"1h30m"``.
        :func:`recommend_watermark` suggests one.
    allowed_lateness
        How far behind the watermark an event may be and still count (as *late*) rather
        than be *dropped*. Default 0: everything behind is dropped.
    by
        The column naming partitions, each with its own watermark; the overall watermark is
        their minimum. The default ``"kafka_partition"`` falls back to one partition when
        the frame has no such column (a local store or Cassandra: events as one stream in
        processing order), and the result says so. None means one partition; any other
        missing column is an error.
    idle_timeout
        Leave a partition out of the minimum after it has delivered nothing for this long
        (processing time). None (default): a silent partition holds the watermark back.
    reducer, types, at
        Given a reducer (and the event ``types`` it folds), also count the aggregates whose
        state at event time ``at`` (None: with no bound) would be wrong if dropped events
        were ignored, with :func:`concursus_lab.state_at`.

    Returns
    -------
    WatermarkReplay
        ``.events`` (with ``watermark`` and ``status``), the counts, ``.by_partition``, the
        added wait and, given a reducer, ``.wrong_states``.

    Examples
    --------
    Five events, given as (event second, processing second), in arrival order:

    >>> import datetime as dt
    >>> import polars as pl
    >>> import concursus_lab as cl
    >>> def stream(*times):
    ...     t0 = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
    ...     at = lambda seconds: [t0 + dt.timedelta(seconds=s) for s in seconds]
    ...     return cl.sample.parcels(len(times), seed=1).head(len(times)).with_columns(
    ...         event_timestamp=pl.Series(at(e for e, _ in times)),
    ...         processing_timestamp=pl.Series(at(p for _, p in times)),
    ...     )
    >>> history = stream(
    ...     (10, 11),
    ...     (20, 21),  # the watermark is now 20 - 5 = 15 s
    ...     (15, 22),  # at the watermark: on time
    ...     (12, 23),  # 3 s behind it, within the allowed lateness: late
    ...     (1, 24),  # 14 s behind it: dropped
    ... )
    >>> result = cl.watermark(history, max_out_of_orderness="5s", allowed_lateness="3s")
    >>> result.events["status"].to_list()
    ['on_time', 'on_time', 'on_time', 'late', 'dropped']
    >>> print(result)  # doctest: +NORMALIZE_WHITESPACE
    watermark: 5s out-of-orderness, 3s allowed lateness, one partition: the frame has no
    `kafka_partition` column
    5 events: 3 on time, 1 late, 1 dropped (20.00%)
    added wait of on-time events: p50 10.0s, p90 10.0s, p99 10.0s, max 10.0s; 2 not yet
    passed by the watermark at the end

    The first event waited 10 s, until the second moved the watermark past it; nothing came
    after the third to move it past the other two.
    """
    bound = to_timedelta(max_out_of_orderness, "max_out_of_orderness")
    allowed = to_timedelta(allowed_lateness, "allowed_lateness")
    idle = None if idle_timeout is None else to_timedelta(idle_timeout, "idle_timeout")
    when = optional_utc(at, "at")
    if reducer is None and (types is not None or when is not None):
        raise SchemaError(
            "`types` and `at` only matter with a `reducer`: pass reducer=... to count the "
            "states that dropped events would make wrong, or leave them out."
        )
    frame, stream = _prepare(events, by)
    n = len(stream.event)
    newest = _replay(stream, idle)[0]
    after = np.where(newest == _MIN, _MIN, newest - _micros(bound))  # nondecreasing
    before = _shift(after)  # the watermark each event met on arrival
    behind = np.where(before == _MIN, 0, before - stream.event)
    code = np.where(behind <= 0, 0, np.where(behind <= _micros(allowed), 1, 2)).astype(np.int8)

    # added wait: the first event after which the watermark has passed the event time
    on_time = np.flatnonzero(code == 0)
    passed = np.searchsorted(after, stream.event[on_time], side="right")
    released = passed < n
    waits = stream.processed[passed[released]] - stream.processed[on_time[released]]
    added_wait = _percentiles(waits)

    rows = np.empty(n, np.int64)
    rows[stream.order] = np.arange(n)  # input row -> arrival position
    marks = pl.Series("watermark", before[rows], pl.Int64)
    out = frame.with_columns(
        pl.when(pl.lit(marks) != _MIN).then(pl.lit(marks)).cast(TIME).alias("watermark"),
        pl.Series("status", STATUSES, dtype=STATUS).gather(code[rows]).alias("status"),
    )
    counts = pl.DataFrame(
        {
            "events": np.bincount(stream.code, minlength=stream.partitions),
            **{
                status: np.bincount(stream.code[code == k], minlength=stream.partitions)
                for k, status in enumerate(STATUSES)
            },
        },
        schema={c: pl.Int64 for c in ("events", *STATUSES)},
    )
    result = WatermarkReplay(
        events=out,
        max_out_of_orderness=bound,
        allowed_lateness=allowed,
        idle_timeout=idle,
        by=stream.by,
        note=stream.note,
        by_partition=pl.concat([stream.labels.to_frame(), counts], how="horizontal"),
        added_wait=added_wait,
        unreleased=int((~released).sum()),
        at=when,
    )
    if reducer is None:
        return result
    wrong, aggregates = _wrong_states(out, reducer, types, when)
    return dataclasses.replace(result, wrong_states=wrong, aggregates=aggregates)


def recommend_watermark(
    events: pl.DataFrame,
    keep: float = 0.999,
    *,
    by: str | None = DEFAULT_BY,
    idle_timeout: DurationLike | None = None,
) -> WatermarkRecommendation:
    """The smallest ``max_out_of_orderness`` that keeps ``keep`` of the events on time.

    Exact, not searched: under the model of :func:`watermark`, an event is on time exactly
    when the bound is at least how far the (partition-combined) newest event time was ahead
    of it on arrival, so the answer is a quantile of those distances (the smallest one
    that reaches ``keep``). Use ``.bound``; ``.by_partition`` shows what each partition
    alone would need and how it fares under the recommended bound.

    Parameters
    ----------
    events
        A canonical event frame, every delivery (``source.events(duplicates="keep")``).
    keep
        The share of events that must be on time, in (0, 1].
    by, idle_timeout
        As for :func:`watermark` (the same fallback when the frame has no
        ``kafka_partition`` column).

    Examples
    --------
    >>> import datetime as dt
    >>> import polars as pl
    >>> import concursus_lab as cl
    >>> def at(*seconds):
    ...     t0 = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
    ...     return pl.Series([t0 + dt.timedelta(seconds=s) for s in seconds])
    >>> history = cl.sample.parcels(4, seed=1).head(4).with_columns(
    ...     event_timestamp=at(10, 20, 12, 21), processing_timestamp=at(11, 21, 22, 23)
    ... )
    >>> advice = cl.recommend_watermark(history, keep=1.0)
    >>> advice.bound  # "c" arrived 8 s behind the newest event time, 20 s
    datetime.timedelta(seconds=8)
    >>> cl.watermark(history, advice.bound).dropped
    0
    >>> print(cl.recommend_watermark(history, keep=0.75))  # doctest: +NORMALIZE_WHITESPACE
    to keep 75.0% of 4 events on time: max_out_of_orderness=0s (one partition: the frame has
    no `kafka_partition` column)
    """
    if isinstance(keep, bool) or not isinstance(keep, int | float) or not 0 < keep <= 1:
        raise SchemaError(f"`keep` must be a share of events in (0, 1], e.g. 0.999, got {keep!r}.")
    idle = None if idle_timeout is None else to_timedelta(idle_timeout, "idle_timeout")
    _, stream = _prepare(events, by)
    newest, own = _replay(stream, idle)
    before = _shift(newest)
    needed = np.where(before == _MIN, 0, np.maximum(before - stream.event, 0))
    n = len(stream.event)
    bound = _quantile(needed, keep)
    parts = stream.partitions
    alone = [_quantile(own[stream.code == p], keep) for p in range(parts)]
    events_per = np.bincount(stream.code, minlength=parts)
    on_time = np.bincount(stream.code[needed <= bound], minlength=parts)
    table = pl.DataFrame(
        {
            "events": events_per,
            "bound": pl.Series(alone, dtype=pl.Int64).cast(pl.Duration("us")),
            "on_time": on_time,
            "share": on_time / np.maximum(events_per, 1),
        },
        schema={
            "events": pl.Int64,
            "bound": pl.Duration("us"),
            "on_time": pl.Int64,
            "share": pl.Float64,
        },
    )
    return WatermarkRecommendation(
        bound=dt.timedelta(microseconds=int(bound)),
        keep=float(keep),
        events=n,
        by=stream.by,
        note=stream.note,
        idle_timeout=idle,
        by_partition=pl.concat([stream.labels.to_frame(), table], how="horizontal"),
    )


@dataclass(frozen=True)
class _Stream:
    """The events in arrival order, as integer arrays."""

    order: np.ndarray  # arrival position -> input row
    event: np.ndarray  # event time, µs since the epoch
    processed: np.ndarray  # processing time, µs since the epoch
    code: np.ndarray  # partition number, 0 .. partitions - 1
    labels: pl.Series  # partition key per number
    by: str | None
    note: str

    @property
    def partitions(self) -> int:
        return len(self.labels)


def _prepare(events: pl.DataFrame, by: str | None) -> tuple[pl.DataFrame, _Stream]:
    frame = validate(events, check_parameters=False)
    note = ""
    if by is not None and not isinstance(by, str):
        raise SchemaError(
            f"`by` must name one column (the source partition), got {by!r}; "
            "use None for one partition."
        )
    if by == DEFAULT_BY and by not in frame.columns:
        by, note = None, f"the frame has no `{DEFAULT_BY}` column"
    elif by is not None and by not in frame.columns:
        import difflib

        near = difflib.get_close_matches(by, frame.columns, 1)
        hint = f" Did you mean {near[0]!r}?" if near else ""
        raise SchemaError(
            f"`by` names a column the frame does not have: {by!r}.{hint} "
            "Use None to replay the events as one partition."
        )
    ties = ["kafka_offset"] if "kafka_offset" in frame.columns else []
    order = frame.select(
        pl.arg_sort_by(["processing_timestamp", *ties], maintain_order=True)
    ).to_series()
    arrivals = frame.select(
        pl.col("event_timestamp").cast(pl.Int64).gather(order),
        pl.col("processing_timestamp").cast(pl.Int64).gather(order),
    )
    if by is None:
        code = np.zeros(frame.height, np.int64)
        labels = pl.Series("partition", [0], dtype=pl.Int64)
    else:
        # partition numbers in the key's sort order, nulls last; labels read back from them
        rank = pl.col(by).rank("dense").cast(pl.Int64) - 1
        numbered = frame.select(pl.col(by), rank.fill_null(rank.max() + 1).fill_null(0).alias("n"))
        labels = numbered.unique("n").sort("n").get_column(by)
        code = numbered.get_column("n").gather(order).to_numpy()
        if len(labels) > MAX_PARTITIONS:
            raise SchemaError(
                f"`by={by!r}` splits the stream into {len(labels):,} partitions; a watermark "
                f"is kept per source partition (Kafka partitions: a few dozen), at most "
                f"{MAX_PARTITIONS:,} here. Name a coarser column, or by=None for one stream."
            )
    if frame.height == 0:
        labels = labels.head(0)
    stream = _Stream(
        order=order.to_numpy(),
        event=arrivals.get_column("event_timestamp").to_numpy(),
        processed=arrivals.get_column("processing_timestamp").to_numpy(),
        code=code.astype(np.int64),
        labels=labels,
        by=by,
        note=note,
    )
    return frame, stream


def _replay(stream: _Stream, idle: dt.timedelta | None) -> tuple[np.ndarray, np.ndarray]:
    """The combined newest event time after each event, and each event's own distance.

    Returns ``after`` (length n): at position j, once event j has been processed (and
    idleness judged at its processing time), the smallest over active partitions of the
    newest event time each has delivered, made monotone; ``_MIN`` while some active
    partition has delivered nothing. And ``own`` (length n): how far each event's own
    partition had already gone past its event time (0 when it had not), the bound that
    partition alone would need for it.
    """
    n = len(stream.event)
    event, processed, code = stream.event, stream.processed, stream.code
    combined = np.full(n, _MAX, np.int64)
    own = np.zeros(n, np.int64)
    if n == 0:
        return combined, own
    if stream.partitions == 1 and idle is None:  # the common case, in fewer passes
        newest = np.maximum.accumulate(event)
        previous = _shift(newest)
        own[:] = np.where(previous == _MIN, 0, np.maximum(previous - event, 0))
        return newest, own
    for p in range(stream.partitions):
        mine = code == p
        newest = np.maximum.accumulate(np.where(mine, event, _MIN))
        at = np.flatnonzero(mine)
        previous = _shift(newest)[at]
        own[at] = np.where(previous == _MIN, 0, np.maximum(previous - event[at], 0))
        if idle is not None:  # a partition's clock starts with the stream
            last = np.maximum.accumulate(np.where(mine, processed, processed[0]))
            newest[processed - last > _micros(idle)] = _MAX  # idle: out of the minimum
        np.minimum(combined, newest, out=combined)
    after = np.where(combined == _MAX, _MIN, combined)  # every partition idle: no news
    return np.maximum.accumulate(after), own  # the watermark never moves backwards


def _shift(after: np.ndarray) -> np.ndarray:
    """Values before each position: ``_MIN`` first, then ``after`` without its last."""
    before = np.empty_like(after)
    if len(after):
        before[0] = _MIN
        before[1:] = after[:-1]
    return before


def _wrong_states(
    events: pl.DataFrame, reducer: Callable[[Any, Any], Any], types: Any, at: dt.datetime | None
) -> tuple[int, int]:
    """Aggregates whose state at ``at`` differs without the dropped events, and how many."""
    every = events.drop("watermark", "status")
    kept = events.filter(pl.col("status") != "dropped").drop("watermark", "status")
    truth = state_at(every, reducer, types=types, at=at).states
    belief = state_at(kept, reducer, types=types, at=at).states
    ids = truth.keys() | belief.keys()
    wrong = sum(1 for i in ids if i not in truth or i not in belief or truth[i] != belief[i])
    return wrong, len(ids)


def _quantile(values: np.ndarray, keep: float) -> int:
    """The smallest value v such that at least ``keep`` of ``values`` are <= v."""
    if len(values) == 0:
        return 0
    k = max(math.ceil(keep * len(values) - 1e-9), 1) - 1
    return int(np.partition(values, k)[k])


def _percentiles(waits: np.ndarray) -> dict[str, dt.timedelta | None]:
    names = {"p50": 0.5, "p90": 0.9, "p99": 0.99, "max": 1.0}
    if len(waits) == 0:
        return dict.fromkeys(names)
    ranks = {k: max(math.ceil(q * len(waits) - 1e-9), 1) - 1 for k, q in names.items()}
    ordered = np.partition(waits, sorted(set(ranks.values())))  # one pass for all four
    return {k: dt.timedelta(microseconds=int(ordered[r])) for k, r in ranks.items()}


def _micros(value: dt.timedelta) -> int:
    return value // dt.timedelta(microseconds=1)


def _partitions(result: WatermarkReplay | WatermarkRecommendation) -> str:
    if result.by is None:
        return f"one partition: {result.note}" if result.note else "one partition"
    count = result.by_partition.height
    return f"by `{result.by}` ({count:,} partition{'s' if count != 1 else ''})"


def _share(part: int, total: int) -> str:
    return f"{part / total:.2%}" if total else "-"
