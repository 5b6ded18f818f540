"""The watermark simulator and its recommender, on streams whose answers are worked out by hand.

Streams are written as ``(event second, processing second)`` pairs, optionally with a
partition; a plain-Python replay (one event at a time, the way a stream processor runs)
checks the vectorised one on random streams.
"""

from __future__ import annotations

import datetime as dt
import math

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import concursus_lab as cl
from concursus_lab.common.time import exact as _exact
from concursus_lab.common.time import to_timedelta as _to_timedelta
from concursus_lab.exceptions import SchemaError

UTC = dt.UTC
T0 = dt.datetime(2026, 3, 2, tzinfo=UTC)
S = dt.timedelta(seconds=1)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def stream(*rows: tuple, stream_ids: list[str] | None = None, **extra: list) -> pl.DataFrame:
    """A canonical frame, one event per ``(event s, processing s)`` row, ids ``e0, e1, ...``."""
    n = len(rows)
    frame = pl.DataFrame(
        {
            "aggregate_type": ["parcel"] * n,
            "aggregate_id": [f"e{i}" for i in range(n)],
            "event_timestamp": [at(r[0]) for r in rows],
            "stream_id": stream_ids or [""] * n,
            "processing_id": [None] * n,
            "processing_timestamp": [at(r[1]) for r in rows],
            "name": ["receivedAtDepot"] * n,
            "version": ["0"] * n,
            "parameters": ["{}"] * n,
            "characteristics": [0] * n,
        },
        schema=cl.SCHEMA,
    )
    return frame.with_columns(pl.Series(k, v) for k, v in extra.items())


def statuses(result: cl.results.WatermarkReplay) -> list[str]:
    return result.events["status"].cast(pl.String).to_list()


# ---------------------------------------------------------------- by hand


def test_on_time_late_and_dropped_by_hand():
    history = stream((10, 11), (20, 21), (15, 22), (12, 23), (1, 24))
    result = cl.watermark(history, max_out_of_orderness=5 * S, allowed_lateness=3 * S)
    # the watermark each event met: none, then 10-5, then 20-5 for the rest
    assert result.events["watermark"].to_list() == [None, at(5), at(15), at(15), at(15)]
    assert statuses(result) == ["on_time", "on_time", "on_time", "late", "dropped"]
    assert (result.on_time, result.late, result.dropped) == (3, 1, 1)
    # the first event waited until the second (processed at 21 s) moved the watermark past it
    assert result.added_wait["max"] == 10 * S
    assert result.unreleased == 2
    assert result.events.schema["status"] == pl.Enum(["on_time", "late", "dropped"])
    assert result.events.schema["watermark"] == pl.Datetime("us", "UTC")


def test_an_event_exactly_at_the_watermark_is_on_time_and_one_microsecond_behind_is_not():
    history = stream((20, 1), (15, 2), (14.999999, 3))
    result = cl.watermark(history, "5s")
    assert statuses(result) == ["on_time", "on_time", "dropped"]


def test_drops_exactly_the_events_behind_the_bound():
    # a steady stream with three stragglers, 35 s, 110 s and 12 s behind the newest event
    # time (90, 170 and 180 s) when they arrive
    rows = [(t, t + 1) for t in range(0, 200, 10)]
    rows += [(55, 96), (60, 175), (168, 181)]
    history = stream(*rows)
    dropped = cl.watermark(history, "30s").events.filter(pl.col("status") == "dropped")
    assert dropped["event_timestamp"].to_list() == [at(55), at(60)]
    # a minute of allowed lateness keeps the one 5 s behind the watermark, not the 80 s one
    result = cl.watermark(history, "30s", allowed_lateness="1m")
    late = result.events.filter(pl.col("status") != "on_time")
    assert late.select("event_timestamp", "status").rows() == [
        (at(55), "late"),
        (at(60), "dropped"),
    ]


