"""With ``window=``, one rule for a delivery's fate: its windows', under each engine's rules.

An engine judges a delivery by the windows it is counted in, not by its own instant: a
delivery behind the watermark is still counted while its window is open (Flink: the
window's ``end - 1 ms + allowedLateness`` still after the watermark; Kafka Streams: the
window's ``end + grace`` still after stream time; Spark: the window's end still after the
previous micro-batch's watermark). So the per-delivery ``status`` summarises the verdicts of
its windows (dropped only when every window holding it dropped it, on time only when every
one took it on time, late otherwise), ``.in_windows`` lists each verdict, and ``.windows``
counts them. Hand-worked cases sit at the boundaries; a property test replays random
histories one delivery at a time under each engine's documented rules (the plain replays
of tests/unit/test_engines_plain.py) and checks all three views against them.

Streams are ``(event second, processing second)`` rows (see tests/unit/test_watermark.py).
"""

from __future__ import annotations

import datetime as dt

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

import concursus_lab as cl
from tests.unit.test_engines_plain import (
    arrivals,
    flink_marks,
    flink_status,
    frame,
    kafka_status,
    kafka_times,
    rows_strategy,
    spark_marks,
    spark_status,
)
from tests.unit.test_watermark import at, statuses, stream
from tests.unit.test_watermark import replay as model_replay

MS = dt.timedelta(milliseconds=1)


def verdicts(result) -> list[tuple]:
    table = result.windows.with_columns(pl.col("result").cast(pl.String))
    return table.select(
        "window_start", "events", "first_result", "late_updates", "lost", "result"
    ).rows()


def placed(result) -> list[tuple]:
    """``.in_windows`` as (row, window start, status) rows."""
    table = result.in_windows.with_columns(pl.col("status").cast(pl.String))
    return table.select("row", "window_start", "status").rows()


# ---------------------------------------------------------------- at the boundaries, by hand


def test_flink_keeps_a_delivery_while_its_window_end_plus_allowed_lateness_is_ahead():
    # 12 s arrives at 1 s, so from the check at 1.2 s the watermark is 12 s - 0 - 1 ms; 5 s
    # arrives at 2 s and meets 11.999 s. Its window [0, 10) fired at 1.2 s (9.999 s reached)
    # with 1 s in it; 5 s is late for it, and Flink drops it only once 9.999 s + allowed
    # lateness <= 11.999 s: at 2 s allowed, kept (a late firing) at 2.001 s
    history = stream((1, 0.5), (12, 1), (5, 2))
    kept = cl.watermark(history, "0s", 2001 * MS, engine="flink", window="10s")
    assert statuses(kept) == ["on_time", "on_time", "late"]
    assert verdicts(kept)[0] == (at(0), 2, 1, 1, 0, "corrected late")
    assert kept.events["watermark"].to_list()[2] == at(12) - MS
    assert (kept.on_time, kept.late, kept.dropped) == (2, 1, 0)
    lost = cl.watermark(history, "0s", "2s", engine="flink", window="10s")
    assert statuses(lost) == ["on_time", "on_time", "dropped"]
    assert verdicts(lost)[0] == (at(0), 2, 1, 0, 1, "wrong")
    assert placed(lost) == [(0, at(0), "on_time"), (1, at(10), "on_time"), (2, at(0), "dropped")]


def test_kafka_streams_counts_a_record_until_stream_time_reaches_its_window_end_plus_grace():
    # [0, 10) with a 2 s grace closes when stream time reaches 12 s: 5 s, read after 12 s,
    # is dropped; read after 11.999 s, it is counted (late: after the window's end)
    lost = cl.watermark(
        stream((1, 1), (12, 2), (5, 3)), engine="kafka-streams", grace="2s", window="10s"
    )
    assert statuses(lost) == ["on_time", "on_time", "dropped"]
    assert verdicts(lost)[0] == (at(0), 2, 1, 0, 1, "wrong")
    kept = cl.watermark(
        stream((1, 1), (11.999, 2), (5, 3)), engine="kafka-streams", grace="2s", window="10s"
    )
    assert statuses(kept) == ["on_time", "on_time", "late"]
    # emitting on window close, its one result will hold both; stream time is not there yet
    assert verdicts(kept)[0] == (at(0), 2, 2, 0, 0, "open")
    assert kept.events["watermark"].to_list()[2] == at(11.999)


