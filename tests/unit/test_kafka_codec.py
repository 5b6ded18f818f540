"""Concursus JSON on Kafka: decoding both layouts, arrays and bad values; encoding; batches.

No broker here: values are made as Java Concursus writes them, and record batches with
kafka-python's own builder.
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import orjson
import polars as pl
import pytest

import concursus_lab as cl
from concursus_lab.exceptions import MissingDependency, SourceError
from concursus_lab.frame.schema import normalise_parameters
from concursus_lab.sources import concursus_json as codec
from concursus_lab.sources.concursus_json_write import encode
from tests.contract import canonical_sort

UTC = dt.UTC
T0 = 1_459_420_277_981  # 2016-03-31T10:31:17.981Z
JAVA_ID = "c4f74bc0-e9f0-11f1-ffff-ffffffffff65"  # Java's malformed variant


def flat(**overrides) -> dict:
    event = {
        "aggregateType": "person",
        "aggregateId": "id1",
        "name": "created",
        "version": "0",
        "eventTimestamp": T0,
        "streamId": "",
        "processingId": "",
        "characteristics": 1,
        "parameters": {"name": "Arthur Putey"},
    }
    event.update(overrides)
    return {k: v for k, v in event.items() if v is not _DROP}


def nested(**overrides) -> dict:
    event = flat(**overrides)
    parameters = event.pop("parameters")
    return {"metadata": event, "parameters": parameters}


_DROP = object()


def values(*events) -> list[bytes]:
    return [e if isinstance(e, bytes) else json.dumps(e).encode() for e in events]


def decode(*events, times=None):
    raw = values(*events)
    return codec.decode(raw, [T0 + 1000] * len(raw) if times is None else times)


def test_flat_and_nested_layouts_decode_to_the_same_row():
    rows, bad = decode(flat(processingId=JAVA_ID), nested(processingId=JAVA_ID))
    assert bad.height == 0
    assert rows.columns == [*cl.SCHEMA.names(), "record"]
    assert rows.drop("record").schema == cl.SCHEMA
    assert rows.drop("record").n_unique() == 1
    row = rows.row(0, named=True)
    assert row["event_timestamp"] == dt.datetime(2016, 3, 31, 10, 31, 17, 981000, tzinfo=UTC)
    assert row["processing_id"] == JAVA_ID
    assert row["processing_timestamp"] == cl.frame.processing_time(JAVA_ID)
    assert row["parameters"] == '{"name":"Arthur Putey"}'
    assert row["characteristics"] == 1
    cl.frame.validate(rows)


def test_processing_time_falls_back_to_the_record_timestamp():
    rows, _ = decode(flat(processingId=""), flat(processingId="not-a-uuid"), times=[T0, T0 + 5])
    assert rows["processing_id"].to_list() == [None, "not-a-uuid"]
    expected = [dt.datetime.fromtimestamp(t / 1000, UTC) for t in (T0, T0 + 5)]
    assert rows["processing_timestamp"].to_list() == expected


def test_an_array_value_gives_several_events_from_one_record():
    rows, bad = decode([flat(aggregateId="a"), nested(aggregateId="b")], flat(aggregateId="c"))
    assert bad.height == 0
    assert rows["aggregate_id"].to_list() == ["a", "b", "c"]
    assert rows["record"].to_list() == [0, 0, 1]


def test_optional_fields_take_concursus_defaults_and_extra_fields_are_ignored():
    event = flat(streamId=_DROP, version=_DROP, processingId=_DROP, characteristics=_DROP)
    event["somethingNew"] = {"x": 1}
    rows, bad = decode(event, nested(extra=[1, 2]))
    assert bad.height == 0
    row = rows.row(0, named=True)
    assert (row["stream_id"], row["version"], row["processing_id"]) == ("", "0", None)
    assert row["characteristics"] == 0


def test_parameters_come_out_canonical_whatever_their_content():
    tricky = [
        {"b": 1, "a": [1, 2.5, {"z": None, "y": True}]},
        {"q": 'he said "}," and {left}', "p": "back\\slash\\", "o": '\\"}'},
        {"é": "ünïcödé \u2028 \n\t\x01", "emoji": "🚚"},
        {},
        {"n": {"m": {"l": {}}}, "big": 12345678901234567, "f": 0.1, "e": 1e20},
    ]
    rows, bad = decode(*(flat(parameters=p) for p in tricky))
    assert bad.height == 0
    expected = [orjson.dumps(p, option=orjson.OPT_SORT_KEYS).decode() for p in tricky]
    assert rows["parameters"].to_list() == expected
    again, n_bad, _ = normalise_parameters(rows["parameters"])
    assert n_bad == 0 and again.to_list() == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"not json at all", "not JSON"),
        (b"", "not JSON"),
        (None, "no value"),
        (b"42", "not an event: an integer"),
        (b'"text"', "not an event: a string"),
        (b"[]", "empty JSON array"),
        (b'[{"a": 1}, 3]', "array element 1 is an integer, not an event"),
        (b'[{"a": 1}, {"b": 1}]', "array element 0: unknown layout"),
        (b'{"foo": 1, "bar": 2}', "unknown layout: neither flat"),
        (flat(aggregateId=_DROP), "missing `aggregateId`"),
        (flat(name=_DROP), "missing `name`"),
        (flat(eventTimestamp=_DROP), "missing `eventTimestamp`"),
        (flat(parameters=_DROP), "missing `parameters`"),
        (flat(eventTimestamp="1459420277981"), "`eventTimestamp` is a string, expected an int"),
        (flat(eventTimestamp=1.5), "`eventTimestamp` is a number with a fraction"),
        (flat(eventTimestamp=2**70), "`eventTimestamp` is"),
        (flat(eventTimestamp=10**17), "`eventTimestamp` is out of range"),
        (flat(aggregateId=17), "`aggregateId` is an integer, expected a string"),
        (flat(name=None), "missing `name`"),
        (flat(characteristics=True), "`characteristics` is a boolean"),
        (flat(characteristics=7), "`characteristics` is 7; expected 0, 1"),
        (flat(parameters=[1, 2]), "`parameters` is an array, not an object"),
        (flat(parameters='{"a":1}'), "`parameters` is a string, not an object"),
        (flat(aggregateType=""), "empty `aggregateType`"),
        ({"metadata": "x", "parameters": {}}, "`metadata` is a string, not an object"),
        (nested(processingId=5), "`processingId` is an integer"),
    ],
)
def test_bad_values_are_reported_with_a_reason_and_good_ones_kept(value, reason):
    raw = [values(flat(aggregateId="before"))[0], value, values(flat(aggregateId="after"))[0]]
    if isinstance(value, dict | list):
        raw[1] = json.dumps(value).encode()
    rows, bad = codec.decode(raw, [T0] * 3)
    assert rows["aggregate_id"].to_list() == ["before", "after"]
    assert rows["record"].to_list() == [0, 2]
    assert bad["record"].to_list() == [1]
    assert reason in bad["reason"].item(), bad["reason"].item()


def test_an_array_with_one_bad_event_is_rejected_whole():
    rows, bad = decode([flat(aggregateId="a"), flat(name=_DROP)], flat(aggregateId="z"))
    assert rows["aggregate_id"].to_list() == ["z"]
    assert bad.rows() == [(0, "array element 1: missing `name`")]


def test_every_bad_value_in_a_large_batch_is_accounted_for():
    rng = np.random.default_rng(7)
    good = [flat(aggregateId=f"p{i}", eventTimestamp=T0 + i) for i in range(5000)]
    raw = values(*good)
    broken = sorted(rng.choice(len(raw), size=137, replace=False).tolist())
    kinds = [b"{oops", b"[1]", b"null", json.dumps(flat(name=3)).encode(), b'{"x":1}']
    for k, i in enumerate(broken):
        raw[i] = kinds[k % len(kinds)]
    rows, bad = codec.decode(raw, np.full(len(raw), T0))
    assert bad["record"].to_list() == broken
    assert rows.height == len(raw) - len(broken)
    assert set(rows["record"].to_list()).isdisjoint(broken)


def test_encode_then_decode_gives_the_sample_back_in_both_layouts():
    sample = cl.sample.parcels(300, seed=4)
    for layout in ("flat", "nested"):
        encoded = encode(sample, layout)
        assert encoded.dtype == pl.Binary
        first = json.loads(encoded[0])
        assert ("metadata" in first) == (layout == "nested")
        assert isinstance(first["parameters"], dict)
        times = sample["processing_timestamp"].dt.epoch("ms").to_numpy()
        rows, bad = codec.decode(encoded.to_list(), times)
        assert bad.height == 0
        assert canonical_sort(rows).equals(canonical_sort(sample))


def test_encode_writes_what_java_concursus_writes():
    frame = pl.DataFrame(
        [
            {
                "aggregate_type": "person",
                "aggregate_id": 'id "1"',
                "event_timestamp": dt.datetime.fromtimestamp(T0 / 1000, UTC),
                "stream_id": "",
                "processing_id": None,
                "processing_timestamp": dt.datetime.fromtimestamp(T0 / 1000, UTC),
                "name": "created",
                "version": "0",
                "parameters": '{"name":"Arthur Putey"}',
                "characteristics": 1,
            }
        ],
        schema=cl.SCHEMA,
    )
    assert json.loads(encode(frame, "flat").item()) == flat(aggregateId='id "1"')
    assert json.loads(encode(frame, "nested").item()) == nested(aggregateId='id "1"')
    with pytest.raises(ValueError, match="layout"):
        encode(frame, "xml")  # type: ignore[arg-type]


def test_an_empty_batch_decodes_to_empty_frames():
    rows, bad = codec.decode([], [])
    assert rows.height == 0 and bad.height == 0
    assert rows.drop("record").schema == cl.SCHEMA


# -- record batches ------------------------------------------------------------------------


def batches(values, *, compression=0, batch_size=4096, start=0, t0=T0, legacy=False):
    """Record batches as a broker sends them, built with kafka-python's own builder."""
    from kafka.record.memory_records import MemoryRecordsBuilder

    out = []
    builder = None
    for i, value in enumerate(values):
        while True:
            if builder is None:
                builder = MemoryRecordsBuilder(
                    1 if legacy else 2, compression, batch_size, offset=start + i
                )
            headers = [] if legacy or i % 3 else [("trace", b"x" * (i % 5))]
            if builder.append(t0 + i, f"k{i}".encode(), value, headers=headers) is not None:
                break
            builder.close()
            out.append(builder.buffer())
            builder = None
    builder.close()
    out.append(builder.buffer())
    return b"".join(out)


