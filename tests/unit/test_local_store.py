"""The embedded local store: the source contract, plus what only a folder of files can do."""

from __future__ import annotations

import json
import threading

import polars as pl
import pytest

import concursus_lab as cl
from concursus_lab.exceptions import SourceError
from tests.contract import SourceContract, at, canonical_sort, event, frame


class TestLocalStoreContract(SourceContract):
    @pytest.fixture
    def source(self, tmp_path):
        return cl.open(tmp_path / "store", create=True)


def test_opening_a_missing_folder_says_how_to_create_one(tmp_path):
    with pytest.raises(SourceError, match="create=True"):
        cl.open(tmp_path / "nothing")


def test_a_folder_that_is_not_a_store_is_refused(tmp_path):
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(SourceError, match="not a concursus-lab store"):
        cl.open(tmp_path)
    with pytest.raises(SourceError, match="not empty"):
        cl.open(tmp_path, create=True)


def test_appending_the_same_events_twice_leaves_one_row_per_identity(tmp_path):
    store = cl.open(tmp_path / "s", create=True)
    sample = cl.sample.parcels(300, seed=5)
    store.append(sample)
    store.append(sample)
    read = store.events()
    assert read.height == sample.select(cl.IDENTITY).n_unique()
    assert read.select(pl.struct(cl.IDENTITY).is_unique().all()).item()
    assert store.events(duplicates="keep").height == 2 * sample.height


def test_reads_only_the_buckets_of_the_ids_asked_for(tmp_path):
    store = cl.open(tmp_path / "s", create=True)
    store.append(cl.sample.parcels(500, seed=2))
    manifest = json.loads((tmp_path / "s" / "store.json").read_text())
    buckets = {f["bucket"] for f in manifest["files"] if f["kind"] == "events"}
    assert len(buckets) == 8
    one = store.events(aggregate_ids=["parcel-0000042"])
    assert set(one["aggregate_id"]) == {"parcel-0000042"}
    files = list(store._files(store._manifest(), "events", _query(["parcel-0000042"])))
    assert len(files) == 1


def _query(ids):
    from concursus_lab.sources.query import Query

    return Query.of(aggregate_ids=ids)


def test_scan_is_lazy_and_agrees_with_events(tmp_path):
    store = cl.open(tmp_path / "s", create=True)
    store.append(cl.sample.parcels(200, seed=9))
    lazy = store.scan(aggregate_type="parcel", known_at="2026-03-06")
    assert isinstance(lazy, pl.LazyFrame)
    eager = store.events(aggregate_type="parcel", known_at="2026-03-06")
    assert lazy.collect().sort(cl.IDENTITY).equals(eager.sort(cl.IDENTITY))


def test_a_reader_never_sees_half_an_append(tmp_path):
    store = cl.open(tmp_path / "s", create=True)
    batch = cl.sample.parcels(400, seed=1)
    batch = batch.unique(cl.IDENTITY, keep="first", maintain_order=True)
    sizes = set()
    stop = threading.Event()

    def read_while_writing():
        while not stop.is_set():
            sizes.add(cl.open(tmp_path / "s").events().height)

    reader = threading.Thread(target=read_while_writing)
    reader.start()
    try:
        for i in range(5):
            shifted = batch.with_columns(
                pl.col("aggregate_id") + f"-{i}",
            )
            store.append(shifted)
    finally:
        stop.set()
        reader.join()
    assert sizes <= {batch.height * k for k in range(6)}


def test_an_interrupted_append_leaves_no_trace(tmp_path, monkeypatch):
    store = cl.open(tmp_path / "s", create=True)
    store.append(frame(event("p1", 1, 2)))

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("concursus_lab.sources.local.manifest.Manifest.save", boom)
    with pytest.raises(KeyboardInterrupt):
        store.append(frame(event("p2", 1, 2)))
    monkeypatch.undo()
    assert store.events()["aggregate_id"].to_list() == ["p1"]
    store.append(frame(event("p3", 1, 2)))  # cleans the orphaned files up
    parquet = list((tmp_path / "s").rglob("*.parquet"))
    manifest = json.loads((tmp_path / "s" / "store.json").read_text())
    assert len(parquet) == len(manifest["files"])


def test_repr_is_short_and_deterministic(tmp_path):
    store = cl.open(tmp_path / "s", create=True)
    store.append(frame(event("p1", 1, 2), event("p1", 1, 3)))
    assert repr(store).endswith(": 1 events (parcel), 1 repeated deliveries, 2 files)")


