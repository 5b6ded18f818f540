"""On the real sample, the lateness profile measures what the generator was told to produce.

The committed sample store is ``cl.sample.parcels(2_000, seed=7)`` with the default
:class:`~concursus_lab.sample.Messiness`; shares are checked against binomial bounds (four
standard deviations), so the tests hold for any seed, not just this one.
"""

from __future__ import annotations

import datetime as dt
import math

import polars as pl
import pytest

import concursus_lab as cl
from concursus_lab.sample import DEFAULT_MESSINESS as M
from concursus_lab.sample import Messiness

LATENESS = pl.col("processing_timestamp") - pl.col("event_timestamp")
MINUTE = dt.timedelta(minutes=1)


def within(count: int, total: int, rate: float) -> bool:
    """``count`` of ``total`` is within four standard deviations of ``rate``."""
    sd = math.sqrt(total * rate * (1 - rate))
    return abs(count - total * rate) <= 4 * sd + 1


@pytest.fixture(scope="module")
def deliveries() -> pl.DataFrame:
    return cl.open().events(duplicates="keep")


@pytest.fixture(scope="module")
def first(deliveries) -> pl.DataFrame:
    """The first delivery of each event: lateness without the repeats."""
    ordered = deliveries.sort("processing_timestamp", maintain_order=True)
    return ordered.unique(cl.IDENTITY, keep="first", maintain_order=True)


def depot(frame: pl.DataFrame) -> pl.DataFrame:
    """Depot scans with the depot's name (a truck id starts with its depot's first letters)."""
    code = pl.col("parameters").str.extract(r'"(?:depotId|truckId)":"([A-Za-z]{3})')
    return frame.filter(pl.col("stream_id") == "").with_columns(depot=code.str.to_uppercase())


def test_the_sample_is_what_the_store_says(deliveries):
    regenerated = cl.sample.parcels(2_000, seed=7)
    assert deliveries.height == regenerated.height


def test_repeats_are_the_duplicate_rate(deliveries):
    row = cl.lateness(deliveries).row(0, named=True)
    events = row["count"] - row["duplicates"]
    assert within(row["duplicates"], events, M.duplicate_rate + M.late_duplicate_rate)


def test_negative_lateness_comes_only_from_the_fast_clock_depot(deliveries):
    profile = cl.lateness(depot(deliveries), by="depot")
    fast = M.fast_clock_depot[:3].upper()
    negative = dict(zip(profile["depot"], profile["negative"], strict=True))
    assert {d for d, n in negative.items() if n} == {fast}
    assert cl.lateness(deliveries, by="stream_id")["negative"].to_list() == [negative[fast], 0]
    # nearly all of its scans look logged before they happened: lag is seconds, the clock 90 s
    count = profile.filter(pl.col("depot") == fast)["count"].item()
    assert negative[fast] > 0.9 * count
    # and by about the clock's lead: never more, and only the lag (tenths of a second) less
    least = deliveries.select(LATENESS.min()).item()
    assert -M.clock_ahead < least < -M.clock_ahead + dt.timedelta(seconds=2)


def test_the_batch_depot_waits_for_its_upload(first):
    receipts = first.filter(pl.col("name") == "receivedAtDepot")
    profile = cl.lateness(depot(receipts), by="depot")
    batch = profile.filter(pl.col("depot") == M.batch_depot[:3].upper()).row(0, named=True)
    # uploads come every 30 min, so a receipt waits half of that on average, never more
    # than the batch plus a busy pipeline's minutes
    half = M.batch_every / 2
    assert half - 5 * MINUTE < batch["p50"] < half + 5 * MINUTE
    assert batch["max"] < M.batch_every + 16 * MINUTE
    others = profile.filter(pl.col("depot") != M.batch_depot[:3].upper())
    assert others["p50"].abs().max() < 2 * M.clock_ahead  # seconds, or the fast clock's lead


def test_phones_out_of_signal_make_the_long_tail(first):
    phones = first.filter(pl.col("stream_id") == "driver-app")
    row = cl.lateness(phones).row(0, named=True)
    low, high = M.offline_lag
    assert row["p90"] < low  # 94% were online
    assert low <= row["p99"] <= high + 20 * MINUTE  # the 6% that were not
    offline = phones.filter(LATENESS.ge(low)).height
    assert within(offline, phones.height, M.offline_rate)


def test_out_of_order_arrivals_are_counted_and_repeats_are_not(deliveries, first):
    all_rows = cl.lateness(deliveries).row(0, named=True)
    firsts = cl.lateness(first).row(0, named=True)
    assert all_rows["out_of_order"] == firsts["out_of_order"] > 0
    assert firsts["duplicates"] == 0


def test_other_settings_are_measured_too():
    loud = Messiness(clock_ahead=dt.timedelta(minutes=5), duplicate_rate=0.05)
    frame = cl.sample.parcels(3_000, seed=11, messiness=loud)
    row = cl.lateness(frame).row(0, named=True)
    events = row["count"] - row["duplicates"]
    assert within(row["duplicates"], events, 0.05 + loud.late_duplicate_rate)
    least = frame.select(LATENESS.min()).item()
    assert -loud.clock_ahead < least < -loud.clock_ahead + dt.timedelta(seconds=2)
    calm = cl.sample.parcels(3_000, seed=11, messiness=Messiness(clock_ahead=dt.timedelta(0)))
    assert cl.lateness(calm).row(0, named=True)["negative"] == 0


def test_a_watermark_on_the_sample_drops_what_the_recommender_promised(deliveries):
    for keep in (0.9, 0.95, 0.99):
        advice = cl.recommend_watermark(deliveries, keep=keep)
        result = cl.watermark(deliveries, advice.bound)
        assert result.on_time >= keep * deliveries.height
        assert result.dropped <= (1 - keep) * deliveries.height
    # with one partition, the fast clock's lead is part of what the bound must cover
    assert cl.recommend_watermark(deliveries, keep=0.9).bound > M.clock_ahead / 2
