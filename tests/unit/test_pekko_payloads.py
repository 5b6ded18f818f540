"""Journal payloads decoded without the application's classes: CBOR, JSON, compression, names."""

from __future__ import annotations

import gzip
import random
import struct

import orjson
import polars as pl
import pytest

from concursus_lab.exceptions import SourceError
from concursus_lab.frame import canonical_json
from concursus_lab.sources.pekko import cbor, names, payloads
from concursus_lab.sources.pekko.payloads import Fields, decode, lz4_block, unpack
from concursus_lab.sources.pekko.source import _cassandra_url

# -- CBOR ----------------------------------------------------------------------------------


def _text(s: str) -> bytes:
    raw = s.encode()
    return bytes([0x60 | len(raw)]) + raw


@pytest.mark.parametrize(
    ("data", "value"),
    [
        (b"\x17", 23),
        (b"\x18\x18", 24),
        (b"\x19\x03\xe8", 1000),
        (b"\x1b\x00\x00\x00\x17\x48\x76\xe7\xff", 99_999_999_999),
        (b"\x20", -1),
        (b"\x39\x01\x2b", -300),
        (b"\xc2\x49\x01" + b"\x00" * 8, 2**64),  # bignum: beyond 64 bits, exact
        (b"\xf4", False),
        (b"\xf5", True),
        (b"\xf6", None),
        (b"\xf9\x3c\x00", 1.0),  # half precision
        (b"\xfa\x3f\xc0\x00\x00", 1.5),
        (b"\xfb" + struct.pack(">d", 0.1), 0.1),
        (b"\x43\x01\x02\x03", "AQID"),  # a byte string, as Jackson writes byte[] in JSON
        (b"\x7f\x62ab\x61c\xff", "abc"),  # a chunked text
        (b"\x82\x01\x9f\x02\xff", [1, [2]]),
        (b"\xa1" + _text("k") + b"\x01", {"k": 1}),
        (b"\xbf" + _text("a") + b"\xbf" + _text("b") + b"\xf6\xff\xff", {"a": {"b": None}}),
        (b"\xa1\x01\x02", {"1": 2}),  # a number key becomes text
    ],
)
def test_cbor_values(data, value):
    assert cbor.loads(data) == value


def test_cbor_decimals_keep_their_digits():
    assert orjson.dumps(cbor.loads(b"\xc4\x82\x21\x19\x30\x39")) == b"123.45"
    assert orjson.dumps(cbor.loads(b"\xc4\x82\x02\x03")) == b"3E2"


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"\xfb" + struct.pack(">d", float("nan")), "JSON cannot hold"),
        (b"\x19\x03", "ends inside"),
        (b"\x01\x02", "1 bytes after the item"),
        (b"\xa1\x01", "ends inside"),
        (b"\x62\xff\xfe", "not UTF-8"),
        (b"\xf0", "simple value"),
        (b"\x81" * 300 + b"\x01", "nested deeper"),
    ],
)
def test_what_is_not_cbor_says_why(data, why):
    with pytest.raises(cbor.CborError, match=why):
        cbor.loads(data)


# -- compression -------------------------------------------------------------------------------


def test_gzip_is_unpacked():
    assert unpack(gzip.compress(b'{"a":1}')) == b'{"a":1}'


def test_lz4_blocks_are_unpacked():
    # literals "abcd", then a match of 8 bytes at offset 4 (overlapping), then literals "!"
    block = bytes([0x44]) + b"abcd" + b"\x04\x00" + bytes([0x10]) + b"!"
    assert lz4_block(block, 13) == b"abcdabcdabcd!"
    framed = bytes.fromhex("87d96df6") + (13).to_bytes(4, "big") + block
    assert unpack(framed) == b"abcdabcdabcd!"
    with pytest.raises(ValueError, match="header says 14"):
        lz4_block(block, 14)
    with pytest.raises(ValueError, match="before the start"):
        lz4_block(bytes([0x04]) + b"\x09\x00", 8)


# -- payloads by serializer --------------------------------------------------------------------