def kafka_python_reads(buffer, fetch_offset=0):
    from kafka.consumer.fetcher import Fetcher
    from kafka.record.memory_records import MemoryRecords
    from kafka.structs import TopicPartition

    part = Fetcher.PartitionRecords(fetch_offset, TopicPartition("t", 0), MemoryRecords(buffer))
    return part.take()


def with_attributes(buffer: bytes, bits: int) -> bytes:
    """Set attribute bits of the first batch and fix its CRC, as a broker would write it."""
    import struct

    import crc32c

    data = bytearray(buffer)
    (length,) = struct.unpack_from(">i", data, 8)
    end = 12 + length
    (attributes,) = struct.unpack_from(">h", data, 21)
    struct.pack_into(">h", data, 21, attributes | bits)
    struct.pack_into(">I", data, 17, crc32c.crc32c(bytes(data[21:end])))
    return bytes(data)


@pytest.mark.parametrize("compression", [0, 1])  # none, gzip
def test_record_batches_parse_as_kafka_python_reads_them(compression):
    from concursus_lab.sources.kafka.records import parse

    values = [json.dumps(flat(aggregateId=f"p{i}")).encode() * (1 + i % 40) for i in range(700)]
    values[5] = None
    values[6] = b""
    buffer = batches(values, compression=compression)
    expected = kafka_python_reads(buffer)
    got = parse(buffer)
    assert len(got) == len(expected) == 700
    assert got.values == [r.value for r in expected]
    assert got.offsets.tolist() == [r.offset for r in expected]
    assert got.timestamps.tolist() == [r.timestamp for r in expected]
    assert got.next_offset == 700
    middle = parse(buffer, fetch_offset=333)
    assert middle.offsets.tolist() == list(range(333, 700)) and middle.offset == 333
    assert middle.values == values[333:]


