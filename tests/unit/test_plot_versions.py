"""cl.plot.versions: events per event name, version and period of processing time."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

import concursus_lab as cl
from concursus_lab.plot.text_form import text_form
from concursus_lab.plot.versions import versions_bins
from tests.versions import histories


def test_the_bins_count_every_event_once_by_version_and_period():
    stored, _ = histories(parcels=60, seed=7)
    bins = versions_bins(stored, every="1h")
    assert bins["events"].sum() == stored.height
    assert (bins["end"] - bins["start"]).unique().to_list() == [dt.timedelta(hours=1)]
    hours = stored.with_columns(pl.col("processing_timestamp").dt.truncate("1h").alias("start"))
    expected = hours.group_by("name", "version", "start").len().sort("name", "version", "start")
    got = bins.select("name", "version", "start", pl.col("events").cast(pl.UInt32).alias("len"))
    assert got.sort("name", "version", "start").equals(expected)
    received = bins.filter(name="receivedAtDepot")["version"].unique(maintain_order=True)
    assert received.to_list() == ["0", "1", "2"]  # versions in their order


def test_the_period_is_chosen_to_give_at_most_sixty_bars():
    stored, _ = histories(parcels=60, seed=7)  # about 19 hours of processing time
    bins = versions_bins(stored)
    assert (bins["end"] - bins["start"]).unique().to_list() == [dt.timedelta(minutes=30)]
    assert bins["start"].n_unique() <= 60


def test_an_empty_history_has_the_same_columns_and_a_zero_period_is_refused():
    stored, _ = histories(parcels=5, seed=1)
    assert versions_bins(stored.head(0)).schema == versions_bins(stored).schema
    with pytest.raises(cl.exceptions.SchemaError, match="`every` must be longer than zero"):
        versions_bins(stored, every="0s")


def test_the_chart_stacks_versions_per_event_name_and_its_text_is_stable():
    stored, _ = histories(parcels=30, seed=2)
    spec = cl.plot.versions(stored, every="1h").to_dict()
    assert spec["facet"]["row"]["field"] == "event"
    assert spec["spec"]["encoding"]["color"]["sort"] == ["0", "1", "2"]
    rows = next(iter(spec["datasets"].values()))
    assert sum(r["events"] for r in rows) == stored.height
    for r in rows:  # each version's bar sits on the older versions' bars of its period
        below = sum(
            o["events"]
            for o in rows
            if (o["event"], o["start"]) == (r["event"], r["start"])
            and int(o["version"]) < int(r["version"])
        )
        assert r["top"] == below + r["events"]
    again = cl.plot.versions(stored.reverse(), every="1h").to_dict()
    assert text_form(again) == text_form(spec)
