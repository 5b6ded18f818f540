"""Files of a user's own events (CSV, Parquet, NDJSON), and kinds of source as plug-ins."""

from __future__ import annotations

import dataclasses
import datetime as dt
import sys
import textwrap

import polars as pl
import pytest

import concursus_lab as cl
from concursus_lab.exceptions import SourceError
from concursus_lab.sources import kinds
from concursus_lab.sources.files.source import FilesSource
from concursus_lab.testing.contract import SourceContract
from tests.unit.test_mapping import ORDERS, orders

UTC = dt.UTC


def canonical(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort("aggregate_id", "event_timestamp", "name")


@pytest.fixture()
def exports(tmp_path):
    """The same orders as CSV, Parquet and NDJSON, as a team would export them."""
    data = orders()
    data.write_csv(tmp_path / "orders.csv")
    data.write_parquet(tmp_path / "orders.parquet")
    data.write_ndjson(tmp_path / "orders.ndjson")
    return tmp_path


def test_a_frame_csv_parquet_and_ndjson_of_the_same_orders_are_one_history(exports):
    mapping = cl.Mapping(**ORDERS)
    expected = canonical(cl.from_polars(orders(), mapping))
    for name in ("orders.csv", "orders.parquet", "orders.ndjson"):
        source = cl.open(exports / name, mapping=mapping)
        assert isinstance(source, FilesSource)
        read = canonical(source.events(duplicates="keep"))
        assert read.equals(expected), name
        assert source.quarantine.height == 0


def test_a_folder_or_a_glob_of_files_is_read_as_one(tmp_path):
    data = orders()
    (tmp_path / "daily").mkdir()
    data.head(2).write_csv(tmp_path / "daily" / "2026-03-01.csv")
    data.tail(2).write_csv(tmp_path / "daily" / "2026-03-02.csv")
    mapping = cl.Mapping(**ORDERS)
    expected = canonical(cl.from_polars(data, mapping))
    folder = cl.open(tmp_path / "daily", mapping=mapping)
    assert canonical(folder.events(duplicates="keep")).equals(expected)
    glob = cl.open(str(tmp_path / "daily" / "*.csv"), mapping=mapping)
    assert canonical(glob.events(duplicates="keep")).equals(expected)
    assert "2 csv files" in repr(glob)


def test_filters_on_both_axes_work_on_files(exports):
    source = cl.open(exports / "orders.parquet", mapping=cl.Mapping(**ORDERS))
    assert source.events(aggregate_ids="o2", duplicates="keep")["name"].to_list() == ["created"]
    assert source.events(aggregate_type="shop").height == 0
    early = source.events(event_time=(None, "2026-03-02"), duplicates="keep")
    assert sorted(early["name"].to_list()) == ["created", "created", "paid"]
    known = source.events(known_at="2026-03-01T10:01:00Z", duplicates="keep")
    assert sorted(known["name"].to_list()) == ["created", "created"]


def test_a_file_without_a_mapping_says_how_to_map_it(exports):
    with pytest.raises(SourceError) as caught:
        cl.open(exports / "orders.csv")
    message = str(caught.value)
    assert "not a store" in message and "StoreDamaged" not in type(caught.value).__name__
    assert "aggregate_id='order_id'" in message
    assert "name='event_type'" in message
    assert "event_time='occurred_at'" in message


def test_an_export_of_canonical_events_needs_no_mapping(tmp_path):
    sample = cl.sample.parcels(30, seed=2)
    sample.write_parquet(tmp_path / "events.parquet")
    sample.write_csv(tmp_path / "events.csv")
    for name in ("events.parquet", "events.csv"):
        read = cl.open(tmp_path / name).events(duplicates="keep")
        assert read.columns == list(cl.SCHEMA), name
        assert read.sort(*cl.IDENTITY, "processing_timestamp").equals(
            sample.sort(*cl.IDENTITY, "processing_timestamp")
        ), name


def test_the_mapping_rides_in_the_path(exports):
    mapping = cl.Mapping(**ORDERS)
    by_url = cl.open(f"{exports}/orders.csv?{mapping.to_query()}")
    by_argument = cl.open(exports / "orders.csv", mapping=mapping)
    assert by_url.events(duplicates="keep").equals(by_argument.events(duplicates="keep"))
    with pytest.raises(SourceError, match="give one of them"):
        cl.open(f"{exports}/orders.csv?{mapping.to_query()}", mapping=mapping)


def test_files_are_read_never_written(exports):
    source = cl.open(exports / "orders.csv", mapping=cl.Mapping(**ORDERS))
    with pytest.raises(SourceError, match=r"read, never written.*cl.copy"):
        source.append(cl.sample.parcels(2, seed=1))
    before = (exports / "orders.csv").read_bytes()
    assert (exports / "orders.csv").read_bytes() == before


def test_files_copy_into_a_store(exports, tmp_path):
    source = cl.open(exports / "orders.csv", mapping=cl.Mapping(**ORDERS))
    store = tmp_path / "store"
    assert cl.copy(source, store, create=True, progress=False) == 4


def test_a_missing_processing_time_is_said(exports):
    fields = {k: v for k, v in ORDERS.items() if k != "processing_time"}
    source = cl.open(exports / "orders.csv", mapping=cl.Mapping(**fields))
    assert "no processing time mapped" in repr(source)
    read = source.events(duplicates="keep")
    assert read["processing_timestamp"].equals(
        read["event_timestamp"].alias("processing_timestamp")
    )


def test_mixed_formats_in_one_folder_are_refused(exports):
    with pytest.raises(SourceError, match="several formats"):
        cl.open(exports, mapping=cl.Mapping(**ORDERS))


def test_a_store_takes_no_mapping_and_concursus_kinds_neither():
    with pytest.raises(SourceError, match="is a store"):
        cl.open("data/sample", mapping=cl.Mapping(**ORDERS))
    with pytest.raises(SourceError, match="take no mapping"):
        cl.open("redis://127.0.0.1:6379/0", mapping=cl.Mapping(**ORDERS))


def test_our_kinds_of_source_are_registered_as_plug_ins():
    assert {"cassandra", "kafka", "redis", "rediss", "amqp", "hazelcast"} <= set(kinds.kinds())
    with pytest.raises(SourceError, match=r"unknown source scheme 'nope'.*cassandra://"):
        cl.open("nope://x")


def test_a_third_party_kind_registers_itself(tmp_path, monkeypatch):
    """A package of someone else's, installed: a dist-info with an entry point, a module."""
    (tmp_path / "their_source.py").write_text(
        textwrap.dedent(
            """
            import concursus_lab as cl
            from concursus_lab.sources.memory import MemorySource

            class TheirSource(MemorySource):
                @classmethod
                def from_url(cls, url, **options):
                    return cls(cl.sample.fixture("messy"), url=url)
            """
        )
    )
    info = tmp_path / "their_source-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: their-source\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[concursus_lab.sources]\ntheirs = their_source:TheirSource\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    kinds.kinds.cache_clear()
    try:
        source = cl.open("theirs://anything")
        assert type(source).__name__ == "TheirSource"
        assert source.events().height == cl.sample.fixture("messy").height - 2
    finally:
        kinds.kinds.cache_clear()
        sys.modules.pop("their_source", None)


# -- the contract every kind of source keeps ---------------------------------------------------


class TestMemorySourceContract(SourceContract):
    @pytest.fixture
    def source(self):
        from concursus_lab.sources.memory import MemorySource

        return MemorySource()


class TestCanonicalParquetFilesContract(SourceContract):
    """An export of canonical events, read back without a mapping."""

    writable = False

    @pytest.fixture
    def source_of(self, tmp_path):
        def holding(*frames: pl.DataFrame):
            for i, one in enumerate([*frames] or [cl.frame.empty()]):
                one.write_parquet(tmp_path / f"part-{i:03d}.parquet")
            return cl.open(tmp_path)

        return holding


#: The contract's events in a team's own layout: other names, epoch milliseconds, JSON text.
OWN_LAYOUT = cl.Mapping(
    aggregate_type=pl.col("kind"),
    aggregate_id="id",
    name="type",
    event_time="happened_ms",
    processing_time="logged",
    processing_id="pid",
    stream_id="stream",
    version="v",
    characteristics="flags",
    parameters="body",
    time_unit="ms",
    identity="concursus",
)


def own_layout(events: pl.DataFrame) -> pl.DataFrame:
    return events.select(
        kind="aggregate_type",
        id="aggregate_id",
        type="name",
        happened_ms=pl.col("event_timestamp").dt.epoch("ms"),
        logged=pl.col("processing_timestamp").dt.to_string("%Y-%m-%dT%H:%M:%S%.6f%:z"),
        pid="processing_id",
        stream="stream_id",
        v="version",
        flags="characteristics",
        body="parameters",
    )


class TestOwnLayoutCsvFilesContract(SourceContract):
    """The same contract through a mapping, from CSV files of another layout."""

    writable = False

    @pytest.fixture
    def source_of(self, tmp_path):
        def holding(*frames: pl.DataFrame):
            for i, one in enumerate([*frames] or [cl.frame.empty()]):
                own_layout(one).write_csv(tmp_path / f"part-{i:03d}.csv")
            return cl.open(tmp_path, mapping=OWN_LAYOUT)

        return holding


def test_two_events_of_one_minute_are_both_replayed_from_a_file(exports):
    """The new user's orders: `created` and `paid` in one minute, no sequence in the export."""
    shop = cl.EventTypes("order")

    @shop.initial
    class Created:
        amount: float
        sku: str

    @shop.event
    class Paid:
        amount: float
        sku: str

    @shop.terminal
    class Shipped:
        sku: str

    @dataclasses.dataclass(frozen=True)
    class Order:
        paid: bool

    def state(s, event):
        return Order(paid=isinstance(event, Paid) or (s is not None and s.paid))

    fields = {k: v for k, v in ORDERS.items() if k not in ("initial", "terminal")}
    source = cl.open(exports / "orders.csv", mapping=cl.Mapping(**fields, types=shop))
    states = cl.state_at(source.events(), state, types=shop, at="2026-03-01T10:30Z")
    assert states.counts["applied"] == 3  # o1 created and paid, o2 created
    assert states.frame.filter(aggregate_id="o1")["paid"].item() is True