def test_a_batch_cut_short_by_the_fetch_size_is_left_for_the_next_fetch():
    from concursus_lab.sources.kafka.records import parse

    buffer = batches([b"x" * 100] * 300)
    whole = parse(buffer)
    cut = parse(buffer[: len(buffer) - 10])
    assert 0 < len(cut) < len(whole)
    assert cut.next_offset == len(cut)
    assert parse(buffer[:30]).next_offset == 0 and len(parse(buffer[:30])) == 0


def test_control_batches_are_skipped_and_log_append_time_is_used():
    from concursus_lab.sources.kafka.records import parse

    marker = with_attributes(batches([b"commit"], start=0), 0x20)
    data = batches([b"a", b"b"], start=1)
    got = parse(marker + data)
    assert got.values == [b"a", b"b"] and got.offsets.tolist() == [1, 2]
    assert parse(marker).next_offset == 1 and len(parse(marker)) == 0
    appended = with_attributes(batches([b"a", b"b", b"c"]), 0x08)
    assert parse(appended).timestamps.tolist() == [T0 + 2] * 3  # the batch's max timestamp


def test_corrupt_batches_and_old_formats_are_told_apart():
    from concursus_lab.sources.kafka.records import CorruptRecords, Unsupported, parse

    buffer = bytearray(batches([b'{"a":1}'] * 10))
    buffer[-3] ^= 0xFF
    with pytest.raises(CorruptRecords, match="CRC"):
        parse(bytes(buffer))
    assert len(parse(bytes(buffer), check_crcs=False)) == 10
    with pytest.raises(Unsupported):
        parse(batches([b"old"], legacy=True))


