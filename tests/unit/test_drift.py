"""Lateness that drifts: per period of processing time, the percentiles and the bound."""

from __future__ import annotations

import datetime as dt

import pytest

import concursus_lab as cl
from concursus_lab.exceptions import SchemaError
from tests.unit.test_watermark import at, stream

S = dt.timedelta(seconds=1)

#: The first hour delivers in order, 1 s late; in the second, 3,000 s arrives 10 min behind.
NIGHT = ((10, 11), (20, 21), (30, 31), (40, 41), (3600, 3601), (3000, 3610), (3620, 3621))


def test_each_period_gets_its_own_bound_and_the_worst_is_called_out():
    advice = cl.recommend_watermark(stream(*NIGHT), keep=1.0, every="1h")
    table = advice.periods
    assert table.columns == ["start", "deliveries", "p50", "p90", "p99", "max", "bound", "worst"]
    assert table["start"].to_list() == [at(0), at(3600)]
    assert table["deliveries"].to_list() == [4, 3]
    assert table["bound"].to_list() == [dt.timedelta(0), 600 * S]
    assert table["p99"].to_list() == [S, 610 * S]
    assert table["worst"].to_list() == [False, True]
    assert advice.worst["start"] == at(3600)
    assert advice.bound == 600 * S  # the whole history: as without periods
    assert str(advice).splitlines()[1:] == [
        "by 1h of processing time, 2 periods need bounds from 0s to 10min (median 5min)",
        "worst: the 1h from 2026-03-02 01:00:00 UTC, 3 deliveries, needs 10min "
        "(lateness p99 10min 10s)",
    ]
    # a share that lets the one straggler go needs nothing in either hour
    loose = cl.recommend_watermark(stream(*NIGHT), keep=0.6, every="1h")
    assert loose.periods["bound"].to_list() == [dt.timedelta(0), dt.timedelta(0)]


def test_drift_under_each_engine():
    history = stream(*NIGHT)
    spark = cl.recommend_watermark(history, keep=1.0, every="1h", engine="spark")
    assert spark.periods["bound"].to_list()[1] == 600 * S + dt.timedelta(milliseconds=1)
    kafka = cl.recommend_watermark(history, keep=1.0, every="1h", engine="kafka-streams")
    assert kafka.periods["bound"].to_list() == [dt.timedelta(0), 600 * S]
    assert "periods need graces" in str(kafka)


def test_the_drift_chart():
    advice = cl.recommend_watermark(stream(*NIGHT), keep=1.0, every="1h")
    from concursus_lab.plot.drift import drift_lines

    lines = drift_lines(advice)
    assert lines.height == 4 * 2  # p50, p90, p99 and the bound, per period
    assert set(lines["series"]) == {"p50", "p90", "p99", "bound"}
    spec = cl.plot.drift(advice).to_dict()
    assert [layer["mark"]["type"] for layer in spec["layer"]] == ["line", "rule"]
    assert "worst period: 2026-03-02 01:00 UTC needs a bound of 10min" in str(spec["title"])
    with pytest.raises(SchemaError, match="every='1h'"):
        cl.plot.drift(cl.recommend_watermark(stream(*NIGHT)))


def test_empty_and_bad_periods():
    empty = cl.recommend_watermark(cl.frame.empty(), every="1h")
    assert empty.periods.height == 0
    assert empty.worst is None
    assert "no deliveries" in str(empty)
    cl.plot.drift(empty).to_dict()
    with pytest.raises(SchemaError, match="`every` must be a positive duration"):
        cl.recommend_watermark(stream((1, 2)), every="0s")
    with pytest.raises(SchemaError, match="`every` must be a duration"):
        cl.recommend_watermark(stream((1, 2)), every="hourly")
