"""One history under each engine's documented rules, with answers worked out by hand.

Streams are ``(event second, processing second)`` rows (see tests/unit/test_watermark.py).
The rules, from each engine's documentation (cited in concursus_lab/delivery/engines/):

* Flink: per split ``newest - bound - 1 ms``, emitted every interval (200 ms), their
  minimum; late when ``t <= watermark``; dropped when ``t + allowedLateness <= watermark``;
* Spark: the maximum over earlier micro-batches (every partition) minus the delay; dropped
  when ``t <= watermark``; one micro-batch meets one watermark;
* Kafka Streams: stream time per task (partition); a record is dropped once
  ``stream time >= end + grace`` (its own millisecond: ``end = t + 1 ms``).
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

import concursus_lab as cl
from concursus_lab.exceptions import SchemaError
from tests.unit.test_watermark import at, idle_history, statuses, stream

MS = dt.timedelta(milliseconds=1)


def by_arrival(result) -> list[str]:
    ordered = result.events.with_row_index("i").sort("processing_timestamp", "i")
    return ordered["status"].cast(pl.String).to_list()


# ---------------------------------------------------------------- an idle partition


def test_an_idle_partition_holds_flink_back_and_spark_not_at_all():
    history = idle_history()  # partition 1 goes quiet at 11.5 s, then delivers 30 s at 101.5 s
    old = (pl.col("event_timestamp") == at(30)) & (pl.col("kafka_partition") == 1)
    # Flink without idleness: the minimum waits on partition 1 (newest 10 s), nothing drops
    flink = cl.watermark(history, "5s", engine="flink")
    assert flink.dropped == 0
    marks = flink.events.sort("processing_timestamp")["watermark"].to_list()
    assert marks[-1] == at(5) - MS  # 10 s - 5 s - 1 ms
    # withIdleness(20 s): quiet from the second check after 11.5 s (11.8 s), idle after
    # 31.8 s; at 101.4 s the watermark is partition 0's 100 s - 5 s - 1 ms: 30 s is dropped
    idle = cl.watermark(history, "5s", engine="flink", idle_timeout="20s")
    assert idle.events.filter(old)["watermark"].to_list() == [at(95) - MS]
    assert idle.events.filter(old)["status"].to_list() == ["dropped"]
    # Spark: the maximum over all partitions; partition 1's silence changes nothing, and
    # the batch that reads 101.5 s meets max(90 s, ...) - 5 s = 85 s: dropped, no idleness needed
    spark = cl.watermark(history, "5s", engine="spark")
    assert spark.events.filter(old)["watermark"].to_list() == [at(85)]
    assert spark.dropped == 1
    # Kafka Streams: partition 1's task last saw 10 s, so 30 s is in order there
    kafka = cl.watermark(history, engine="kafka-streams")
    assert kafka.dropped == 0
    assert kafka.events.filter(old)["watermark"].to_list() == [at(10)]


def test_flink_idleness_starts_counting_at_the_first_quiet_check():
    # partition 1 delivers once at 0.05 s; partition 0 runs ahead to 10 s at 1.3 s, then an
    # old event (3 s) arrives at 1.5 s; idle after 1 s, no out-of-orderness
    history = stream(
        (0, 0.05), (0, 0.1), (1, 1.1), (10, 1.3), (3, 1.5), kafka_partition=[1, 0, 0, 0, 0]
    )
    # the model: partition 1 is idle once 1 s has passed since 0.05 s, so at 1.3 s the
    # watermark jumps to 10 s and the old event is dropped
    model = cl.watermark(history, "0s", idle_timeout="1s")
    assert statuses(model)[-1] == "dropped"
    # Flink: checks every 200 ms; 0.2 s saw activity, 0.4 s is the first quiet one, so
    # partition 1 is idle only once t - 0.4 s > 1 s (the check at 1.6 s). The event at
    # 1.5 s meets the check at 1.4 s: min(10 s, 0 s) - 1 ms, and is on time
    flink = cl.watermark(history, "0s", engine="flink", idle_timeout="1s")
    assert flink.events["watermark"].to_list()[-1] == at(0) - MS
    assert statuses(flink)[-1] == "on_time"
    # a coarser interval: the 1.5 s event meets the check at 1.0 s, before 10 s arrived
    assert (
        cl.watermark(history, "0s", engine="flink", interval="1s").events["watermark"].to_list()[-1]
        == at(0) - MS
    )


# ---------------------------------------------------------------- one hot partition


def hot_history() -> pl.DataFrame:
    # partition 0 in step with processing time, with a straggler 15 s behind its own newest;
    # partition 1 stamps its events 1,000 s ahead
    p0 = [(0, 1), (10, 11), (20, 21), (30, 31), (40, 41), (25, 45.5)]
    p1 = [(1000, 2), (1010, 12), (1020, 22), (1030, 32), (1040, 42)]
    return stream(*p0, *p1, kafka_partition=[0] * len(p0) + [1] * len(p1))


def test_a_hot_partition_pushes_spark_for_everyone_and_nobody_else():
    history = hot_history()
    p0 = pl.col("kafka_partition") == 0
    # the model and Flink take the minimum: partition 0's 40 s - 20 s; the straggler is on time
    assert cl.watermark(history, "20s").dropped == 0
    assert cl.watermark(history, "20s", engine="flink").dropped == 0
    # Spark takes the maximum over partitions: from the batch at 11 s on, partition 0 meets
    # 1,000 s - 20 s and everything it sends after its first event is dropped
    spark = cl.watermark(history, "20s", engine="spark")
    assert statuses(spark) == ["on_time"] + ["dropped"] * 5 + ["on_time"] * 5
    assert spark.events.filter(p0)["watermark"].to_list()[1] == at(980)
    # Kafka Streams: a task per partition; partition 1 moves only its own stream time, and
    # the straggler is 15 s behind partition 0's: dropped without grace
    kafka = cl.watermark(history, engine="kafka-streams")
    assert statuses(kafka) == ["on_time"] * 5 + ["dropped"] + ["on_time"] * 5
    assert kafka.events.filter(p0)["watermark"].to_list()[-1] == at(40)


def test_an_event_just_inside_and_just_outside_the_grace():
    history = hot_history()
    straggler = -1 + 6  # its row: the last of partition 0

    def status(**kwargs) -> str:
        return statuses(cl.watermark(history, **kwargs))[straggler]

    # Kafka Streams drops a record once stream time >= its end + grace: 40 s >= 25.001 s + grace
    assert status(engine="kafka-streams", grace="15s") == "late"
    assert status(engine="kafka-streams", grace=15 * 1000 * MS - MS) == "dropped"
    # Flink drops an element once t + allowedLateness <= watermark (40 s - 0 - 1 ms)
    assert status(max_out_of_orderness="0s", allowed_lateness="15s", engine="flink") == "late"
    almost = 15 * 1000 * MS - MS  # 25 s + 14.999 s <= 39.999 s
    assert status(max_out_of_orderness="0s", allowed_lateness=almost, engine="flink") == "dropped"
    # the model: dropped when more than the allowed lateness behind 40 s - 0
    assert status(max_out_of_orderness="0s", allowed_lateness="15s") == "late"
    tight = dt.timedelta(seconds=15) - dt.timedelta(microseconds=1)
    assert status(max_out_of_orderness="0s", allowed_lateness=tight) == "dropped"
    # Spark counts nothing late, and drops a row at its watermark: on partition 0 alone the
    # straggler meets 40 s - delay, so a delay of 15 s drops it and 15.001 s keeps it
    alone = history.filter(pl.col("kafka_partition") == 0)

    def spark(delay) -> str:
        return statuses(cl.watermark(alone, delay, engine="spark"))[-1]

    assert spark("15s") == "dropped"
    assert spark(15 * 1000 * MS + MS) == "on_time"


# ---------------------------------------------------------------- inside one micro-batch


def test_out_of_order_inside_one_micro_batch():
    # 100 s and then 50 s arrive within one second of processing time; 60 s in the next
    # second, 55 s in the one after
    history = stream((0, 1), (100, 10.1), (50, 10.5), (60, 11.2), (55, 12.3))
    # the model judges each event after the one before it: 50 s meets 100 s - 10 s
    assert statuses(cl.watermark(history, "10s")) == ["on_time", "on_time"] + ["dropped"] * 3
    # Spark: the batch of [10 s, 11 s) meets max(0 s) - 10 s, whatever its order; rows are
    # filtered by the previous batch's watermark (Spark 3.4+), so 60 s (read at 12 s, after
    # the batch that read 100 s) passes too, and 55 s, one batch later, does not
    spark = cl.watermark(history, "10s", engine="spark")
    assert statuses(spark) == ["on_time"] * 4 + ["dropped"]
    assert spark.events["watermark"].to_list() == [None, at(-10), at(-10), at(-10), at(90)]
    # Flink's 200 ms interval separates them; a 1 s interval makes it one batch too
    flink = cl.watermark(history, "10s", engine="flink")
    assert statuses(flink) == ["on_time", "on_time"] + ["dropped"] * 3
    coarse = cl.watermark(history, "10s", engine="flink", interval="1s")
    assert statuses(coarse) == ["on_time"] * 3 + ["dropped"] * 2
    # Kafka Streams has no batches: stream time is 100 s as soon as it is read
    kafka = cl.watermark(history, engine="kafka-streams", grace="50s")
    assert statuses(kafka) == ["on_time", "on_time", "late", "late", "late"]


def test_spark_combines_inputs_by_its_multiple_watermark_policy():
    # input "a" is at 100 s, input "b" at 10 s; an event of 50 s arrives in the third batch
    history = stream((100, 1), (10, 3), (50, 5.5), source=["a", "b", "a"])
    # "min": an input with no data yet holds the watermark at the start (Spark: 0)
    low = cl.watermark(history, "5s", engine="spark", inputs="source")
    assert low.events["watermark"].to_list() == [None, None, at(5)]
    assert statuses(low) == ["on_time", "on_time", "on_time"]
    high = cl.watermark(history, "5s", engine="spark", inputs="source", policy="max")
    assert statuses(high) == ["on_time", "dropped", "dropped"]
    assert "inputs by `source` (policy max)" in str(high)


# ---------------------------------------------------------------- the result and errors


def test_each_engine_says_what_it_replayed():
    history = idle_history()
    assert str(cl.watermark(history, "5s", engine="flink")).splitlines()[0] == (
        "flink watermark (Flink 1.20 rules): forBoundedOutOfOrderness 5s, 0s allowed "
        "lateness, emitted every 200ms, by `kafka_partition` (2 partitions)"
    )
    assert str(cl.watermark(history, "5s", engine="flink-2.2")).startswith(
        "flink watermark (Flink 2.2 rules): "
    )
    assert str(cl.watermark(history, "5s", engine="spark")).splitlines()[0] == (
        "spark watermark: withWatermark 5s delay, the maximum over all partitions, a "
        "micro-batch every 1s, by `kafka_partition` (2 partitions)"
    )
    assert str(cl.watermark(history, engine="kafka-streams", grace="1m")).splitlines()[0] == (
        "kafka-streams stream time per task: 1min grace, by `kafka_partition` (2 partitions)"
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"engine": "storm"}, "`engine` must be one of"),
        ({"engine": "flink"}, "needs `max_out_of_orderness`"),
        ({"engine": "kafka-streams", "max_out_of_orderness": "5s"}, "has no watermark delay"),
        ({"engine": "kafka-streams", "allowed_lateness": "5s"}, "pass grace="),
        ({"engine": "spark", "max_out_of_orderness": "5s", "allowed_lateness": "1s"}, "delay"),
        ({"engine": "spark", "max_out_of_orderness": "5s", "idle_timeout": "1s"}, "maximum"),
        ({"engine": "flink", "max_out_of_orderness": "5s", "trigger": "1s"}, "micro-batch"),
        ({"max_out_of_orderness": "5s", "grace": "1s"}, "grace period"),
        ({"engine": "spark", "max_out_of_orderness": "5s", "policy": "avg"}, "'min'"),
        ({"engine": "spark", "max_out_of_orderness": "5s", "inputs": "sorce"}, "`inputs`"),
        ({"engine": "flink", "max_out_of_orderness": "5s", "interval": "0s"}, "positive"),
    ],
)
def test_options_that_do_not_apply_say_why(kwargs, message):
    with pytest.raises(SchemaError, match=message):
        cl.watermark(stream((1, 2)), **kwargs)


def test_the_engines_recommend_what_their_rules_need():
    history = hot_history()
    for engine in ("model", "flink", "spark"):
        advice = cl.recommend_watermark(history, keep=1.0, engine=engine)
        replay = cl.watermark(history, advice.bound, engine=engine, trigger=None)
        assert replay.on_time == history.height, engine
        if advice.bound:
            tighter = cl.watermark(history, advice.bound - MS, engine=engine)
            assert tighter.on_time < history.height, engine
    assert cl.recommend_watermark(history, keep=1.0).bound == dt.timedelta(seconds=15)
    assert cl.recommend_watermark(history, keep=1.0, engine="flink").bound == 15 * 1000 * MS
    # Spark: the straggler (25 s) meets the maximum, 1,040 s, plus the millisecond at the
    # watermark
    spark = cl.recommend_watermark(history, keep=1.0, engine="spark")
    assert spark.bound == dt.timedelta(seconds=1015, milliseconds=1)
    kafka = cl.recommend_watermark(history, keep=1.0, engine="kafka-streams")
    assert kafka.bound == dt.timedelta(seconds=15)
    assert cl.watermark(history, engine="kafka-streams", grace=kafka.bound).dropped == 0
    assert str(kafka).startswith("kafka-streams: to keep 100.0% of 11 events counted: grace=15s")
