"""The sample generator: canonical, repeatable, and messy in the ways it promises."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

import concursus_lab as cl
from concursus_lab.exceptions import SchemaError
from concursus_lab.sample import DEPOTS, Messiness


def test_canonical_and_repeatable():
    a = cl.sample.parcels(500, seed=11)
    assert cl.frame.validate(a).schema == cl.SCHEMA
    assert a.equals(cl.sample.parcels(500, seed=11))
    assert not a.equals(cl.sample.parcels(500, seed=12))
    assert cl.sample.parcels(0).height == 0


def test_lifecycle_of_each_parcel():
    frame = cl.sample.parcels(2_000, seed=3)
    first = frame.unique(cl.IDENTITY, keep="first")
    per_parcel = first.group_by("aggregate_id").agg(
        (pl.col("name") == "receivedAtDepot").sum().alias("received"),
        (pl.col("name") == "delivered").sum().alias("delivered"),
        (pl.col("name") == "deliveryFailed").sum().alias("failed"),
        (pl.col("name") == "loadedOntoTruck").sum().alias("loaded"),
    )
    assert per_parcel.height == 2_000
    assert (per_parcel["received"] == 1).all()
    assert (per_parcel["delivered"] <= 1).all()
    # every attempt is one load followed by a delivery or a failure
    attempts = per_parcel["delivered"] + per_parcel["failed"]
    assert (per_parcel["loaded"] == attempts).all()
    assert (per_parcel["failed"] <= 3).all()
    retried = per_parcel.filter(pl.col("failed") > 0).height
    assert 0.05 * 2_000 < retried < 0.25 * 2_000
    terminal = frame.filter(pl.col("characteristics") == 2)["name"].unique().to_list()
    assert terminal == ["delivered"]


def test_messiness_is_measured_not_assumed():
    frame = cl.sample.parcels(5_000, seed=7)
    profile = cl.lateness(frame).row(0, named=True)
    assert 0.005 < profile["duplicates"] / profile["count"] < 0.02  # about 1% repeats
    assert profile["out_of_order"] > 0
    assert profile["negative"] > 0
    assert profile["p50"] < dt.timedelta(seconds=10)  # most arrive within seconds
    assert profile["max"] > dt.timedelta(hours=1)  # a long tail of hours
    assert set(frame["stream_id"].unique()) == {"", "driver-app"}


def test_the_fast_clock_is_the_only_source_of_negative_lateness():
    frame = cl.sample.parcels(3_000, seed=2)
    lateness = pl.col("processing_timestamp") - pl.col("event_timestamp")
    negative = frame.filter(lateness < 0)
    depots = negative.filter(pl.col("name") == "receivedAtDepot")["parameters"].unique()
    assert depots.to_list() == ['{"depotId":"Croydon"}']
    calm = cl.sample.parcels(3_000, seed=2, messiness=Messiness(clock_ahead=dt.timedelta(0)))
    assert calm.filter((pl.col("processing_timestamp") - pl.col("event_timestamp")) < 0).height == 0


def test_times_are_milliseconds_like_cassandra_and_processing_ids_match():
    frame = cl.sample.parcels(300, seed=1)
    for column in ("event_timestamp", "processing_timestamp"):
        assert (frame[column].dt.microsecond() % 1000 == 0).all()
    assert cl.frame.processing_time(frame["processing_id"]).equals(
        frame["processing_timestamp"], check_names=False
    )
    assert frame["processing_timestamp"].is_sorted()  # arrival order
    assert set(
        frame.filter(pl.col("name") == "receivedAtDepot")["parameters"]
        .str.json_decode(pl.Struct({"depotId": pl.String}))
        .struct.field("depotId")
        .unique()
    ) <= set(DEPOTS)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"n_parcels": -1}, "`n_parcels` must be a non-negative int, got -1"),
        ({"n_parcels": True}, "`n_parcels` must be a non-negative int, got True"),
        ({"seed": "x"}, "`seed` must be a non-negative int, got 'x'"),
        ({"seed": -1}, "`seed` must be a non-negative int, got -1"),
        ({"days": "x"}, "`days` must be a number of days >= 0, got 'x'"),
        ({"days": -1}, "`days` must be a number of days >= 0, got -1"),
        ({"messiness": 0.1}, r"`messiness` must be a cl.sample.Messiness\(...\), got 0.1"),
        ({"start": "soon"}, "`start` must be a time; 'soon' is not ISO 8601"),
    ],
)
def test_bad_arguments_are_concursus_lab_errors(options, message):
    """Every argument is checked before anything is drawn; nothing raw from NumPy."""
    arguments = {"n_parcels": 5, **options}
    with pytest.raises(SchemaError, match=message):
        cl.sample.parcels(arguments.pop("n_parcels"), **arguments)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("failure_rate", 2, "`failure_rate` must be a share between 0 and 1, got 2"),
        ("duplicate_rate", -0.1, "`duplicate_rate` must be a share between 0 and 1, got -0.1"),
        ("clock_ahead", 90, r"`clock_ahead` must be a datetime.timedelta, got 90"),
        ("offline_lag", (1, 2), r"`offline_lag` must be a \(min, max\) pair of timedeltas"),
    ],
)
def test_messiness_out_of_range_is_refused(field, value, message):
    with pytest.raises(SchemaError, match=message):
        Messiness(**{field: value})