def test_payloads_by_serializer():
    out = decode(
        [31, 32, 33, 20, 4, 21, 18, 19, 35, 1, 9001],
        [
            b'{"b":[1,{"z":0,"y":1}],"a":"x"}',
            b'{"old":true}',
            b"\xbf" + _text("cents") + b"\x19\x03\xe8\xff",
            "héllo".encode(),
            b"\x01\x02\x03",
            b"\xff",
            (-5).to_bytes(8, "little", signed=True),
            (7).to_bytes(4, "little"),
            b"\x01",
            b"\xac\xed\x00\x05",
            b"secret",
        ],
    )
    assert out.parameters.to_list() == [
        '{"a":"x","b":[1,{"y":1,"z":0}]}',
        '{"old":true}',
        '{"cents":1000}',
        '{"value":"héllo"}',
        '{"value":"AQID"}',
        '{"value":"/w=="}',
        '{"value":-5}',
        '{"value":7}',
        '{"value":true}',
        None,
        None,
    ]
    assert set(out.reasons) == {9, 10}
    assert "Java serialization" in out.reasons[9]
    assert "serializer 9001 is not one concursus-lab reads" in out.reasons[10]


def test_numbers_keep_their_text_and_dates_in_strings_stay_fast():
    out = decode([31, 31], [b'{"rate":0.10,"n":1e2}', b'{"at":"2026-03-01T09:00:00.500Z","n":12}'])
    assert out.parameters.to_list() == [
        '{"n":1e2,"rate":0.10}',
        '{"at":"2026-03-01T09:00:00.500Z","n":12}',
    ]


def _risky_before(texts: list[str]) -> list[bool]:
    """The rule RISKY_NUMBER replaced: strings blanked out, then canonical_json.RISKY."""
    column = pl.Series(texts, dtype=pl.String)
    string = r'"(?:[^"\\]|\\.)*"'
    return column.str.replace_all(string, '""').str.contains(canonical_json.RISKY).to_list()


@pytest.mark.parametrize(
    "text",
    [
        '{"a":1.5}',
        '{"a": -2.50 }',
        '{"a":[1,2.0]}',
        '{"a":[[3e5]]}',
        '{"a":{"b":1E+2},"c":1}',
        '{"a":-0}',
        '{"a":12345678901234567890}',
        '{"a":-1234567890123456789}',
        '{"at":"2026-03-01T09:00:00.5Z","n":0.1}',
        '{"s":"x\\"y","n":\n7.25\t}',
    ],
)
def test_every_number_orjson_would_rewrite_is_read_exactly(text):
    assert pl.Series([text]).str.contains(payloads.RISKY_NUMBER).item()
    assert _risky_before([text]) == [True]
    out = decode([31], [text.encode()])
    assert out.parameters.to_list() == [canonical_json.canonical(text)]


def test_numbers_outside_strings_are_found_wherever_the_old_rule_found_them():
    """RISKY_NUMBER looks only at numbers outside strings, as the rule before it did after
    blanking strings: never fewer rows (a row it misses would lose a number's text)."""
    rng = random.Random(7)
    parts = ["1", "1.5", "-0", "0", "-3", "2e3", "12345678901234567890", "1.0E-7", "7"]
    words = ["x", "09:07:04.492Z", "1.5", "a:2.5}", "[1e3]", 'q\\"', "-0"]
    texts = []
    for _ in range(3000):
        fields = []
        for k in range(rng.randint(0, 4)):
            value = rng.choice(
                [
                    rng.choice(parts),
                    orjson.dumps(rng.choice(words)).decode(),
                    f"[{rng.choice(parts)},{rng.choice(parts)}]",
                    f'{{"in":{rng.choice(parts)}}}',
                ]
            )
            fields.append(f'"f{k}":{" " * rng.randint(0, 1)}{value}')
        texts.append("{" + ",".join(fields) + "}")
    now = pl.Series(texts).str.contains(payloads.RISKY_NUMBER).to_list()
    before = _risky_before(texts)
    assert sum(before) > 1000  # the texts do hold such numbers
    assert all(n for n, b in zip(now, before, strict=True) if b)
    # and a time in a string no longer sends a row the careful way
    assert (
        not pl.Series(['{"at":"2026-03-01T09:07:04.492Z","n":12}'])
        .str.contains(payloads.RISKY_NUMBER)
        .item()
    )