def test_spark_drops_a_window_row_once_the_window_end_is_at_the_previous_batch_watermark():
    # a batch a second; 10 s is read in the batch of [1, 2), 11 s in [2, 3); 5 s, read in
    # [3, 4), is filtered by the watermark of the batch before (10 s): window.end <= 10 s,
    # dropped. With 9.999 s instead of 10 s, its window [0, 10) is still ahead: counted
    lost = cl.watermark(
        stream((1, 0.5), (10, 1.5), (11, 2.5), (5, 3.5)), "0s", engine="spark", window="10s"
    )
    assert statuses(lost) == ["on_time", "on_time", "on_time", "dropped"]
    assert verdicts(lost)[0] == (at(0), 2, 1, 0, 1, "wrong")
    kept = cl.watermark(
        stream((1, 0.5), (9.999, 1.5), (11, 2.5), (5, 3.5)), "0s", engine="spark", window="10s"
    )
    assert statuses(kept) == ["on_time"] * 4
    assert kept.events["watermark"].to_list()[3] == at(9.999)
    assert verdicts(kept)[0] == (at(0), 3, 3, 0, 0, "right")


def test_the_model_keeps_a_delivery_while_its_window_end_plus_allowed_lateness_is_ahead():
    # the watermark is 12 s when 5 s arrives; [0, 10) fired at 10 s and takes 5 s late while
    # 10 s + allowed lateness is after the watermark
    history = stream((1, 1), (12, 2), (5, 3))
    kept = cl.watermark(history, "0s", 2001 * MS, window="10s")
    assert statuses(kept) == ["on_time", "on_time", "late"]
    assert verdicts(kept)[0] == (at(0), 2, 1, 1, 0, "corrected late")
    lost = cl.watermark(history, "0s", "2s", window="10s")
    assert statuses(lost) == ["on_time", "on_time", "dropped"]
    assert verdicts(lost)[0] == (at(0), 2, 1, 0, 1, "wrong")


def test_a_delivery_dropped_from_one_sliding_window_and_counted_in_the_next_is_late():
    # 10 s windows sliding by 5 s: 7 s is in [0, 10) and [5, 15). When it arrives Flink's
    # watermark is 11.999 s: [0, 10) has fired and drops it, [5, 15) takes it on time
    history = stream((1, 0.5), (12, 1), (7, 2))
    result = cl.watermark(history, "0s", engine="flink", window="10s", slide="5s")
    assert statuses(result) == ["on_time", "on_time", "late"]
    assert (result.on_time, result.late, result.dropped) == (2, 1, 0)
    assert [r for r in placed(result) if r[0] == 2] == [
        (2, at(0), "dropped"),
        (2, at(5), "on_time"),
    ]
    # every window it belongs to dropped it: dropped
    gone = cl.watermark(
        stream((1, 0.5), (17, 1), (7, 2)), "0s", engine="flink", window="10s", slide="5s"
    )
    assert statuses(gone)[2] == "dropped"
    assert [r for r in placed(gone) if r[0] == 2] == [(2, at(0), "dropped"), (2, at(5), "dropped")]


def test_kafka_streams_judges_windows_on_the_clock_that_counts_them():
    # windows over all deliveries are counted in one task, whose stream time is the newest
    # timestamp of every partition: partition 1's 30 s closes [0, 10) for partition 0's 5 s,
    # although partition 0's own task has only seen 6 s
    history = stream((6, 1), (30, 2), (5, 3), kafka_partition=[0, 1, 0])
    result = cl.watermark(history, engine="kafka-streams", window="10s")
    assert statuses(result) == ["on_time", "on_time", "dropped"]
    assert verdicts(result)[0] == (at(0), 2, 1, 0, 1, "wrong")
    assert result.events["watermark"].to_list() == [None, at(6), at(30)]
    # without windows each record is judged by its own task's stream time
    alone = cl.watermark(history, engine="kafka-streams")
    assert statuses(alone) == ["on_time", "on_time", "dropped"]
    assert alone.events["watermark"].to_list() == [None, None, at(6)]


def test_without_windows_there_is_no_window_detail():
    result = cl.watermark(stream((1, 1), (2, 2)), "1s")
    assert result.windows is None and result.in_windows is None


def test_window_detail_shape_does_not_depend_on_emptiness():
    empty = cl.watermark(cl.frame.empty(), "1s", window="10s", slide="5s")
    full = cl.watermark(stream((1, 1)), "1s", window="10s", slide="5s")
    assert empty.in_windows.schema == full.in_windows.schema
    assert full.in_windows.columns == ["row", "window_start", "window_end", "status"]
    assert empty.unreleased == 0


# ---------------------------------------------------------------- Flink's idleness