def test_a_clock_skewed_source_in_one_partition_pushes_the_watermark_ahead():
    # depot scans at 0, 10, ... 90 s, logged 1 s later; a scanner whose clock runs 90 s fast
    # scans at 5, 15, ... 95 s (stamped 90 s ahead) and is logged 1 s later
    depot = [(t, t + 1) for t in range(0, 100, 10)]
    fast = [(t + 90, t + 1) for t in range(5, 100, 10)]
    history = stream(*depot, *fast, stream_ids=["depot"] * 10 + ["fast"] * 10)

    profile = cl.lateness(history, by="stream_id")
    assert profile["negative"].to_list() == [0, 10]
    assert profile["p50"].to_list() == [S, -89 * S]

    # one partition: every depot scan after the first meets a watermark driven by the fast
    # clock, 85 s ahead of it
    advice = cl.recommend_watermark(history, keep=1.0, by=None)
    assert advice.bound == 85 * S
    assert cl.watermark(history, advice.bound, by=None).dropped == 0
    short = cl.watermark(history, 85 * S - dt.timedelta(microseconds=1), by=None)
    assert short.dropped == 9
    assert set(short.events.filter(pl.col("status") == "dropped")["stream_id"]) == {"depot"}

    # a partition per source: the skewed clock only moves its own watermark
    split = cl.recommend_watermark(history, keep=1.0, by="stream_id")
    assert split.bound == dt.timedelta(0)
    assert split.by_partition["bound"].to_list() == [dt.timedelta(0), dt.timedelta(0)]
    assert cl.watermark(history, "0s", by="stream_id").dropped == 0


def idle_history() -> pl.DataFrame:
    # partition 0 delivers every 10 s; partition 1 delivers twice, then nothing until 101.5 s,
    # when it delivers an old event (30 s)
    p0 = [(t, t + 1) for t in range(0, 101, 10)]
    p1 = [(0, 1.5), (10, 11.5), (30, 101.5)]
    return stream(*p0, *p1, kafka_partition=[0] * len(p0) + [1] * len(p1))


def test_a_partition_that_goes_idle_holds_the_watermark_back():
    result = cl.watermark(idle_history(), "5s")
    assert result.by == "kafka_partition"
    assert result.dropped == 0  # the watermark stays at 10 - 5 s until partition 1 wakes up
    marks = result.events.sort("processing_timestamp")["watermark"].to_list()
    assert marks[:4] == [None, None, at(-5), at(-5)]
    assert set(marks[4:]) == {at(5)}
    # events from 30 s to 100 s in partition 0, and the old one, are never passed
    assert result.unreleased == 9
    assert result.added_wait["max"] == dt.timedelta(seconds=90.5)  # 10 s, from 11 to 101.5


def test_an_idle_timeout_lets_the_watermark_go_on_and_never_back():
    result = cl.watermark(idle_history(), "5s", idle_timeout="20s")
    # partition 1 is idle from 41 s (29.5 s after its last event); at 101.5 s the watermark
    # is 100 - 5 s and its old event (30 s) is dropped; the watermark does not move back
    dropped = result.events.filter(pl.col("status") == "dropped")
    assert dropped.select("kafka_partition", "event_timestamp").rows() == [(1, at(30))]
    marks = result.events.sort("processing_timestamp")["watermark"].to_list()
    assert marks[-1] == at(95)
    assert result.unreleased == 1  # the 100 s event: nothing after it moves the watermark
    assert result.added_wait["max"] == 30 * S  # the 10 s event, logged at 11 s, passed at 41 s
    assert result.added_wait["p50"] == 10 * S
    table = result.by_partition
    assert table.columns == ["kafka_partition", "events", "on_time", "late", "dropped"]
    assert table.rows() == [(0, 11, 11, 0, 0), (1, 3, 2, 0, 1)]


