"""The lateness view's engine choice: each engine's replay at the slider's bound (or grace)."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

import concursus_lab as cl

BOUND = dt.timedelta(minutes=1)


@pytest.fixture(scope="module")
def topic() -> pl.DataFrame:
    events = cl.sample.parcels(400, seed=3)
    return events.with_columns(
        kafka_partition=pl.col("aggregate_id").str.slice(7).cast(pl.Int32) % 4
    )


def test_the_engine_buttons_replay_each_engine(topic):
    view = cl.lateness_view(topic, bound=BOUND, allowed_lateness=dt.timedelta(minutes=5))
    assert view.engine_picker.options == ("model", "flink", "spark", "kafka-streams")
    assert view.engine == "model"
    for engine, expected in [
        ("flink", cl.watermark(topic, BOUND, "5m", engine="flink")),
        ("spark", cl.watermark(topic, BOUND, engine="spark")),
        ("kafka-streams", cl.watermark(topic, engine="kafka-streams", grace=BOUND)),
    ]:
        spec = view.chart.spec
        view.engine_picker.value = engine
        assert view.replay.engine == engine
        assert (view.replay.on_time, view.replay.late, view.replay.dropped) == (
            expected.on_time,
            expected.late,
            expected.dropped,
        )
        assert view.chart.spec != spec
        assert f"<b>{expected.dropped:,}</b> dropped" in view.caption.value
        assert str(expected).splitlines()[0] in str(view)
    assert "With Kafka Streams and a grace of 1min" in view.caption.value
    # the recommendation follows the engine: Kafka Streams' is a grace
    assert "grace=" in str(view)


def test_the_view_can_start_under_an_engine(topic):
    view = cl.lateness_view(topic, engine="kafka-streams", keep=0.9)
    advice = cl.recommend_watermark(topic, keep=0.9, engine="kafka-streams")
    assert view.bound_slider.value >= advice.bound
    assert view.replay.engine == "kafka-streams"
    assert view.replay.on_time + view.replay.late >= 0.9 * topic.height
    with pytest.raises(cl.ConcursusLabError, match="`engine` must be one of"):
        cl.lateness_view(topic, engine="beam")
