"""``state_at(..., into=folder)`` writes each bucket's states to Parquet as it goes and answers
as the in-memory fold does; a folder in use is refused; a run that stops says what it wrote.
A bucketed fold warns of conflicting deliveries once, as the in-memory fold does."""

from __future__ import annotations

import datetime as dt
import warnings

import polars as pl
import pytest

import concursus_lab as cl
from concursus_lab.exceptions import (
    ConflictingDeliveries,
    IncompleteWrite,
    ReducerError,
    SchemaError,
)
from concursus_lab.sample import parcel_state, parcel_types
from concursus_lab.timetravel.state_files import StateFiles


@pytest.fixture(scope="module")
def history() -> pl.DataFrame:
    frame = cl.sample.parcels(1200, seed=5)  # repeats, late and out-of-order deliveries
    broken = frame.head(3).with_columns(
        pl.lit("noSuchEvent").alias("name"), pl.lit("parcel-broken").alias("aggregate_id")
    )
    truck = frame.head(2).with_columns(pl.lit("truck").alias("aggregate_type"))
    return pl.concat([frame, broken, truck])


def conflicted(history: pl.DataFrame) -> pl.DataFrame:
    """``history`` with 40 parcels' receipts delivered again later, naming another depot:
    conflicting deliveries in several buckets."""
    receipts = history.filter(pl.col("name") == "receivedAtDepot").unique(
        "aggregate_id", keep="first", maintain_order=True
    )
    again = receipts.head(40).with_columns(
        pl.lit('{"depotId":"Elsewhere"}').alias("parameters"),
        (pl.col("processing_timestamp") + dt.timedelta(hours=1)).alias("processing_timestamp"),
        pl.lit(None, dtype=pl.String).alias("processing_id"),
    )
    return pl.concat([history, again])


def same(got: StateFiles, expected: cl.StateAt) -> None:
    assert isinstance(got, StateFiles)
    assert got.frame.equals(expected.frame)
    assert got.counts == expected.counts
    assert len(got) == expected.frame.height == got.scan().collect().height
    key = ["aggregate_id", "event_timestamp", "stream_id"]
    assert got.undecodable.sort(key).equals(expected.undecodable.sort(key))
    assert got.summary().splitlines()[:-1] == expected.summary().splitlines()


@pytest.mark.parametrize("question", [{}, {"at": "2026-03-06", "known_at": "2026-03-07"}])
def test_states_written_a_bucket_at_a_time_are_the_in_memory_answer(history, tmp_path, question):
    expected = cl.state_at(history, parcel_state, types=parcel_types, **question)
    assert expected.counts["undecodable"] and expected.counts["other_aggregate_types"]
    for k, (events, buckets) in enumerate(((history, 3), (history.lazy(), None))):
        folder = tmp_path / f"states-{k}"
        got = cl.state_at(
            events,
            parcel_state,
            types=parcel_types,
            buckets=buckets,
            into=folder,
            progress=False,
            **question,
        )
        same(got, expected)
        n = 3 if buckets else 16
        assert sorted(p.name for p in folder.iterdir()) == [
            f"part-{b:05d}.parquet" for b in range(n)
        ]
        for path in got.files:  # each bucket's file sorted by id, the frame's columns
            part = pl.read_parquet(path)
            assert part["aggregate_id"].is_sorted()
            assert part.columns == expected.frame.columns


def test_a_local_store_is_written_out_bucket_by_bucket(history, tmp_path):
    store = cl.open(tmp_path / "store", create=True)  # 8 buckets
    store.append(history)
    expected = cl.state_at(store.events(duplicates="keep"), parcel_state, types=parcel_types)
    got = cl.state_at(store, parcel_state, types=parcel_types, buckets=4, into=tmp_path / "out")
    same(got, expected)
    with pytest.raises(SchemaError, match=r"not kept as objects.*\.frame"):
        got.states  # noqa: B018