def test_a_partition_with_nothing_yet_holds_the_watermark_back():
    history = stream((0, 1), (50, 5), (1, 6), (2, 30), kafka_partition=[0, 0, 0, 1])
    result = cl.watermark(history, "1s")
    assert result.events["watermark"].to_list() == [None, None, None, None]
    assert result.dropped == 0
    with_idle = cl.watermark(history, "1s", idle_timeout="1s")
    assert statuses(with_idle) == ["on_time", "on_time", "dropped", "dropped"]


def test_ties_in_processing_time_follow_kafka_offsets():
    rows = [(20, 10), (0, 10)]
    by_rows = cl.watermark(stream(*rows), "5s")
    assert statuses(by_rows) == ["on_time", "dropped"]
    by_offsets = cl.watermark(stream(*rows, kafka_offset=[2, 1]), "5s")
    assert statuses(by_offsets) == ["on_time", "on_time"]


def test_repeated_deliveries_are_replayed_like_any_record():
    history = stream((10, 11), (20, 21), (10, 40))  # the first event, delivered again later
    assert statuses(cl.watermark(history, "5s")) == ["on_time", "on_time", "dropped"]


# ---------------------------------------------------------------- the result


def test_summary_is_short_and_deterministic():
    result = cl.watermark(idle_history(), "5s", idle_timeout="20s")
    assert str(result) == (
        "watermark: 5s out-of-orderness, 0s allowed lateness, by `kafka_partition` "
        "(2 partitions), idle after 20s\n"
        "14 events: 13 on time, 0 late, 1 dropped (7.14%)\n"
        "added wait of on-time events: p50 10.0s, p90 29.5s, p99 30.0s, max 30.0s; "
        "1 not yet passed by the watermark at the end"
    )
    assert result._repr_markdown_().startswith("```\nwatermark:")
    assert repr(result) == str(result)


def test_a_frame_without_kafka_partition_is_one_stream_and_says_so():
    result = cl.watermark(stream((1, 2), (3, 4)), "1s")
    assert result.by is None
    assert "one partition: the frame has no `kafka_partition` column" in str(result)
    assert result.by_partition.columns == ["partition", "events", "on_time", "late", "dropped"]
    quiet = cl.watermark(stream((1, 2)), "1s", by=None)
    assert str(quiet).splitlines()[0].endswith("lateness, one partition")
    assert str(quiet).splitlines()[1].startswith("1 event: 1 on time")


def test_input_is_kept_and_rows_keep_their_order():
    history = cl.sample.parcels(300, seed=4).reverse().with_columns(extra=pl.lit(1))
    before = history.clone()
    result = cl.watermark(history, "1m", by="stream_id")
    assert history.equals(before)
    assert result.events.drop("watermark", "status").equals(history)


def test_empty_frames():
    result = cl.watermark(cl.frame.empty(), "1m")
    assert result.events.height == 0
    assert (result.on_time, result.late, result.dropped, result.unreleased) == (0, 0, 0, 0)
    assert "0 events: 0 on time" in str(result)
    assert cl.recommend_watermark(cl.frame.empty()).bound == dt.timedelta(0)


def test_null_partitions_are_a_partition_of_their_own():
    history = stream((10, 1), (0, 2), (20, 3), kafka_partition=[None, 1, None])
    result = cl.watermark(history, "0s")
    assert result.by_partition["kafka_partition"].to_list() == [1, None]
    assert result.by_partition["events"].to_list() == [1, 2]


# ---------------------------------------------------------------- the recommender


def test_recommended_bound_is_the_smallest_that_keeps_the_share():
    events = cl.sample.parcels(1_500, seed=9)
    for keep in (0.9, 0.97, 0.995):
        advice = cl.recommend_watermark(events, keep=keep)
        on_time = cl.watermark(events, advice.bound).on_time
        assert on_time >= keep * events.height
        if advice.bound > dt.timedelta(0):
            tighter = cl.watermark(events, advice.bound - dt.timedelta(microseconds=1))
            assert tighter.on_time < keep * events.height
        assert advice.by_partition["on_time"].item() == on_time


