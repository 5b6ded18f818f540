"""Reading ahead: a follow's batches read in a thread come in order, errors where the batch
was awaited, and closing stops the reading and closes the source's follow."""

from __future__ import annotations

import threading

import polars as pl
import pytest

import concursus_lab as cl
from concursus_lab.exceptions import SchemaError
from concursus_lab.live.ahead import ReadAhead
from concursus_lab.sample import parcel_state, parcel_types


class _Source:
    """A followed source whose follow yields the given batches, then raises ``error`` (or
    ends); it notes when its follow was closed."""

    def __init__(self, batches: list[pl.DataFrame], error: Exception | None = None) -> None:
        self.batches, self.error = batches, error
        self.closed = threading.Event()
        self.read = 0

    def follow(self, aggregate_type, **options):
        try:
            for frame in self.batches:
                self.read += 1
                yield frame
            if self.error is not None:
                raise self.error
        finally:
            self.closed.set()


def test_a_live_fold_reading_ahead_folds_the_same_batches():
    events = cl.sample.parcels(200, seed=5)
    batches = [events[i : i + 64] for i in range(0, events.height, 64)]
    ahead = cl.live.states(parcel_state, types=parcel_types)
    got = [c.read for c in ahead.follow(_Source(batches), read_ahead=True)]
    assert got == [b.height for b in batches]
    want = cl.state_at(events, parcel_state, types=parcel_types)
    assert ahead.result().frame.equals(want.frame)
    assert ahead.deliveries.equals(events)


def test_an_error_reading_is_raised_where_the_batch_was_awaited():
    events = cl.sample.parcels(20, seed=6)
    source = _Source([events[:30], events[30:]], error=cl.exceptions.SourceError("gone"))
    live = cl.live.states(parcel_state, types=parcel_types)
    follow = live.follow(source, read_ahead=True)
    next(follow), next(follow)
    with pytest.raises(cl.exceptions.SourceError, match="gone"):
        next(follow)
    assert live.read == events.height and source.closed.wait(5)


def test_closing_stops_the_reading_and_closes_the_sources_follow():
    events = cl.sample.parcels(60, seed=7)
    source = _Source([events[i : i + 10] for i in range(0, events.height, 10)])
    reader = ReadAhead(source.follow("parcel"), depth=1)
    assert next(reader).height == 10
    reader.close()
    assert source.closed.wait(5)
    assert source.read <= 3  # one folded, at most one waiting, one being handed over
    with pytest.raises(StopIteration):
        next(reader)


def test_a_store_cannot_be_read_ahead(tmp_path):
    store = cl.open(str(tmp_path / "store"), create=True)
    live = cl.live.states(parcel_state, types=parcel_types)
    with pytest.raises(SchemaError, match="cannot be read ahead"):
        live.follow(store, read_ahead=True)
