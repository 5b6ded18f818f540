"""kafka-python's private API, all of it in one place: handing over whole fetches.

kafka-python builds two Python objects per record; :func:`read_whole_fetches` has a
consumer's ``poll()`` hand over each partition's fetch as one
:class:`~concursus_lab.sources.kafka.records.Records` instead, parsed at once by
:func:`~concursus_lab.sources.kafka.records.parse` (about twice as fast). It does so by
reaching into kafka-python's internals, which no release promises to keep:

* ``KafkaConsumer._fetcher``, the consumer's ``Fetcher``;
* ``Fetcher.PartitionRecords``, the class it makes for each partition's fetch, subclassed
  here: its ``_unpack_records(tp, records, key_deserializer, value_deserializer)``
  generator is replaced, and the subclass keeps up its ``fetch_offset``, ``check_crcs``,
  ``next_fetch_offset``, ``records_read``, ``bytes_read`` and ``drain()``; its
  ``_maybe_skip_record`` reads each yielded item's ``.offset``
  (:attr:`Records.offset <concursus_lab.sources.kafka.records.Records.offset>`);
* ``MemoryRecords._buffer``, the fetch's raw bytes.

The hook is used only on the kafka-python versions in :data:`VERIFIED`, and only when
those internals are where they should be. Otherwise a consumer keeps kafka-python's
public path (its records are turned into the same frames by
:func:`~concursus_lab.sources.kafka.records.from_consumer_records`, only slower), and one
warning per process says why. ``tests/unit/test_kafka_private.py`` fails loudly when an
installed kafka-python moves any of it.
"""

from __future__ import annotations

import functools
import inspect
import warnings
from typing import Any

from concursus_lab.sources.kafka.records import (
    CorruptRecords,
    Unsupported,
    from_consumer_records,
    parse,
)

#: kafka-python versions the hook was checked against, oldest and newest (both included):
#: tests pass on 3.0.12, and 3.0.0 and 3.0.6 have the same ``PartitionRecords`` and
#: ``MemoryRecords``, line for line.
VERIFIED = ((3, 0, 0), (3, 0, 12))
#: The parameters of ``PartitionRecords._unpack_records`` the subclass overrides.
UNPACK_PARAMETERS = ("self", "tp", "records", "key_deserializer", "value_deserializer")
#: What the subclass reads and writes on ``PartitionRecords`` (set in its ``__init__``).
PARTITION_RECORDS_FIELDS = (
    "fetch_offset",
    "check_crcs",
    "next_fetch_offset",
    "records_read",
    "bytes_read",
)


def read_whole_fetches(consumer: Any, *, keys: bool = False) -> bool:
    """Have ``consumer.poll()`` hand over each partition's fetch as one ``Records`` (with
    each record's key and headers too when ``keys``).

    Returns whether it did: False (after one warning per process) on a kafka-python
    version or layout this was not verified on, and the consumer reads records one by one.
    """
    if _unverified() is not None:
        return False
    fetcher = getattr(consumer, "_fetcher", None)
    base = getattr(type(fetcher), "PartitionRecords", None)
    if base is None or not callable(getattr(base, "_unpack_records", None)):
        _fall_back("its consumer has no `_fetcher.PartitionRecords._unpack_records`")
        return False
    fetcher.PartitionRecords = _whole_fetch_class(base, keys)
    return True


def problems() -> list[str]:
    """What of the private API the hook needs is missing from the installed kafka-python."""
    from kafka.consumer.fetcher import Fetcher
    from kafka.record.memory_records import MemoryRecords
    from kafka.structs import TopicPartition

    base = getattr(Fetcher, "PartitionRecords", None)
    if base is None:
        return ["Fetcher has no `PartitionRecords`"]
    found: list[str] = []
    unpack = getattr(base, "_unpack_records", None)
    if not inspect.isgeneratorfunction(unpack):
        found.append("`PartitionRecords._unpack_records` is not a generator function")
    elif tuple(inspect.signature(unpack).parameters) != UNPACK_PARAMETERS:
        found.append(f"`PartitionRecords._unpack_records{inspect.signature(unpack)}` changed")
    if "_buffer" not in getattr(MemoryRecords, "__slots__", ()):
        found.append("`MemoryRecords` has no `_buffer` slot")
        return found
    try:  # nothing is unpacked until records are taken
        empty = base(0, TopicPartition("", 0), MemoryRecords(b""))
    except Exception as exc:  # any failure means the layout moved
        return [*found, f"`PartitionRecords(...)` fails: {type(exc).__name__}: {exc}"]
    found += [
        f"`PartitionRecords` has no `{name}`"
        for name in PARTITION_RECORDS_FIELDS
        if not hasattr(empty, name)
    ]
    if not callable(getattr(empty, "drain", None)):
        found.append("`PartitionRecords` has no `drain()`")
    return found


def version() -> tuple[int, ...] | None:
    """The installed kafka-python's version as numbers; None when it is not plain numbers."""
    import kafka

    try:
        return tuple(int(part) for part in kafka.__version__.split("."))
    except ValueError:
        return None


@functools.cache
def _unverified() -> str | None:
    """Why the hook is not used here (warned once), or None when it is."""
    import kafka

    low, high = VERIFIED
    installed = version()
    if installed is None or not low <= installed <= high:
        why = (
            f"kafka-python {kafka.__version__} is not one it was verified on "
            f"({'.'.join(map(str, low))} to {'.'.join(map(str, high))})"
        )
    else:
        missing = problems()
        why = "; ".join(missing) if missing else None
    if why is not None:
        _fall_back(why)
    return why


_warned: set[str] = set()


def _fall_back(why: str) -> None:
    if why in _warned:
        return
    _warned.add(why)
    warnings.warn(
        f"Kafka reads take kafka-python's public path, about half as fast: {why}.",
        RuntimeWarning,
        stacklevel=2,
    )


@functools.cache
def _whole_fetch_class(base: type, keys: bool = False) -> type:
    class WholeFetch(base):  # type: ignore[misc, valid-type]
        def _unpack_records(self, tp, records, key_deserializer, value_deserializer):
            buffer = getattr(records, "_buffer", None)
            try:
                if buffer is None:
                    raise Unsupported("no raw buffer")
                chunk = parse(
                    buffer,
                    fetch_offset=self.fetch_offset,
                    check_crcs=self.check_crcs,
                    with_keys=keys,
                )
            except Unsupported:
                ones = list(
                    super()._unpack_records(tp, records, key_deserializer, value_deserializer)
                )
                chunk = from_consumer_records(ones, self.next_fetch_offset)
            except CorruptRecords as exc:
                from kafka.errors import CorruptRecordError

                raise CorruptRecordError(f"partition {tp.partition}: {exc}") from exc
            else:
                self.next_fetch_offset = max(self.next_fetch_offset, chunk.next_offset)
                self.records_read += len(chunk)
                self.bytes_read += chunk.bytes
            if len(chunk):
                yield chunk
            self.drain()

    WholeFetch.__name__ = WholeFetch.__qualname__ = "WholeFetchPartitionRecords"
    return WholeFetch