@pytest.mark.parametrize(
    ("ser_id", "raw", "why"),
    [
        (31, b"not json", "jackson-json (serializer 31) payload is not valid JSON"),
        (31, b"[1, 2]", "is a JSON array, not an object"),
        (33, b"\xff", "jackson-cbor (serializer 33) payload is not CBOR"),
        (31, b"\x1f\x8bnot gzip", "jackson-json (serializer 31) payload is"),
        (20, b"\xff\xfe", "not UTF-8"),
        (35, b"\x07", "not 00 or 01"),
        (18, b"\x01", "1 bytes, not 8"),
        (31, None, "the payload is null"),
    ],
)
def test_payloads_that_are_not_what_their_serializer_writes(ser_id, raw, why):
    out = decode([ser_id], [raw])
    assert out.parameters.to_list() == [None]
    assert why in out.reasons[0]


def test_fields_read_from_the_event():
    out = decode(
        [31, 31, 31],
        [
            b'{"at":1459420277.981000000,"body":{"x":1},"s":"web"}',
            b'{"at":"2026-03-01T09:00:00Z","body":[1]}',
            b'{"body":{"y":2}}',
        ],
        Fields(parameters=("body",), read={"time": ("at",), "stream": ("s",)}),
    )
    assert out.parameters.to_list() == ['{"x":1}', None, '{"y":2}']
    assert out.values == {
        "time": ["1459420277.981000000", "2026-03-01T09:00:00Z", None],
        "stream": ["web", None, None],
    }
    assert "'body' is a JSON array, not an object of parameters" in out.reasons[1]


# -- names -----------------------------------------------------------------------------------


def test_persistence_ids_and_manifests():
    rows = pl.DataFrame(
        {
            "persistence_id": ["Cart|c-1|x", "solo", "|x", "Cart|", "A|b"],
            "ser_id": [31, 31, 20, 33, 31],
            "ser_manifest": ["a.b.Cart$Added#3", "a.Cart$Done$", "", "Opened", ""],
            "event_manifest": ["", "v2", "", None, ""],
        }
    )
    for naming, expected in (
        ("short", ["Added", "Done", "String", "Opened", None]),
        ("class", ["a.b.Cart$Added", "a.Cart$Done$", "String", "Opened", None]),
    ):
        got = rows.select(*names.aggregate("persistence_id", "entity"), *names.event_name(naming))
        assert got["name"].to_list() == expected
    assert got["aggregate_type"].to_list() == ["Cart", "entity", "entity", "entity", "A"]
    assert got["aggregate_id"].to_list() == ["c-1|x", "solo", "|x", "Cart|", "b"]
    assert got["version"].to_list() == ["3", "v2", "0", "0", "0"]
    assert names.persistence_id("entity", "solo", "entity") == ["solo", "entity|solo"]
    with pytest.raises(SourceError, match="`names` must be 'short'"):
        names.check_naming("long")


# -- URLs ------------------------------------------------------------------------------------


def test_journal_urls():
    assert _cassandra_url("pekko+cassandra://h1,h2:9043/shop?event_time=at&local_dc=dc1") == (
        "cassandra://h1,h2:9043/shop?local_dc=dc1",
        "pekko+cassandra",
        "shop",
    )
    assert _cassandra_url("akka+cassandra://h")[2] == "akka"
    assert _cassandra_url("pekko+cassandra://h/")[2] == "pekko"
    with pytest.raises(SourceError, match="not a journal URL"):
        _cassandra_url("cassandra://h/pekko")
    with pytest.raises(SourceError, match="not a valid Cassandra name"):
        _cassandra_url("pekko+cassandra://h/no-dashes")


def test_serializer_names_are_the_reference_confs():
    assert payloads.NAMES[31] == "jackson-json"
    assert payloads.NAMES[33] == "jackson-cbor"
    assert payloads.NAMES[32] == "jackson-cbor-264"