def test_known_at_and_first_wins_on_many_buckets(tmp_path):
    store = cl.open(tmp_path / "s", create=True)
    sample = cl.sample.parcels(400, seed=4)
    store.append(sample)
    cut = at(3 * 86_400)
    expected = (
        sample.filter(pl.col("processing_timestamp") <= cut)
        .sort("processing_timestamp")
        .unique(cl.IDENTITY, keep="first")
    )
    got = store.events(known_at=cut, duplicates="first")
    assert got.sort(cl.IDENTITY).equals(expected.select(cl.SCHEMA.names()).sort(cl.IDENTITY))


# -- an append rewrites only the files whose stored winners it changes (issue 29) -------------


def _listed(store) -> dict[str, str]:
    """Each listed file's path -> its kind."""
    manifest = json.loads((store.root / "store.json").read_text())
    return {f["path"]: f["kind"] for f in manifest["files"]}


def _reads_as_one_append(store, tmp_path, *batches: pl.DataFrame) -> None:
    """``store`` reads exactly as a store given the same batches in one append would."""
    reference = cl.open(tmp_path / "reference", create=True)
    reference.append(pl.concat(batches))
    for duplicates in ("last", "first", "keep"):
        for known_at in (None, at(4 * 86_400)):
            got = store.events(duplicates=duplicates, known_at=known_at)
            want = reference.events(duplicates=duplicates, known_at=known_at)
            assert canonical_sort(got).equals(canonical_sort(want)), (duplicates, known_at)


def _redelivered(events: pl.DataFrame, days: int) -> pl.DataFrame:
    """``events`` delivered again, processed ``days`` later (earlier when negative)."""
    return events.with_columns(
        pl.col("processing_timestamp") + pl.duration(days=days),
        pl.lit(None, pl.String).alias("processing_id"),
    )


SECOND = {  # appends that beat no stored winner
    "new events repeating identities inside themselves": lambda first: cl.sample.parcels(
        400, seed=22
    ).with_columns(pl.col("aggregate_id") + "-b"),
    "deliveries that lose to the stored winners": lambda first: _redelivered(
        first.sample(200, seed=1), -30
    ),
}


@pytest.mark.parametrize("second", list(SECOND))
def test_an_append_that_beats_no_stored_winner_rewrites_no_stored_file(tmp_path, second):
    store = cl.open(tmp_path / "s", create=True)
    first = cl.sample.parcels(400, seed=21)
    store.append(first)
    before = _listed(store)
    batch = SECOND[second](first)
    assert batch.select(pl.struct(cl.IDENTITY).is_duplicated().any()).item() or "lose" in second
    store.append(batch)
    assert before.keys() <= _listed(store).keys(), "a stored file was rewritten"
    _reads_as_one_append(store, tmp_path, first, batch)


def test_displacing_stored_winners_rewrites_only_the_events_files_holding_them(tmp_path):
    from concursus_lab.frame.jhash import bucket as hash_bucket

    store = cl.open(tmp_path / "s", create=True)
    first = cl.sample.parcels(300, seed=24)
    store.append(first)
    before = _listed(store)
    repeated = {int(p.split("/b")[1][:3]) for p, kind in before.items() if kind == "superseded"}
    bucket = min(repeated)  # a bucket holding both kinds of file
    later = _redelivered(first.filter(hash_bucket(first["aggregate_id"], 8) == bucket).head(20), 30)
    store.append(later)
    gone = before.keys() - _listed(store).keys()
    assert {before[p] for p in gone} == {"events"}, gone  # superseded files are never rewritten
    assert len(gone) == 1 and f"/b{bucket:03d}-" in next(iter(gone)), gone
    _reads_as_one_append(store, tmp_path, first, later)


def test_many_appends_of_repeats_late_and_early_deliveries_read_as_one(tmp_path):
    """Repeats inside a batch, deliveries that beat or lose to stored winners, and enough
    appends to merge buckets (16 files): the store reads as one append of it all would."""
    store = cl.open(tmp_path / "s", create=True)
    sample = cl.sample.parcels(300, seed=25)
    batches = []
    for i in range(20):
        days = (i + 1) * (1 if i % 5 == 4 else -1)  # mostly earlier: losers, which add files
        batch = _redelivered(sample.sample(fraction=0.4, seed=i, with_replacement=True), days)
        store.append(batch)
        batches.append(batch)
    files = json.loads((store.root / "store.json").read_text())["files"]
    assert max(sum(f["bucket"] == b for f in files) for b in range(8)) <= 16
    _reads_as_one_append(store, tmp_path, *batches)
