"""The contract every kind of source keeps, written once and run against each: ours and yours.

A kind of source (a plug-in registered in the ``concursus_lab.sources`` entry point group, see
``concursus_lab.sources.kinds``) proves it keeps the contract by subclassing
:class:`SourceContract` in its own test suite, as eventsourcing ships its recorder tests and
ibis its backend tests:

* a **writable** kind provides a ``source`` fixture: a fresh, empty source that takes
  ``append``;
* a **read-only** kind (files, a journal written by someone else) sets ``writable = False``
  and provides a ``source_of`` fixture: a function that returns a source holding exactly the
  deliveries of the frames it is given, in that order. Its ``append`` must refuse, clearly.

``event``, ``frame`` and ``at`` build small hand-made histories for such tests.

>>> from concursus_lab.testing.contract import event, frame
>>> frame(event("p1", 10, 11), event("p1", 20, 21)).height
2
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from concursus_lab.common.optional import require
from concursus_lab.exceptions import SchemaError, SourceError
from concursus_lab.frame.identity import IDENTITY
from concursus_lab.frame.schema import SCHEMA
from concursus_lab.frame.timeuuid import time_uuids
from concursus_lab.sample import parcels

pytest = require("pytest", needed_by="The source contract suite")

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
        "processing_id": time_uuids(pl.Series([processed_at])).item(),
        "processing_timestamp": processed_at,
        "name": name,
        "version": "0",
        "parameters": parameters,
        "characteristics": characteristics,
    }


def frame(*events: dict) -> pl.DataFrame:
    return pl.DataFrame(list(events), schema=SCHEMA)


def at(second: int) -> dt.datetime:
    return dt.datetime(2026, 3, 2, tzinfo=UTC) + dt.timedelta(seconds=second)


def canonical_sort(events: pl.DataFrame) -> pl.DataFrame:
    return events.select(SCHEMA.names()).sort(*IDENTITY, "processing_timestamp")


class SourceContract:
    """Subclass per kind of source; see the module docstring for the fixtures to provide."""

    #: False where the store keeps only the winner of each identity (Cassandra).
    keeps_every_delivery = True
    #: False for a kind that is read, never written (it provides ``source_of``).
    writable = True

    @pytest.fixture
    def source_of(self, request):
        """A source holding the deliveries of the frames given, in order (by default: the
        ``source`` fixture, appended to frame by frame)."""
        source = request.getfixturevalue("source")

        def holding(*frames: pl.DataFrame):
            for one in frames:
                source.append(one)
            return source

        return holding

    def test_sample_round_trips_unchanged(self, source_of):
        sample = parcels(200, seed=3)
        winners = sample.sort("processing_timestamp").unique(IDENTITY, keep="last")
        read = source_of(sample).events()
        assert read.schema == SCHEMA or list(read.columns[:10]) == list(SCHEMA)
        assert read.select(SCHEMA.names()).schema == SCHEMA
        assert canonical_sort(read).equals(canonical_sort(winners))

    def test_same_identity_twice_keeps_the_last_processed(self, source_of):
        first = event("p1", 10, 20, parameters='{"depotId":"Lewisham"}')
        second = event("p1", 10, 30, parameters='{"depotId":"Croydon"}')
        read = source_of(frame(first), frame(second)).events()
        assert read.height == 1
        assert read["parameters"].item() == '{"depotId":"Croydon"}'
        assert read["processing_timestamp"].item() == at(30)

    def test_every_delivery_is_kept_on_request(self, source_of):
        source = source_of(frame(event("p1", 10, 20), event("p1", 10, 25), event("p2", 11, 21)))
        assert source.events().height == 2
        first = source.events(duplicates="first")
        p1_first = first.filter(pl.col("aggregate_id") == "p1")["processing_timestamp"].item()
        if self.keeps_every_delivery:
            assert source.events(duplicates="keep").height == 3
            assert p1_first == at(20)
        else:  # the later delivery overwrote the earlier: there is no other to keep
            assert source.events(duplicates="keep").height == 2
            assert p1_first == at(25)

    def test_known_at_sees_the_history_as_it_was(self, source_of):
        source = source_of(
            frame(
                event("p1", 10, 11),
                event("p1", 20, 500, name="loadedOntoTruck", parameters='{"truckId":"T1"}'),
                event("p2", 15, 16),
            )
        )
        assert source.events(known_at=at(100)).height == 2
        assert source.events(known_at=at(500)).height == 3  # inclusive

    def test_known_at_prefers_the_delivery_known_then(self, source_of):
        source = source_of(
            frame(event("p1", 10, 20, parameters='{"depotId":"A"}')),
            frame(event("p1", 10, 90, parameters='{"depotId":"B"}')),
        )
        then = source.events(known_at=at(50))
        if self.keeps_every_delivery:
            assert then["parameters"].to_list() == ['{"depotId":"A"}']
        else:  # the delivery known at 50 was overwritten: nothing of it is left to show
            assert then.height == 0
        assert source.events(known_at=at(90))["parameters"].to_list() == ['{"depotId":"B"}']

    def test_event_time_range_is_end_exclusive(self, source_of):
        source = source_of(frame(event("p1", 10, 11), event("p1", 20, 21), event("p1", 30, 31)))
        read = source.events(event_time=(at(10), at(30)))
        assert sorted(read["event_timestamp"].to_list()) == [at(10), at(20)]
        assert source.events(event_time=(None, at(20))).height == 1
        assert source.events(event_time=(at(20), None)).height == 2

    def test_filters_by_aggregate(self, source_of):
        source = source_of(
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

    def test_bad_input_writes_nothing(self, source_of):
        source = source_of()
        good = frame(event("p1", 10, 11))
        if not self.writable:  # a read-only kind refuses every append, clearly
            with pytest.raises(SourceError, match=r"never written|read-only|cannot be written"):
                source.append(good)
            return
        bad = good.with_columns(pl.lit("[1, 2]").alias("parameters"))
        with pytest.raises(SchemaError, match="parameters"):
            source.append(bad)
        naive = good.with_columns(pl.col("event_timestamp").dt.replace_time_zone(None))
        with pytest.raises(SchemaError, match="naive"):
            source.append(naive)
        with pytest.raises(SchemaError, match="`name` is missing"):
            source.append(good.drop("name"))
        assert source.events().height == 0

    def test_parameters_keys_are_sorted(self, source_of):
        source = source_of(frame(event("p1", 10, 11, parameters='{"b": 1, "a": [1, 2]}')))
        assert source.events()["parameters"].item() == '{"a":[1,2],"b":1}'
