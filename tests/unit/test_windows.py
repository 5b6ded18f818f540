"""Event-time windows under each engine's firing rule, worked out by hand.

One partition; 10 s tumbling windows; rows are (event second, processing second):
[0, 10) gets 1 s and 5 s on time, 8 s after the watermark passed 10 s, and 3 s once the
history is 16 s in; [10, 20) gets 12 s and 16 s; [20, 30) gets 25 s and never closes.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

import concursus_lab as cl
from concursus_lab.exceptions import SchemaError
from tests.unit.test_watermark import at, stream

HISTORY = ((1, 1.5), (5, 6), (12, 12.5), (8, 13), (16, 17), (3, 18), (25, 26))


def rows(result) -> list[tuple]:
    table = result.windows.with_columns(pl.col("result").cast(pl.String))
    return table.select(
        "window_start", "events", "first_result", "late_updates", "lost", "fired_at", "result"
    ).rows()


def test_the_model_and_flink_fire_at_the_end_and_update_late():
    history = stream(*HISTORY)
    model = cl.watermark(history, "0s", "5s", window="10s")
    # [0, 10) fires once 12 s is in (12.5 s); 8 s (12 s in, 2 s behind its end... within 5 s)
    # updates it late; 3 s arrives when 16 s is in: 16 >= 10 + 5, lost
    assert rows(model) == [
        (at(0), 4, 2, 1, 1, at(12.5), "wrong"),
        (at(10), 2, 2, 0, 0, at(26), "right"),
        (at(20), 1, 1, 0, 0, None, "open"),
    ]
    # Flink: the same rule (fire when the watermark reaches end - 1 ms), emitted at the
    # periodic check after the delivery that moved it
    flink = cl.watermark(history, "0s", "5s", engine="flink", window="10s")
    assert rows(flink) == [
        (at(0), 4, 2, 1, 1, at(12.6), "wrong"),
        (at(10), 2, 2, 0, 0, at(26.2), "right"),
        (at(20), 1, 1, 0, 0, None, "open"),
    ]
    assert str(flink).splitlines()[-1] == (
        "10s windows, tumbling: 3 windows, 1 right, 0 corrected late (1 late updates), "
        "1 wrong (1 deliveries lost), 1 still open"
    )


def test_spark_finalises_a_window_and_drops_its_late_rows():
    spark = cl.watermark(stream(*HISTORY), "0s", engine="spark", window="10s")
    # the batch that reads 12 s (at 13 s) moves the watermark to 12 s; the next batch (at
    # 14 s) evicts [0, 10) with it, but filters late rows by the watermark before (5 s), so
    # 8 s, read in that batch, is still counted (as Spark 3.5 does); 3 s, read at 19 s, is
    # dropped
    assert rows(spark) == [
        (at(0), 4, 3, 0, 1, at(14), "wrong"),
        (at(10), 2, 2, 0, 0, at(28), "right"),
        (at(20), 1, 1, 0, 0, None, "open"),
    ]


def test_kafka_streams_counts_within_the_grace_and_emits_on_close():
    kafka = cl.watermark(stream(*HISTORY), engine="kafka-streams", grace="5s", window="10s")
    # 8 s arrives 2 s after [0, 10) ended in stream time: within the grace, in the one
    # result emitted when stream time reaches 15 s (16 s, at 17 s); 3 s comes after: lost
    assert rows(kafka) == [
        (at(0), 4, 3, 0, 1, at(17), "wrong"),
        (at(10), 2, 2, 0, 0, at(26), "right"),
        (at(20), 1, 1, 0, 0, None, "open"),
    ]
    # with a grace long enough, every window is right
    roomy = cl.watermark(stream(*HISTORY), engine="kafka-streams", grace="10s", window="10s")
    assert roomy.windows["result"].cast(pl.String).to_list() == ["right", "open", "open"]


def test_a_window_corrected_by_late_updates():
    # 8 s is the only one behind: with 5 s allowed lateness, [0, 10) is corrected late
    history = stream((1, 1.5), (12, 12.5), (8, 13), (25, 26))
    result = cl.watermark(history, "0s", "5s", engine="flink", window="10s")
    assert rows(result)[0] == (at(0), 2, 1, 1, 0, at(12.6), "corrected late")


def test_sliding_windows_hold_each_event_twice():
    result = cl.watermark(stream(*HISTORY), "0s", "5s", window="10s", slide="5s")
    table = result.windows
    assert int(table["events"].sum()) == 2 * len(HISTORY)
    assert table["window_start"].to_list()[:3] == [at(-5), at(0), at(5)]
    assert (table["window_end"] - table["window_start"]).unique().to_list() == [
        dt.timedelta(seconds=10)
    ]
    assert "10s windows, sliding by 5s" in str(result)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"window": "0s"}, "`window` must be a positive duration"),
        ({"window": "10s", "slide": "3s"}, "`slide` must be a positive duration that divides"),
        ({"slide": "5s"}, "needs a `window` size"),
        ({"window": "soon"}, "`window` must be a duration"),
    ],
)
def test_bad_windows(kwargs, message):
    with pytest.raises(SchemaError, match=message):
        cl.watermark(stream((1, 2)), "1s", **kwargs)
