"""How long to wait before trusting a history: a watermark replay, under each engine's rules.

A stream processor cannot wait forever for late events. A *bounded-out-of-orderness*
watermark (Flink's ``WatermarkStrategy.forBoundedOutOfOrderness``) declares, as events
arrive, "nothing older than the newest event time seen, minus a bound, is still to come";
whatever arrives behind it is late. :func:`watermark` replays a history in arrival order
and says what every event would have met; :func:`recommend_watermark` finds the smallest
bound that keeps a share of events on time, and ``.config()`` writes it as the engine reads
it.

``engine=`` chooses whose rules: ``"model"`` (the default: concursus-lab's own model, per
partition, to the microsecond; :mod:`concursus_lab.delivery.engines.model`), ``"flink"``
(periodic watermarks per split, their minimum, ``withIdleness``, as Flink 1.20;
``"flink-2.2"`` with Flink 2.2's idleness), ``"spark"`` (the maximum over earlier
micro-batches) or ``"kafka-streams"`` (stream time per task, a grace period);
each engine's module says exactly what it replays and cites the documentation it follows,
and :mod:`concursus_lab.delivery.engines` writes their rules side by side.

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
  update its result), *dropped* when it is further behind. With ``window=``, by the windows
  holding it instead, with the same rules (:mod:`concursus_lab.delivery.windows`).
* **Added wait.** An on-time event's result is final only once the watermark has passed its
  event time; the wait is the processing time from its arrival to that moment. The watermark
  is re-evaluated each time an event has been processed (idleness included), so it moves
  only when events arrive: in a sparse stream the wait is mostly the gap to the next event.
  With ``window=``, the wait is until the first window holding the event fired.

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
import warnings
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import polars as pl

from concursus_lab.common.time import DurationLike, TimeLike, optional_utc
from concursus_lab.delivery.arrivals import DEFAULT_BY, MIN, Stream, percentiles, prepare
from concursus_lab.delivery.engines import STATUSES, Engine, Fronts, Settings
from concursus_lab.delivery.engines import engine as find_engine
from concursus_lab.delivery.engines.options import read_options
from concursus_lab.delivery.recommend import recommend_watermark
from concursus_lab.delivery.watermark_results import WatermarkRecommendation, WatermarkReplay
from concursus_lab.delivery.windows import place, summary, window_results, window_sizes
from concursus_lab.exceptions import SchemaError, UnknownStateShape
from concursus_lab.frame.schema import TIME
from concursus_lab.timetravel.state_at import fold_states, state_at

__all__ = [
    "DEFAULT_BY",
    "STATUSES",
    "WatermarkRecommendation",
    "WatermarkReplay",
    "recommend_watermark",
    "watermark",
]

#: What happened to each event, in the ``status`` column (:data:`STATUSES`).
STATUS = pl.Enum(list(STATUSES))


def watermark(
    events: pl.DataFrame,
    max_out_of_orderness: DurationLike | None = None,
    allowed_lateness: DurationLike = dt.timedelta(0),
    *,
    engine: str = "model",
    by: str | None = DEFAULT_BY,
    idle_timeout: DurationLike | None = None,
    grace: DurationLike | None = None,
    interval: DurationLike | None = None,
    trigger: DurationLike | None = None,
    inputs: str | None = None,
    policy: str | None = None,
    window: DurationLike | None = None,
    slide: DurationLike | None = None,
    reducer: Callable[[Any, Any], Any] | None = None,
    types: Any = None,
    at: TimeLike | None = None,
) -> WatermarkReplay:
    """Replay ``events`` in arrival order under an engine's watermark (or stream time).

    See this module's docstring for the model, and each engine's module
    (:mod:`~concursus_lab.delivery.engines.flink`,
    :mod:`~concursus_lab.delivery.engines.spark_streaming`,
    :mod:`~concursus_lab.delivery.engines.kafka_streams`) for what it replays. Pass every
    delivery (``source.events(duplicates="keep")``): a consumer sees repeats too. Fully
    vectorised: the cost is one pass over the events per partition.

    Parameters
    ----------
    events
        A canonical event frame; extra columns (``kafka_partition``, ``kafka_offset``) are
        used when present and kept.
    max_out_of_orderness
        The bound: how far behind the newest event time seen an event may be and still be
        on time (Flink's out-of-orderness, Spark's delay threshold; Kafka Streams has none).
        A ``timedelta`` or a text such as ``"90s"``, ``"2m"``, ``"1h30m"``.
        :func:`recommend_watermark` suggests one.
    allowed_lateness
        How far behind the watermark an event may be and still count (as *late*) rather
        than be *dropped* (model, Flink). Default 0: everything behind is dropped.
    engine
        ``"model"`` (default), ``"flink"`` (Flink 1.20's rules), ``"flink-2.2"`` (the same
        but for idleness: once every split is idle, the watermark moves to the largest
        split's), ``"spark"`` or ``"kafka-streams"``.
    by
        The column naming partitions (Flink's splits, Kafka Streams' tasks). The default
        ``"kafka_partition"`` falls back to one partition when the frame has no such column
        (a local store or Cassandra), and the result says so. None means one partition;
        any other missing column is an error.
    idle_timeout
        Leave a partition out of the minimum after it has delivered nothing for this long
        (processing time; model, Flink's ``withIdleness``). None: a silent partition holds
        the watermark back.
    grace
        Kafka Streams' grace period: how far behind its task's stream time a record may be
        and still be counted (default 0).
    interval, trigger
        Flink's watermark interval (``pipeline.auto-watermark-interval``, 200 ms); Spark's
        micro-batch trigger (1 s).
    inputs, policy
        Spark: the column telling its input streams apart, and the multiple-watermark
        policy that combines their watermarks (``"min"``, the default, or ``"max"``).
    window, slide
        Also replay event-time windows of this size (``slide``: sliding by it) and list
        every window's result against the truth in ``.windows``
        (:mod:`concursus_lab.delivery.windows`). Each delivery is then judged as the engine
        judges it, by the windows holding it: ``.in_windows`` has each window's verdict,
        and ``status`` summarises them (*dropped* only when every one dropped it).
    reducer, types, at
        Given a reducer (and the event ``types`` it folds), also count the aggregates whose
        state at event time ``at`` (None: with no bound) would be wrong if dropped events
        were ignored, with :func:`concursus_lab.state_at`.

    Returns
    -------
    WatermarkReplay
        ``.events`` (with ``watermark`` and ``status``), the counts, ``.by_partition``, the
        added wait (with ``window=``: until the first window holding an event fired),
        ``.windows`` and ``.in_windows`` with ``window=`` and, given a reducer,
        ``.wrong_states``.

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
    after the third to move it past the other two. Kafka Streams has no watermark: with
    no grace it drops every record behind its task's stream time (the newest event time):

    >>> cl.watermark(history, engine="kafka-streams").events["status"].to_list()
    ['on_time', 'on_time', 'dropped', 'dropped', 'dropped']
    """
    kind = find_engine(engine)
    opts = read_options(
        kind,
        max_out_of_orderness,
        allowed_lateness,
        idle_timeout=idle_timeout,
        grace=grace,
        interval=interval,
        trigger=trigger,
        inputs=inputs,
        policy=policy,
    )
    size, step = window_sizes(window, slide)
    when = optional_utc(at, "at")
    if reducer is None and (types is not None or when is not None):
        raise SchemaError(
            "`types` and `at` only matter with a `reducer`: pass reducer=... to count the "
            "states that dropped events would make wrong, or leave them out."
        )
    frame, stream = prepare(events, by, opts.inputs)
    s = opts.settings
    fronts = kind.fronts(stream, s)
    placed = None
    if size is None:  # each delivery judged as a window of its own instant
        clock, ends = fronts, kind.ends(stream.event)
        code = kind.codes(fronts.met, ends, s)
    else:  # by the windows holding it, on the clock that counts them: one rule for both
        clock = fronts.for_windows()
        placed = place(kind, s, fronts, stream.event, size, step)
        code, ends = placed.fates(), placed.earliest_ends()
    waits, unreleased = _waits(kind, s, clock, stream.processed, ends, code)
    out, counts = _marked(frame, stream, kind.mark(clock.met, s), kind.unit, code)
    windows = None if placed is None else window_results(kind, s, fronts, placed)
    setting = kind.describe(s, kind.unit)
    if opts.inputs is not None:
        setting += f", inputs by `{opts.inputs}` (policy {s.policy})"
    result = WatermarkReplay(
        events=out,
        max_out_of_orderness=opts.bound,
        allowed_lateness=opts.allowed,
        idle_timeout=opts.idle,
        by=stream.by,
        note=stream.note,
        by_partition=pl.concat([stream.labels.to_frame(), counts], how="horizontal"),
        added_wait=percentiles(waits),
        unreleased=unreleased,
        at=when,
        engine=kind.name,
        setting=setting,
        windows=windows,
        window_note="" if windows is None else summary(windows, size, step),
        _in_windows=None if placed is None else partial(placed.frame, stream.order),
    )
    if reducer is None:
        return result
    wrong, aggregates = _wrong_states(out, reducer, types, when)
    return dataclasses.replace(result, wrong_states=wrong, aggregates=aggregates)


def _marked(
    frame: pl.DataFrame, stream: Stream, marks: np.ndarray, unit: int, code: np.ndarray
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The frame with ``watermark`` and ``status`` (input order), and counts per partition."""
    n = len(stream.event)
    rows = np.empty(n, np.int64)
    rows[stream.order] = np.arange(n)  # input row -> arrival position
    marks = pl.Series("watermark", np.where(marks == MIN, MIN, marks * unit)[rows], pl.Int64)
    out = frame.with_columns(
        pl.when(pl.lit(marks) != MIN).then(pl.lit(marks)).cast(TIME).alias("watermark"),
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
    return out, counts


def _waits(
    kind: Engine,
    s: Settings,
    fronts: Fronts,
    processed: np.ndarray,
    ends: np.ndarray,
    code: np.ndarray,
) -> tuple[np.ndarray, int]:
    """The wait of each on-time event for its clock to pass it, and how many it never did."""
    on_time = np.flatnonzero(code == 0)
    groups = [None] if fronts.group is None else range(int(fronts.group.max(initial=-1)) + 1)
    waits, unreleased = [], 0
    for g in groups:
        steps = None if g is None else np.flatnonzero(fronts.group == g)
        mine = on_time if g is None else on_time[fronts.group[on_time] == g]
        after = fronts.after if steps is None else fronts.after[steps]
        at = fronts.at if steps is None else fronts.at[steps]
        passed = np.searchsorted(after, kind.fire_at(ends[mine], s), side="left")
        released = passed < len(after)
        waits.append(at[passed[released]] - processed[mine[released]])
        unreleased += int((~released).sum())
    return np.concatenate(waits) if waits else np.zeros(0, np.int64), unreleased


def _wrong_states(
    events: pl.DataFrame, reducer: Callable[[Any, Any], Any], types: Any, at: dt.datetime | None
) -> tuple[int, int]:
    """Aggregates whose state at ``at`` differs without the dropped events, and how many."""
    every = events.drop("watermark", "status")
    kept = events.filter(pl.col("status") != "dropped").drop("watermark", "status")
    with warnings.catch_warnings():  # the states are compared, not a frame's columns
        warnings.simplefilter("ignore", UnknownStateShape)
        truth = state_at(every, reducer, types=types, at=at).states
    belief = fold_states(kept, reducer, types=types, at=at).states  # may hold none of the type
    ids = truth.keys() | belief.keys()
    wrong = sum(1 for i in ids if i not in truth or i not in belief or truth[i] != belief[i])
    return wrong, len(ids)