def test_recommendation_shape_and_text():
    advice = cl.recommend_watermark(idle_history(), keep=1.0)
    assert isinstance(advice.bound, dt.timedelta)
    assert advice.by_partition.columns == ["kafka_partition", "events", "bound", "on_time", "share"]
    assert advice.by_partition.schema["bound"] == pl.Duration("us")
    # partition 1 holds the combined watermark back to 10 s, so no event is ever behind it;
    # and each partition alone delivers in order
    assert advice.bound == dt.timedelta(0)
    assert str(advice) == (
        "to keep 100.0% of 14 events on time: max_out_of_orderness=0s "
        "(by `kafka_partition` (2 partitions); alone they would need 0s to 0s)"
    )


# ---------------------------------------------------------------- errors


def test_unknown_by_suggests_a_near_name():
    with pytest.raises(SchemaError, match=r"Did you mean 'stream_id'\?"):
        cl.watermark(stream((1, 2)), "1s", by="streamid")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_out_of_orderness": "soon"}, "`max_out_of_orderness` must be a duration.*'soon'"),
        ({"max_out_of_orderness": 5}, "`max_out_of_orderness` must be a duration.*5"),
        ({"max_out_of_orderness": -S}, "`max_out_of_orderness` must not be negative"),
        ({"max_out_of_orderness": S, "allowed_lateness": "x"}, "`allowed_lateness`"),
        ({"max_out_of_orderness": S, "idle_timeout": "1 fortnight"}, "`idle_timeout`"),
        ({"max_out_of_orderness": S, "at": "2026-03-03"}, "only matter with a `reducer`"),
        ({"max_out_of_orderness": S, "by": ["a", "b"]}, "`by` must name one column"),
    ],
)
def test_bad_arguments_name_the_parameter(kwargs, message):
    with pytest.raises(SchemaError, match=message):
        cl.watermark(stream((1, 2)), **kwargs)


@pytest.mark.parametrize("keep", [0, 1.5, -0.1, "all", True])
def test_bad_keep(keep):
    with pytest.raises(SchemaError, match="`keep` must be a share of events in"):
        cl.recommend_watermark(stream((1, 2)), keep=keep)


def test_a_key_is_not_a_partition(monkeypatch):
    monkeypatch.setattr("concursus_lab.delivery.arrivals.MAX_PARTITIONS", 100)
    history = cl.sample.parcels(400, seed=1)
    with pytest.raises(SchemaError, match="partitions; a watermark is kept per source"):
        cl.watermark(history, "1s", by="aggregate_id")


def test_not_a_frame():
    with pytest.raises(SchemaError, match="must be a polars DataFrame"):
        cl.watermark({"a": 1}, "1s")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", dt.timedelta(seconds=90)),
        ("2m", dt.timedelta(minutes=2)),
        ("2min", dt.timedelta(minutes=2)),
        ("1h30m", dt.timedelta(hours=1, minutes=30)),
        ("1.5h", dt.timedelta(hours=1, minutes=30)),
        ("500ms", dt.timedelta(milliseconds=500)),
        ("2 minutes 3 seconds", dt.timedelta(minutes=2, seconds=3)),
        ("1d", dt.timedelta(days=1)),
        ("250us", dt.timedelta(microseconds=250)),
    ],
)
def test_durations_can_be_written(text, expected):
    assert _to_timedelta(text, "x") == expected


@pytest.mark.parametrize(
    "value",
    [
        dt.timedelta(0),
        dt.timedelta(microseconds=1500),
        dt.timedelta(minutes=2, seconds=13, milliseconds=456),
        dt.timedelta(days=1, hours=2),
    ],
)
def test_exact_durations_read_back(value):
    assert _to_timedelta(_exact(value), "x") == value


# ---------------------------------------------------------------- a plain replay agrees


