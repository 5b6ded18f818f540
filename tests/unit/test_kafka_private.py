"""kafka-python's private API, as the whole-fetch hook uses it: fail loudly when it moves.

If one of these fails after kafka-python was upgraded, reads still work (the adapter falls
back to kafka-python's public path and warns) but at about half the speed. Read the new
``kafka/consumer/fetcher.py`` (``PartitionRecords``) and ``kafka/record/memory_records.py``,
adapt ``concursus_lab/sources/kafka/private.py`` and widen its ``VERIFIED``.
No broker here: batches are built with kafka-python's own builder.
"""

from __future__ import annotations

import inspect
import warnings

import pytest
from kafka.consumer.fetcher import Fetcher
from kafka.record.memory_records import MemoryRecords
from kafka.structs import TopicPartition

from concursus_lab.sources.kafka import private
from concursus_lab.sources.kafka.records import Records, from_consumer_records
from tests.unit.test_kafka_codec import batches

TP = TopicPartition("t", 0)


@pytest.fixture
def fresh_warnings(monkeypatch):
    monkeypatch.setattr(private, "_warned", set())
    private._unverified.cache_clear()
    yield
    private._unverified.cache_clear()


# -- where the private API is --------------------------------------------------------------


def test_the_installed_kafka_python_is_one_the_hook_was_verified_on():
    import kafka

    low, high = private.VERIFIED
    assert private.version() is not None, kafka.__version__
    assert low <= private.version() <= high, (
        f"kafka-python {kafka.__version__} is outside private.VERIFIED {private.VERIFIED}: "
        "check its internals against the list in private.py, then widen VERIFIED"
    )


def test_the_adapter_finds_every_private_name_it_needs():
    assert private.problems() == []
    assert private._unverified() is None


def test_partition_records_unpacks_with_the_expected_signature():
    base = Fetcher.PartitionRecords
    assert isinstance(base, type)
    unpack = base._unpack_records
    assert inspect.isgeneratorfunction(unpack)
    assert tuple(inspect.signature(unpack).parameters) == (
        "self",
        "tp",
        "records",
        "key_deserializer",
        "value_deserializer",
    )
    init = inspect.signature(base.__init__).parameters
    assert list(init)[:4] == ["self", "fetch_offset", "tp", "records"]
    assert "check_crcs" in init
    # the fetcher makes its PartitionRecords through the attribute, so a subclass set on
    # the instance is the one used
    assert "self.PartitionRecords(" in inspect.getsource(Fetcher)


def test_partition_records_keeps_what_the_subclass_reads_and_writes():
    part = Fetcher.PartitionRecords(5, TP, MemoryRecords(b""), check_crcs=False)
    assert (part.fetch_offset, part.next_fetch_offset, part.check_crcs) == (5, 5, False)
    assert (part.records_read, part.bytes_read) == (0, 0)
    assert callable(part.drain) and callable(part.take)
    # its skip rule reads `.offset` of what _unpack_records yields (Records.offset)
    skip = inspect.getsource(Fetcher.PartitionRecords._maybe_skip_record)
    assert "record.offset < self.fetch_offset" in skip


def test_memory_records_keeps_the_fetch_bytes_in_buffer():
    raw = batches([b"a", b"b"])
    assert "_buffer" in MemoryRecords.__slots__
    assert MemoryRecords(raw)._buffer is raw


def test_a_consumer_keeps_its_fetcher_in_fetcher():
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(bootstrap_servers="127.0.0.1:1", api_version=(2, 8), group_id=None)
    try:
        assert isinstance(consumer._fetcher, Fetcher)
        assert private.read_whole_fetches(consumer) is True
        assert consumer._fetcher.PartitionRecords.__name__ == "WholeFetchPartitionRecords"
        assert issubclass(consumer._fetcher.PartitionRecords, Fetcher.PartitionRecords)
    finally:
        consumer.close()


# -- what the hook does with it ------------------------------------------------------------


@pytest.mark.parametrize("fetch_offset", [0, 333])
def test_a_whole_fetch_comes_out_as_one_records_like_kafka_python_reads_it(fetch_offset):
    values = [f'{{"n": {i}}}'.encode() * (1 + i % 7) for i in range(700)]
    values[4] = None
    raw = batches(values)
    whole_fetch = private._whole_fetch_class(Fetcher.PartitionRecords)
    ours = whole_fetch(fetch_offset, TP, MemoryRecords(raw))
    theirs = Fetcher.PartitionRecords(fetch_offset, TP, MemoryRecords(raw))
    taken, expected = ours.take(), theirs.take()
    assert len(taken) == 1 and isinstance(taken[0], Records)
    got, want = taken[0], from_consumer_records(expected, theirs.next_fetch_offset)
    assert got.values == want.values == values[fetch_offset:]
    assert got.offsets.tolist() == want.offsets.tolist()
    assert got.timestamps.tolist() == want.timestamps.tolist()
    assert ours.next_fetch_offset == theirs.next_fetch_offset == 700
    assert ours.records_read == 700 - fetch_offset and ours.bytes_read > 0
    assert not ours and not theirs  # both drained: the fetcher moves on


def test_an_old_record_format_goes_through_kafka_pythons_own_unpacking():
    raw = batches([b"x", b"y", b"z"], legacy=True)
    part = private._whole_fetch_class(Fetcher.PartitionRecords)(0, TP, MemoryRecords(raw))
    (got,) = part.take()
    assert got.values == [b"x", b"y", b"z"] and got.offsets.tolist() == [0, 1, 2]


def test_a_corrupt_fetch_raises_kafka_pythons_error():
    from kafka.errors import CorruptRecordError

    raw = bytearray(batches([b'{"a": 1}'] * 10))
    raw[-3] ^= 0xFF
    part = private._whole_fetch_class(Fetcher.PartitionRecords)(0, TP, MemoryRecords(bytes(raw)))
    with pytest.raises(CorruptRecordError, match=r"partition 0: .*CRC"):
        part.take()


# -- the fallback ----------------------------------------------------------------------------


def test_an_unverified_version_keeps_the_public_path_and_says_so_once(monkeypatch, fresh_warnings):
    import kafka

    monkeypatch.setattr(kafka, "__version__", "3.1.0")

    class Consumer:
        _fetcher = None

    with pytest.warns(RuntimeWarning, match=r"kafka-python 3\.1\.0 is not one .*3\.0\.0 to"):
        assert private.read_whole_fetches(Consumer()) is False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert private.read_whole_fetches(Consumer()) is False  # said once


def test_a_consumer_without_the_fetcher_keeps_the_public_path(fresh_warnings):
    class Consumer:
        pass

    with pytest.warns(RuntimeWarning, match="no `_fetcher.PartitionRecords"):
        assert private.read_whole_fetches(Consumer()) is False


def test_a_version_that_is_not_plain_numbers_is_not_verified(monkeypatch):
    import kafka

    monkeypatch.setattr(kafka, "__version__", "3.0.12.dev1+g1234")
    assert private.version() is None
