"""The contract every source keeps, written once and run against each source.

A source's test module subclasses :class:`SourceContract` and provides a ``source`` fixture
that yields a fresh, empty, writable source. The local store runs it always; Cassandra and
Kafka run it against the real servers.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

import concursus_lab as cl
from concursus_lab.exceptions import SchemaError

UTC = dt.UTC


def event(
    aggregate_id: str,
    second: int,
    processed: int,
    *,
    name: str = "receivedAtDepot",
    parameters: str = '{"depotId":"Lewisham"}',
    stream_id: str = "",
    aggregate_type: str = "parcel",
    characteristics: int = 0,
) -> dict:
    """One hand-made event: times are seconds after 2026-03-02 00:00 UTC."""
    base = dt.datetime(2026, 3, 2, tzinfo=UTC)
    processed_at = base + dt.timedelta(seconds=processed)
    return {
        "aggregate_type": aggregate_type,
        "aggregate_id": aggregate_id,
        "event_timestamp": base + dt.timedelta(seconds=second),
        "stream_id": stream_id,
        "processing_id": cl.frame.time_uuids(pl.Series([processed_at])).item(),
        "processing_timestamp": processed_at,
        "name": name,
        "version": "0",
        "parameters": parameters,
        "characteristics": characteristics,
    }


def frame(*events: dict) -> pl.DataFrame:
    return pl.DataFrame(list(events), schema=cl.SCHEMA)


def at(second: int) -> dt.datetime:
    return dt.datetime(2026, 3, 2, tzinfo=UTC) + dt.timedelta(seconds=second)


def canonical_sort(events: pl.DataFrame) -> pl.DataFrame:
    return events.select(cl.SCHEMA.names()).sort(*cl.IDENTITY, "processing_timestamp")


class SourceContract:
    """Subclass and provide a ``source`` fixture: a fresh, empty, writable source."""

    #: False where the store keeps only the winner of each identity (Cassandra).
    keeps_every_delivery = True

    def test_sample_round_trips_unchanged(self, source):
        sample = cl.sample.parcels(200, seed=3)
        winners = sample.sort("processing_timestamp").unique(cl.IDENTITY, keep="last")
        assert source.append(sample) == sample.height
        read = source.events()
        assert read.schema == cl.SCHEMA or list(read.columns[:10]) == list(cl.SCHEMA)
        assert read.select(cl.SCHEMA.names()).schema == cl.SCHEMA
        assert canonical_sort(read).equals(canonical_sort(winners))

    def test_same_identity_twice_keeps_the_last_processed(self, source):
        first = event("p1", 10, 20, parameters='{"depotId":"Lewisham"}')
        second = event("p1", 10, 30, parameters='{"depotId":"Croydon"}')
        source.append(frame(first))
        source.append(frame(second))
        read = source.events()
        assert read.height == 1
        assert read["parameters"].item() == '{"depotId":"Croydon"}'
        assert read["processing_timestamp"].item() == at(30)

    def test_every_delivery_is_kept_on_request(self, source):
        source.append(frame(event("p1", 10, 20), event("p1", 10, 25), event("p2", 11, 21)))
        assert source.events().height == 2
        first = source.events(duplicates="first")
        p1_first = first.filter(pl.col("aggregate_id") == "p1")["processing_timestamp"].item()
        if self.keeps_every_delivery:
            assert source.events(duplicates="keep").height == 3
            assert p1_first == at(20)
        else:  # the later delivery overwrote the earlier: there is no other to keep
            assert source.events(duplicates="keep").height == 2
            assert p1_first == at(25)

    def test_known_at_sees_the_history_as_it_was(self, source):
        source.append(
            frame(
                event("p1", 10, 11),
                event("p1", 20, 500, name="loadedOntoTruck", parameters='{"truckId":"T1"}'),
                event("p2", 15, 16),
            )
        )
        assert source.events(known_at=at(100)).height == 2
        assert source.events(known_at=at(500)).height == 3  # inclusive

    def test_known_at_prefers_the_delivery_known_then(self, source):
        source.append(frame(event("p1", 10, 20, parameters='{"depotId":"A"}')))
        source.append(frame(event("p1", 10, 90, parameters='{"depotId":"B"}')))
        then = source.events(known_at=at(50))
        if self.keeps_every_delivery:
            assert then["parameters"].to_list() == ['{"depotId":"A"}']
        else:  # the delivery known at 50 was overwritten: nothing of it is left to show
            assert then.height == 0
        assert source.events(known_at=at(90))["parameters"].to_list() == ['{"depotId":"B"}']

    def test_event_time_range_is_end_exclusive(self, source):
        source.append(frame(event("p1", 10, 11), event("p1", 20, 21), event("p1", 30, 31)))
        read = source.events(event_time=(at(10), at(30)))
        assert sorted(read["event_timestamp"].to_list()) == [at(10), at(20)]
        assert source.events(event_time=(None, at(20))).height == 1
        assert source.events(event_time=(at(20), None)).height == 2

    def test_filters_by_aggregate(self, source):
        source.append(
            frame(
                event("p1", 10, 11),
                event("p2", 10, 11),
                event("t1", 10, 11, aggregate_type="truck", name="departed", parameters="{}"),
            )
        )
        assert source.events(aggregate_ids=["p2"])["aggregate_id"].to_list() == ["p2"]
        assert source.events(aggregate_ids="p1").height == 1
        assert source.events(aggregate_type="truck")["aggregate_id"].to_list() == ["t1"]
        assert source.events(aggregate_type="parcel", aggregate_ids=["t1"]).height == 0

    def test_bad_input_writes_nothing(self, source):
        good = frame(event("p1", 10, 11))
        bad = good.with_columns(pl.lit("[1, 2]").alias("parameters"))
        with pytest.raises(SchemaError, match="parameters"):
            source.append(bad)
        naive = good.with_columns(pl.col("event_timestamp").dt.replace_time_zone(None))
        with pytest.raises(SchemaError, match="naive"):
            source.append(naive)
        with pytest.raises(SchemaError, match="`name` is missing"):
            source.append(good.drop("name"))
        assert source.events().height == 0

    def test_parameters_keys_are_sorted(self, source):
        source.append(frame(event("p1", 10, 11, parameters='{"b": 1, "a": [1, 2]}')))
        assert source.events()["parameters"].item() == '{"a":[1,2],"b":1}'