# -- settings ------------------------------------------------------------------------------


def test_security_settings_come_from_the_environment():
    from concursus_lab.sources.kafka.source import env_settings

    environ = {
        "CONCURSUS_LAB_KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
        "CONCURSUS_LAB_KAFKA_SASL_MECHANISM": "scram-sha-512",
        "CONCURSUS_LAB_KAFKA_SASL_USERNAME": "analyst",
        "CONCURSUS_LAB_KAFKA_SASL_PASSWORD": "s3cret",
        "CONCURSUS_LAB_KAFKA_SSL_CAFILE": "/etc/ca.pem",
        "CONCURSUS_LAB_KAFKA_SSL_CHECK_HOSTNAME": "false",
        "CONCURSUS_LAB_KAFKA_SSL_KEYFILE": "",
    }
    assert env_settings(environ) == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "analyst",
        "sasl_plain_password": "s3cret",
        "ssl_cafile": "/etc/ca.pem",
        "ssl_check_hostname": False,
    }
    assert env_settings({}) == {}


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("kafka://user:pw@127.0.0.1:9092/t", "SASL_USERNAME"),
        ("kafka://127.0.0.1:9092/", "one topic"),
        ("kafka:///t", "one topic"),
        ("kafka://127.0.0.1:9092/a/b", "one topic"),
    ],
)
def test_bad_kafka_urls_are_refused_before_connecting(url, match):
    with pytest.raises(SourceError, match=match):
        cl.open(url)


def test_a_missing_client_says_how_to_install_it(monkeypatch):
    import sys

    from concursus_lab.sources.kafka.connection import kafka_python

    kafka_python.cache_clear()
    monkeypatch.setitem(sys.modules, "kafka", None)
    try:
        with pytest.raises(MissingDependency, match=r"pip install 'concursus-lab\[kafka\]'"):
            cl.open("kafka://127.0.0.1:9092/t")
    finally:
        kafka_python.cache_clear()


def test_importing_the_package_does_not_import_kafka():
    import subprocess
    import sys

    code = "import sys, concursus_lab; print('kafka' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