def idle_split(*late_rows) -> pl.DataFrame:
    # partition 1 delivers 0 s at 0.05 s and goes quiet; partition 0 delivers 5 s and 12 s
    rows = [(0, 0.05), (5, 0.1), (12, 0.3), *late_rows]
    return stream(*rows, kafka_partition=[1, 0, 0] + [0] * len(late_rows))


def test_flink_fires_a_window_at_the_check_that_marks_a_split_idle():
    # checks every 200 ms: 0.2 s saw partition 1's delivery, 0.4 s starts its idleness timer,
    # and 1.6 s is the first check more than 1 s later: it marks the split idle and, in the
    # same emit, the minimum becomes partition 0's 12 s - 1 ms, which fires [0, 10)
    result = cl.watermark(
        idle_split((13, 5.1)), "0s", engine="flink", idle_timeout="1s", window="10s"
    )
    assert result.windows["fired_at"].to_list()[0] == at(1.6)
    assert result.added_wait["max"] == dt.timedelta(seconds=1.55)  # 0 s, from 0.05 s to 1.6 s
    # with no delivery after it, the window fires all the same
    quiet = cl.watermark(idle_split(), "0s", engine="flink", idle_timeout="1s", window="10s")
    assert verdicts(quiet)[0] == (at(0), 2, 2, 0, 0, "right")
    assert quiet.windows["fired_at"].to_list() == [at(1.6), None]
    assert quiet.unreleased == 1  # 12 s: partition 0 goes idle too, and nothing moves it


def test_flink_2_2_moves_the_watermark_to_the_largest_split_once_every_split_is_idle():
    # partition 0 delivers 12 s at 0.1 s, partition 1 5 s at 0.5 s; both then go quiet.
    # Partition 0 is idle at 1.6 s (the minimum becomes 5 s), partition 1 at 2.0 s: every
    # split idle. Flink up to 2.1 holds the watermark there (FLINK-38454 changed it):
    history = stream((12, 0.1), (5, 0.5), kafka_partition=[0, 1])
    old = cl.watermark(history, "0s", engine="flink", idle_timeout="1s", window="10s")
    assert verdicts(old)[0] == (at(0), 1, 1, 0, 0, "open")
    # Flink 2.2 flushes the largest split watermark, 12 s - 1 ms: [0, 10) fires at 2.0 s
    new = cl.watermark(history, "0s", engine="flink-2.2", idle_timeout="1s", window="10s")
    assert verdicts(new)[0] == (at(0), 1, 1, 0, 0, "right")
    assert new.windows["fired_at"].to_list() == [at(2.0), None]
    assert "Flink 2.2" in str(new).splitlines()[0]
    assert "Flink 1.20" in str(old).splitlines()[0]
    # without idleness the two are one engine
    plain = cl.watermark(history, "0s", engine="flink-2.2", window="10s")
    assert plain.windows.equals(cl.watermark(history, "0s", engine="flink", window="10s").windows)


# ---------------------------------------------------------------- every engine, random histories