def replay(rows, bound, allowed, idle):
    """One event at a time: (partition, event µs, processing µs), in arrival order."""
    partitions = sorted({r[0] for r in rows}, key=lambda p: (p is None, p))
    newest = dict.fromkeys(partitions)
    last = dict.fromkeys(partitions, rows[0][2] if rows else 0)
    mark = None
    met, after = [], []
    for part, event, processed in rows:
        met.append(mark)
        newest[part] = event if newest[part] is None else max(newest[part], event)
        last[part] = processed
        active = [p for p in partitions if idle is None or processed - last[p] <= idle]
        if active and all(newest[p] is not None for p in active):
            candidate = min(newest[p] for p in active) - bound
            mark = candidate if mark is None else max(mark, candidate)
        after.append(mark)
    status = []
    for (_, event, _), m in zip(rows, met, strict=True):
        if m is None or event >= m:
            status.append("on_time")
        elif m - event <= allowed:
            status.append("late")
        else:
            status.append("dropped")
    waits, unreleased = [], 0
    for i, (_, event, processed) in enumerate(rows):
        if status[i] != "on_time":
            continue
        j = next(
            (j for j in range(i, len(rows)) if after[j] is not None and after[j] > event), None
        )
        if j is None:
            unreleased += 1
        else:
            waits.append(rows[j][2] - processed)
    return met, status, waits, unreleased


