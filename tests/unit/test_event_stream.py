"""The events a fold sees are made a chunk of rows at a time (``Classified.stream``): the
same instances, in the same order, whatever the chunk size."""

from __future__ import annotations

import concursus_lab as cl
from concursus_lab.events import decode
from concursus_lab.sample import parcel_state, parcel_types
from concursus_lab.timetravel.replay import prepare
from concursus_lab.timetravel.state_at import arguments


def test_events_made_in_small_chunks_are_the_events_made_at_once(monkeypatch):
    events = cl.sample.parcels(300, seed=4)  # several event types, interleaved
    types, frame, at, known_at = arguments(events, parcel_types, None, None, "last")
    plan = prepare(frame, types, at, known_at, "last", strict=False)
    whole = plan.events()
    expected = cl.state_at(events, parcel_state, types=parcel_types)
    assert len(whole) > 3 * 7 and len({type(e) for e in whole}) > 2
    monkeypatch.setattr(decode, "STREAM_CHUNK", 7)  # chunks cut between one type's rows
    assert plan.events() == whole
    got = cl.state_at(events, parcel_state, types=parcel_types)
    assert got.states == expected.states and got.frame.equals(expected.frame)