def plain_pairs(engine, arrived, parts, knobs, width, step):
    """Each delivery (arrival order) in each window holding it, judged one delivery at a time
    by the engine's documented rule: ``[(start, status), ...]`` per delivery (ms)."""
    events = [e for _, e, _ in arrived]
    if engine in ("flink", "flink-2.2"):
        marks = flink_marks(
            arrived, parts, knobs["bound"], knobs["interval"], knobs["idle"], engine == "flink-2.2"
        )
        judge = lambda m, end: flink_status(m, end, knobs["allowed"])  # noqa: E731
    elif engine == "spark":
        marks = spark_marks(arrived, knobs["bound"], knobs["interval"])
        judge = spark_status
    elif engine == "kafka-streams":  # one task counts the windows: every partition's stream time
        marks = kafka_times([(0, e, p) for _, e, p in arrived])
        judge = lambda m, end: kafka_status(m, end, knobs["allowed"])  # noqa: E731
    else:  # the model, to the microsecond: a window fires once the watermark reaches its end
        us = [(part, e * 1000, p * 1000) for part, e, p in arrived]
        idle = None if knobs["idle"] is None else knobs["idle"] * 1000
        marks = model_replay(us, knobs["bound"] * 1000, knobs["allowed"] * 1000, idle)[0]

        def judge(mark, end):
            end_us, allowed = end * 1000, knobs["allowed"] * 1000
            if mark is None or mark < end_us:
                return "on_time"
            return "late" if mark < end_us + allowed else "dropped"

    out = []
    for mark, event in zip(marks, events, strict=True):
        first = (event // step) * step - width + step
        starts = range(first, event + 1, step)
        out.append([(s, judge(mark, s + width)) for s in starts if s <= event < s + width])
    return out


def summary(pairs) -> str:
    codes = {status for _, status in pairs}
    if codes == {"dropped"}:
        return "dropped"
    return "on_time" if codes == {"on_time"} else "late"


engines = st.sampled_from(["model", "flink", "flink-2.2", "spark", "kafka-streams"])
sizes = st.sampled_from([(1000, None), (2000, None), (5000, None), (2000, 1000), (5000, 1000)])


@settings(max_examples=300, deadline=None)
@given(
    rows=rows_strategy,
    engine=engines,
    size=sizes,
    bound=st.integers(0, 3_000),
    allowed=st.integers(0, 3_000),
    interval=st.sampled_from([100, 200, 1_000]),
    idle=st.one_of(st.none(), st.integers(300, 5_000)),
)
def test_labels_windows_and_detail_agree_with_the_engines_rules(
    rows, engine, size, bound, allowed, interval, idle
):
    width, slide = size
    step = slide or width
    order, arrived = arrivals(rows)
    parts = sorted({r[0] for r in rows})
    kwargs: dict = {"window": width * MS, "slide": None if slide is None else slide * MS}
    if engine == "kafka-streams":
        kwargs["grace"] = allowed * MS
        bound = 0
    elif engine == "spark":
        kwargs |= {"max_out_of_orderness": bound * MS, "trigger": interval * MS}
        allowed = 0
    else:
        kwargs |= {"max_out_of_orderness": bound * MS, "allowed_lateness": allowed * MS}
        kwargs["idle_timeout"] = None if idle is None else idle * MS
        if engine != "model":
            kwargs["interval"] = interval * MS
    if engine in ("spark", "kafka-streams"):
        idle = None
    result = cl.watermark(frame(rows), engine=engine, **kwargs)
    knobs = {"bound": bound, "allowed": allowed, "interval": interval, "idle": idle}
    expected = plain_pairs(engine, arrived, parts, knobs, width, step)

    # the per-delivery label summarises its windows' verdicts
    labels = result.events["status"].cast(pl.String).to_list()
    assert [labels[i] for i in order] == [summary(p) for p in expected]
    # the per-window detail is each verdict
    want = [
        (order[i], at(s / 1000), status) for i, pairs in enumerate(expected) for s, status in pairs
    ]
    assert sorted(placed(result)) == sorted(want)  # T0 is a whole day: windows align to it
    # the windows count what the detail says
    counts: dict = {}
    for pairs in expected:
        for s, status in pairs:
            c = counts.setdefault(at(s / 1000), {"events": 0, "lost": 0, "late": 0})
            c["events"] += 1
            c["lost"] += status == "dropped"
            c["late"] += status == "late" and engine != "kafka-streams"
    table = result.windows.with_columns(pl.col("result").cast(pl.String))
    assert table["window_start"].to_list() == sorted(counts)
    for row in table.iter_rows(named=True):
        c = counts[row["window_start"]]
        assert (row["events"], row["lost"], row["late_updates"]) == (
            c["events"],
            c["lost"],
            c["late"],
        )
        assert row["first_result"] == c["events"] - c["lost"] - c["late"]
        if c["lost"]:
            assert row["result"] == "wrong"
        elif c["late"]:
            assert row["result"] == "corrected late"
        else:
            assert row["result"] in ("right", "open")
    # a delivery labelled dropped is lost from every window it is in, and nowhere counted
    dropped = {order[i] for i, p in enumerate(expected) if summary(p) == "dropped"}
    assert result.dropped == len(dropped)


@settings(max_examples=100, deadline=None)
@given(
    rows=rows_strategy,
    engine=st.sampled_from(["model", "flink", "spark"]),
    size=sizes,
    keep=st.sampled_from([0.5, 0.9, 1.0]),
)
def test_a_recommendation_for_windows_keeps_its_share_on_time_in_them(rows, engine, size, keep):
    width, slide = size
    windows = {"window": width * MS, "slide": None if slide is None else slide * MS}
    history = frame(rows)
    advice = cl.recommend_watermark(history, keep=keep, engine=engine, **windows)
    replay = cl.watermark(history, advice.bound, engine=engine, **windows)
    assert replay.on_time >= keep * len(rows) - 1e-9
    if advice.bound:
        tighter = cl.watermark(history, advice.bound - MS, engine=engine, **windows)
        assert tighter.on_time < keep * len(rows) - 1e-9