def test_a_folder_in_use_or_a_file_is_refused_and_left_alone(history, tmp_path):
    used = tmp_path / "used"
    used.mkdir()
    (used / "mine.txt").write_text("keep me")
    with pytest.raises(SchemaError, match=r"`into` folder '.*used' is not empty .*mine\.txt"):
        cl.state_at(history, parcel_state, types=parcel_types, into=used)
    assert [p.name for p in used.iterdir()] == ["mine.txt"]
    with pytest.raises(SchemaError, match="is a file"):
        cl.state_at(history, parcel_state, types=parcel_types, into=used / "mine.txt")
    with pytest.raises(SchemaError, match="`buckets` must be a positive int"):
        cl.state_at(history, parcel_state, types=parcel_types, into=tmp_path / "b", buckets=0)
    assert not any((tmp_path / "b").iterdir())


def test_a_history_without_the_type_is_the_same_error_and_leaves_no_file(history, tmp_path):
    trucks = history.filter(pl.col("aggregate_type") == "truck")
    with pytest.raises(SchemaError, match="no parcel events"):
        cl.state_at(trucks, parcel_state, types=parcel_types, into=tmp_path / "t")
    assert not any((tmp_path / "t").iterdir())


def stopping(after: int, error: BaseException):
    """The sample reducer, raising ``error`` at its ``after``-th call."""
    calls = [0]

    def reducer(state, event):
        calls[0] += 1
        if calls[0] == after:
            raise error
        return parcel_state(state, event)

    return reducer


def test_an_interrupted_run_says_what_it_wrote_and_leaves_only_whole_files(history, tmp_path):
    expected = cl.state_at(history, parcel_state, types=parcel_types)
    per_bucket = expected.counts["applied"] // 4
    folder = tmp_path / "cut"
    with pytest.raises(IncompleteWrite) as stop:
        cl.state_at(
            history,
            stopping(per_bucket * 2 + per_bucket // 2, KeyboardInterrupt()),
            types=parcel_types,
            buckets=4,
            into=folder,
        )
    message = str(stop.value)
    assert "stopped because it was interrupted" in message
    files = sorted(p.name for p in folder.iterdir())  # no temporary file left
    assert files and all(f.startswith("part-") for f in files) and len(files) < 4
    written = pl.concat([pl.read_parquet(folder / f) for f in files], how="diagonal_relaxed")
    assert f"{len(files)} of 4 buckets were written" in message
    assert f"{written.height:,} states" in message and stop.value.written == written.height
    # what was written is whole: every state in it is the in-memory answer's
    assert written.sort("aggregate_id").equals(
        expected.frame.join(written.select("aggregate_id"), on="aggregate_id")
    )


def test_a_reducers_error_keeps_its_type_and_says_what_was_written(history, tmp_path):
    def fails_on(state, event):
        if event.aggregate_id == "parcel-0000727":
            raise ZeroDivisionError("boom")
        return parcel_state(state, event)

    with pytest.raises(ReducerError, match="ZeroDivisionError: boom") as stop:
        cl.state_at(history, fails_on, types=parcel_types, buckets=4, into=tmp_path / "e")
    (note,) = stop.value.__notes__
    files = sorted(p.name for p in (tmp_path / "e").iterdir())
    assert f"{len(files)} of 4 buckets were written" in note or "0 of 4" in note


def test_states_that_parquet_cannot_hold_are_refused(history, tmp_path):
    class Opaque:
        pass

    def opaque(state, event):
        return Opaque()

    with pytest.raises(SchemaError, match="Python objects, which Parquet cannot hold"):
        cl.state_at(history, opaque, types=parcel_types, buckets=2, into=tmp_path / "o")


@pytest.mark.parametrize("into", [False, True])
def test_conflicts_in_many_buckets_are_one_warning_as_in_memory(history, tmp_path, into):
    events = conflicted(history)
    with pytest.warns(ConflictingDeliveries) as whole:
        expected = cl.state_at(events, parcel_state, types=parcel_types)
    whole = [w for w in whole if issubclass(w.category, ConflictingDeliveries)]
    assert len(whole) == 1 and expected.conflicting == 40
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = cl.state_at(
            events,
            parcel_state,
            types=parcel_types,
            buckets=8,
            progress=False,
            into=tmp_path / "c" if into else None,
        )
    conflicting = [w for w in caught if issubclass(w.category, ConflictingDeliveries)]
    assert len(conflicting) == 1
    assert str(conflicting[0].message) == str(whole[0].message)
    assert got.counts == expected.counts