rows_strategy = st.lists(
    st.tuples(
        st.sampled_from([0, 1, 2, None]),
        st.integers(0, 60),  # processing second
        st.integers(-5, 30),  # lateness, seconds
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=150, deadline=None)
@given(
    rows=rows_strategy,
    bound=st.integers(0, 20),
    allowed=st.integers(0, 10),
    idle=st.one_of(st.none(), st.integers(1, 20)),
)
def test_vectorised_replay_agrees_with_a_plain_one(rows, bound, allowed, idle):
    history = stream(*[(p - lag, p) for _, p, lag in rows], kafka_partition=[r[0] for r in rows])
    result = cl.watermark(
        history, bound * S, allowed * S, idle_timeout=None if idle is None else idle * S
    )
    # arrival order: processing time, then row position
    order = sorted(range(len(rows)), key=lambda i: (rows[i][1], i))
    us = 1_000_000
    arrivals = [(rows[i][0], (rows[i][1] - rows[i][2]) * us, rows[i][1] * us) for i in order]
    met, status, waits, unreleased = replay(
        arrivals, bound * us, allowed * us, None if idle is None else idle * us
    )
    got = result.events.with_row_index("i").sort("processing_timestamp", "i")
    assert got["status"].cast(pl.String).to_list() == status
    assert got["watermark"].to_list() == [None if m is None else at(m / us) for m in met]
    assert result.unreleased == unreleased
    expected_max = dt.timedelta(microseconds=max(waits)) if waits else None
    assert result.added_wait["max"] == expected_max


@settings(max_examples=60, deadline=None)
@given(rows=rows_strategy, keep=st.sampled_from([0.5, 0.8, 0.9, 1.0]))
def test_recommendation_agrees_with_a_search(rows, keep):
    history = stream(*[(p - lag, p) for _, p, lag in rows], kafka_partition=[r[0] for r in rows])
    advice = cl.recommend_watermark(history, keep=keep)
    needed = math.ceil(keep * len(rows) - 1e-9)
    candidates = [dt.timedelta(seconds=s) for s in range(0, 70)]
    smallest = next(b for b in candidates if cl.watermark(history, b).on_time >= needed)
    assert advice.bound == smallest


# ---------------------------------------------------------------- states made wrong by drops


def test_counts_the_states_that_dropped_events_make_wrong():
    from concursus_lab.sample.parcels import parcel_state, parcel_types
    from tests.contract import event, frame

    def truck(pid, second, processed):
        return event(pid, second, processed, name="loadedOntoTruck", parameters='{"truckId":"T1"}')

    def delivered(pid, second, processed):
        return event(
            pid,
            second,
            processed,
            name="delivered",
            parameters='{"destinationId":"d1"}',
            characteristics=2,
        )

    history = frame(
        event("p1", 10, 11),
        truck("p1", 20, 21),
        event("p2", 40, 41),
        truck("p2", 50, 51),
        delivered("p2", 60, 61),
        delivered("p1", 30, 100),  # 25 s behind the watermark (60 - 5 s): dropped
        event("p3", 45, 120),  # dropped too: without it p3 has no state at all
    )
    result = cl.watermark(history, "5s", reducer=parcel_state, types=parcel_types)
    assert result.dropped == 2
    assert (result.wrong_states, result.aggregates) == (2, 3)
    assert str(result).splitlines()[-1] == (
        "states at the end: 2 of 3 aggregates wrong if dropped events are ignored"
    )
    # at 25 s only p1 has happened, and what happened to it by then arrived on time
    early = cl.watermark(history, "5s", reducer=parcel_state, types=parcel_types, at=at(25))
    assert (early.wrong_states, early.aggregates) == (0, 1)
    assert "states at 2026-03-02 00:00:25 UTC: 0 of 1 aggregates" in str(early)


# ---------------------------------------------------------------- the chart


def test_chart_keeps_marks_bounded_and_late_events_first():
    from concursus_lab.plot import watermark_marks

    events = cl.sample.parcels(3_000, seed=2)
    result = cl.watermark(events, "1m")
    points, band, subtitle = watermark_marks(result, max_points=500)
    assert points.height == 500
    off_time = result.late + result.dropped
    assert off_time > 250  # so they get half of the marks, on-time events the other half
    assert (points["status"] != "on_time").sum() == 250
    few = watermark_marks(result, max_points=5_000)[0]
    assert (few["status"] != "on_time").sum() == off_time  # all of them, when they fit
    assert band.height <= 300
    assert subtitle.startswith(f"500 of {events.height:,} events")
    chart = cl.plot.watermark(result, max_points=500)
    spec = chart.to_dict()
    assert [layer["mark"]["type"] for layer in spec["layer"]] == ["area", "circle"]
    assert chart.properties(width=300).to_dict()["width"] == 300  # still an altair chart


def test_chart_window_and_empty_results():
    from concursus_lab.plot import watermark_marks

    result = cl.watermark(stream((10, 11), (20, 21), (1, 30)), "5s")
    points, band, subtitle = watermark_marks(result, window=(at(15), None))
    assert points["status"].to_list() == ["on_time", "dropped"]
    assert subtitle == "all 2 events in the window"
    empty = cl.watermark(cl.frame.empty(), "1s")
    points, band, _ = watermark_marks(empty)
    assert (points.height, band.height) == (0, 0)
    cl.plot.watermark(empty).to_dict()
    with pytest.raises(ValueError, match="`max_points` must be a positive int"):
        watermark_marks(result, max_points=0)


def test_wrong_states_when_every_event_of_the_type_is_dropped_in_a_mixed_history():
    """The states without the dropped events are a part of the history: none of the type
    left there is an answer (every state wrong), not a `types=` mistake."""
    from concursus_lab.sample import ReceivedAtDepot, parcel_state, parcel_types

    bulbs = cl.EventTypes("lightbulb")

    @bulbs.initial
    class Installed: ...

    t0 = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)

    def m(x: int) -> dt.datetime:
        return t0 + dt.timedelta(minutes=x)

    lights = bulbs.encode(
        [
            Installed(
                aggregate_id=f"b{i}", event_timestamp=m(10 + i), processing_timestamp=m(10 + i)
            )
            for i in range(5)
        ]
    )
    late = parcel_types.encode(
        [ReceivedAtDepot("L", aggregate_id="p1", event_timestamp=m(0), processing_timestamp=m(30))]
    )
    result = cl.watermark(
        pl.concat([lights, late]), "1s", by=None, reducer=parcel_state, types=parcel_types
    )
    assert result.dropped == 1
    assert (result.wrong_states, result.aggregates) == (1, 1)
