"""Each engine's vectorised replay agrees with a plain one, written from its documented rules
and run one delivery (and, for Flink, one periodic check) at a time, on random streams."""

from __future__ import annotations

import datetime as dt

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

import concursus_lab as cl
from tests.unit.test_watermark import stream

MS = dt.timedelta(milliseconds=1)

rows_strategy = st.lists(
    st.tuples(
        st.sampled_from([0, 1, 2]),  # partition
        st.integers(0, 20_000),  # processing time, ms
        st.integers(-2_000, 8_000),  # lateness, ms
    ),
    min_size=1,
    max_size=25,
)


def arrivals(rows):
    order = sorted(range(len(rows)), key=lambda i: (rows[i][1], i))
    return order, [(rows[i][0], rows[i][1] - rows[i][2], rows[i][1]) for i in order]


def frame(rows):
    times = [((p - lag) / 1000, p / 1000) for _, p, lag in rows]
    return stream(*times, kafka_partition=[r[0] for r in rows])


def flink_marks(arrived, parts, bound, interval, idle, all_idle_max=False):
    """The watermark each delivery met: periodic checks every ``interval`` ms; per split the
    newest timestamp and an idleness timer that starts at the first quiet check; the source
    emits the minimum of active splits' ``newest - bound - 1``, never backwards. When every
    split is idle, Flink up to 2.1 holds it; 2.2 (``all_idle_max``) moves it to the largest."""
    newest = dict.fromkeys(parts)
    seen = dict.fromkeys(parts, 0)
    checked = dict.fromkeys(parts, 0)
    quiet_since = dict.fromkeys(parts)
    mark = None
    tick = (arrived[0][2] // interval + 1) * interval
    out = []
    for part, event, processed in arrived:
        while tick <= processed:  # the checks due before this delivery
            active = []
            for p in parts:
                if seen[p] != checked[p]:
                    checked[p], quiet_since[p] = seen[p], None
                    active.append(p)
                elif quiet_since[p] is None:
                    quiet_since[p] = tick
                    active.append(p)
                elif idle is None or tick - quiet_since[p] <= idle:
                    active.append(p)
            known = [newest[p] for p in parts if newest[p] is not None]
            candidate = None
            if active and all(newest[p] is not None for p in active):
                candidate = min(newest[p] for p in active) - bound - 1
            elif not active and all_idle_max and known:
                candidate = max(known) - bound - 1
            if candidate is not None:
                mark = candidate if mark is None else max(mark, candidate)
            tick += interval
        out.append(mark)
        newest[part] = event if newest[part] is None else max(newest[part], event)
        seen[part] += 1
    return out


def flink_status(mark, end, allowed):
    """Flink's WindowOperator: a window ``[start, end)`` has fired once the watermark reaches
    ``end - 1``; an element is dropped from it once ``end - 1 + allowedLateness`` has too."""
    if mark is None or end - 1 > mark:
        return "on_time"
    return "late" if end - 1 + allowed > mark else "dropped"


def flink_plain(arrived, parts, bound, allowed, interval, idle):
    """Each delivery judged as a window of its own millisecond, ``end = t + 1``."""
    marks = flink_marks(arrived, parts, bound, interval, idle)
    return [flink_status(m, e + 1, allowed) for m, (_, e, _) in zip(marks, arrived, strict=True)]


def spark_marks(arrived, delay, trigger):
    """Spark's loop, one trigger at a time: a batch runs when its interval brought data, or
    (a no-data batch) when the watermark has moved since the last batch ran; it evicts with
    the watermark of the data read before it, and filters late rows with the watermark of
    the batch that ran before it (Spark 3.4+). Returns that filter's watermark per row."""
    by_batch: dict = {}
    for index, (_, event, processed) in enumerate(arrived):
        by_batch.setdefault(processed // trigger, []).append((index, event))
    out = [None] * len(arrived)
    highest = None  # the maximum event time read by the batches that ran
    last_eviction = None  # the watermark the last batch that ran evicted with
    for b in range(min(by_batch), max(by_batch) + 1):
        watermark = None if highest is None else highest - delay
        rows = by_batch.get(b, [])
        if not rows and watermark == last_eviction:
            continue  # nothing to read and nothing to evict: no batch at this trigger
        for index, _ in rows:
            out[index] = last_eviction
        last_eviction = watermark
        for _, event in rows:
            highest = event if highest is None else max(highest, event)
    return out


def spark_status(mark, end):
    """Spark drops a row (in a window: the window's row) once its end is at or before the
    watermark: ``window.end <= watermark`` (``WatermarkSupport.watermarkExpression``)."""
    return "dropped" if mark is not None and end <= mark else "on_time"


def spark_plain(arrived, delay, trigger):
    """Each row judged at its own event time, ``end = t``."""
    marks = spark_marks(arrived, delay, trigger)
    return [spark_status(m, e) for m, (_, e, _) in zip(marks, arrived, strict=True)]


def kafka_times(arrived):
    """Each record's task's stream time before it (None for a task's first record)."""
    stream_time: dict = {}
    out = []
    for part, event, _ in arrived:
        now = stream_time.get(part)
        out.append(now)
        stream_time[part] = event if now is None else max(now, event)
    return out


def kafka_status(now, end, grace):
    """``KStreamWindowAggregate``: a window takes a record while ``end > streamTime - grace``;
    behind its end in stream time but within the grace is *late*."""
    if now is None or now < end:
        return "on_time"
    return "late" if now < end + grace else "dropped"


def kafka_plain(arrived, grace):
    """Stream time per task; a record judged as a window of its own millisecond."""
    times = kafka_times(arrived)
    return [kafka_status(n, e + 1, grace) for n, (_, e, _) in zip(times, arrived, strict=True)]


def replayed(result, order):
    statuses = result.events["status"].cast(pl.String).to_list()
    return [statuses[i] for i in order]


@settings(max_examples=120, deadline=None)
@given(
    rows=rows_strategy,
    bound=st.integers(0, 3_000),
    allowed=st.integers(0, 3_000),
    interval=st.sampled_from([100, 200, 1_000]),
    idle=st.one_of(st.none(), st.integers(300, 5_000)),
)
def test_flink_agrees_with_a_plain_replay(rows, bound, allowed, interval, idle):
    order, arrived = arrivals(rows)
    parts = sorted({r[0] for r in rows})
    result = cl.watermark(
        frame(rows),
        bound * MS,
        allowed * MS,
        engine="flink",
        interval=interval * MS,
        idle_timeout=None if idle is None else idle * MS,
    )
    assert replayed(result, order) == flink_plain(arrived, parts, bound, allowed, interval, idle)


@settings(max_examples=120, deadline=None)
@given(rows=rows_strategy, delay=st.integers(0, 3_000), trigger=st.sampled_from([100, 1_000]))
def test_spark_agrees_with_a_plain_replay(rows, delay, trigger):
    order, arrived = arrivals(rows)
    result = cl.watermark(frame(rows), delay * MS, engine="spark", trigger=trigger * MS)
    assert replayed(result, order) == spark_plain(arrived, delay, trigger)


@settings(max_examples=120, deadline=None)
@given(rows=rows_strategy, grace=st.integers(0, 3_000))
def test_kafka_streams_agrees_with_a_plain_replay(rows, grace):
    order, arrived = arrivals(rows)
    result = cl.watermark(frame(rows), engine="kafka-streams", grace=grace * MS)
    assert replayed(result, order) == kafka_plain(arrived, grace)
