"""Decoding Concursus's Cassandra rows column-wise, without a server.

Rows are made the way the driver hands them to the reader: text cells as ``str``, every
other cell as the bytes Cassandra sends (serialised here with the driver's own types).
"""

from __future__ import annotations

import datetime as dt
import itertools
import uuid

import orjson
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import concursus_lab as cl
from concursus_lab.exceptions import SourceError
from concursus_lab.frame.schema import normalise_parameters
from concursus_lab.sources.cassandra.codec import QUARANTINE_SCHEMA, decode_rows
from concursus_lab.sources.cassandra.parameters import (
    encode_parameters,
    parameters_json,
    parse_map,
)

cqltypes = pytest.importorskip("cassandra.cqltypes")
TextMap = cqltypes.MapType.apply_parameters([cqltypes.UTF8Type, cqltypes.UTF8Type])

JAVA_ID = "c4f74bc0-e9f0-11f1-ffff-ffffffffff65"  # Java Concursus's malformed variant
UTC = dt.UTC


def cell_map(pairs: dict[str, str] | None) -> bytes | None:
    return None if pairs is None else TextMap.serialize(pairs, 5)


def utf8(text: str | None) -> bytes | None:
    return None if text is None else text.encode()


def row(
    aggregate_id: str = "p1",
    millis: int = 1459420277981,
    *,
    stream_id: str = "",
    processing_id: str | None = JAVA_ID,
    name: str | None = "created",
    version: str | None = "0",
    parameters: dict[str, str] | None = None,
    characteristics: int | None = 0,
    aggregate_type: str = "person",
) -> tuple:
    return (
        utf8(aggregate_type),
        utf8(aggregate_id),
        millis.to_bytes(8, "big", signed=True),
        utf8(stream_id),
        None if processing_id is None else uuid.UUID(processing_id).bytes,
        utf8(name),
        utf8(version),
        cell_map(parameters),
        None if characteristics is None else characteristics.to_bytes(4, "big", signed=True),
    )


def test_java_written_row_decodes():
    frame, quarantine = decode_rows(
        [
            row(
                parameters={
                    "name": '"Arthur Putey"',
                    "dob": "[1968,5,28]",
                    "at": "1459420277.981000000",
                    "age": "42",
                    "nothing": "null",
                    "address": '{"town":"Lewisham","lines":["1 High St"]}',
                },
                characteristics=1,
            )
        ]
    )
    assert quarantine.height == 0
    assert frame.schema == cl.SCHEMA
    got = frame.row(0, named=True)
    assert got["event_timestamp"] == dt.datetime(2016, 3, 31, 10, 31, 17, 981000, tzinfo=UTC)
    assert got["processing_id"] == JAVA_ID
    assert got["processing_timestamp"] == cl.frame.processing_time(JAVA_ID)
    assert got["characteristics"] == 1
    assert got["parameters"] == (
        '{"address":{"lines":["1 High St"],"town":"Lewisham"},"age":42,'
        '"at":1459420277.981000000,"dob":[1968,5,28],"name":"Arthur Putey","nothing":null}'
    )


def test_parameters_match_normalise_parameters():
    texts = ['{"b":1,"a":[1, 2]}', "{}", '{"é":"ü","x":{"z":1,"y":2}}', '{"q":"say \\"hi\\""}']
    cells = [cell_map(d) for d in encode_parameters(texts)]
    got, bad = parameters_json(cells)
    canonical, n_bad, _ = normalise_parameters(pl.Series(texts))
    assert not bad and not n_bad
    assert got.to_list() == canonical.to_list()


def test_null_defaults():
    frame, quarantine = decode_rows(
        [row(parameters=None, characteristics=None, version=None, stream_id="driver-app")]
    )
    assert quarantine.height == 0
    got = frame.row(0, named=True)
    assert (got["parameters"], got["characteristics"], got["version"]) == ("{}", 0, "0")
    assert got["stream_id"] == "driver-app"


def test_null_processing_id_leaves_the_time_to_the_source():
    frame, quarantine = decode_rows([row(processing_id=None)])
    assert quarantine.height == 0
    assert frame["processing_id"].to_list() == [None]
    assert frame["processing_timestamp"].to_list() == [None]


def test_undecodable_rows_go_to_quarantine_with_their_reason():
    rows = [
        row("good", parameters={"depotId": '"Lewisham"'}),
        row("bad-json", parameters={"depotId": "Lewisham", "n": "1"}),
        row("bad-char", characteristics=7),
        row("no-name", name=None),
        row("good2", 0, parameters={"a": "[1]"}),
    ]
    frame, quarantine = decode_rows(rows)
    assert frame["aggregate_id"].to_list() == ["good", "good2"]
    assert quarantine.schema == QUARANTINE_SCHEMA
    reasons = dict(zip(quarantine["aggregate_id"], quarantine["reason"], strict=True))
    assert reasons["bad-json"].startswith("parameter 'depotId' is not valid JSON")
    assert "Lewisham" in reasons["bad-json"]
    assert reasons["bad-char"].startswith("characteristics is not 0")
    assert reasons["no-name"] == "name is null"
    stored = quarantine.filter(pl.col("aggregate_id") == "bad-json")["parameters"].item()
    assert orjson.loads(stored) == {"depotId": "Lewisham", "n": "1"}
    assert quarantine.filter(pl.col("aggregate_id") == "bad-char")["characteristics"].item() == 7


def test_malformed_map_bytes_are_quarantined():
    good = cell_map({"a": "1"})
    cells = [good, good[:-1], good + b"x", b"\x00\x00", b"\xff\xff\xff\xff", good]
    texts, bad = parameters_json(cells)
    assert sorted(bad) == [1, 2, 3, 4]
    assert all(why.startswith("parameters is not a well-formed map") for why in bad.values())
    assert texts.to_list() == ['{"a":1}', "{}", "{}", "{}", "{}", '{"a":1}']


def test_a_value_that_breaks_out_of_its_entry_is_caught():
    # valid JSON only when pasted next to its neighbours: must not be accepted
    cells = [cell_map({"a": '1,"b":2'}), cell_map({"c": "3"})]
    texts, bad = parameters_json(cells)
    assert list(bad) == [0]
    assert texts.to_list() == ["{}", '{"c":3}']


def test_a_value_that_swallows_its_neighbour_is_caught():
    # '{"a":1,"b":5,"b":7}' parses to two keys, as many as the map has: still not JSON alone
    cells = [cell_map({"a": '1,"b":5', "b": "7"}), cell_map({"c": '{"d":1'}), cell_map({"e": "}"})]
    texts, bad = parameters_json(cells)
    assert sorted(bad) == [0, 1, 2]
    assert texts.to_list() == ["{}", "{}", "{}"]


def test_keys_that_json_escapes():
    cells = [cell_map({'say "hi"': "1", "tab\there": "2", "back\\slash": "3", "plain": "4"})]
    texts, bad = parameters_json(cells)
    assert not bad
    assert orjson.loads(texts.item()) == {
        'say "hi"': 1,
        "tab\there": 2,
        "back\\slash": 3,
        "plain": 4,
    }


def test_out_of_range_event_time_is_quarantined():
    frame, quarantine = decode_rows([row(millis=2**62), row("ok")])
    assert frame["aggregate_id"].to_list() == ["ok"]
    assert quarantine["reason"].to_list() == ["eventTimestamp is out of range"]
    assert quarantine["event_timestamp"].to_list() == [None]


def test_encode_parameters_writes_each_value_as_its_own_json():
    assert encode_parameters(['{"depotId":"Lewisham","n":42,"at":[1968,5,28],"x":null}']) == [
        {"depotId": '"Lewisham"', "n": "42", "at": "[1968,5,28]", "x": "null"}
    ]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.none() | st.dictionaries(st.text(max_size=6), json_values, max_size=5), max_size=30)
)
def test_column_wise_decoding_matches_reading_each_map(objects):
    cells = [
        None if o is None else cell_map({k: orjson.dumps(v).decode() for k, v in o.items()})
        for o in objects
    ]
    texts, bad = parameters_json(cells)
    assert not bad
    expected = [
        orjson.dumps(
            {k: orjson.loads(v) for k, v in parse_map(c)}, option=orjson.OPT_SORT_KEYS
        ).decode()
        for c in cells
    ]
    assert texts.to_list() == expected


def test_decoding_the_sample_gives_it_back():
    sample = cl.sample.parcels(300, seed=2)
    parameters = encode_parameters(sample["parameters"].to_list())
    rows = [
        (
            utf8(r["aggregate_type"]),
            utf8(r["aggregate_id"]),
            int(r["event_timestamp"].timestamp() * 1000).to_bytes(8, "big", signed=True),
            utf8(r["stream_id"]),
            uuid.UUID(r["processing_id"]).bytes,
            utf8(r["name"]),
            utf8(r["version"]),
            cell_map(p),
            r["characteristics"].to_bytes(4, "big"),
        )
        for r, p in zip(sample.iter_rows(named=True), parameters, strict=True)
    ]
    frame, quarantine = decode_rows(rows)
    assert quarantine.height == 0
    assert frame.equals(sample)


# -- URLs and token ranges (also pure) -----------------------------------------------------


def test_urls():
    from concursus_lab.sources.cassandra.connect import parse_url

    address = parse_url("cassandra://db1,db2:9142/Concursus?consistency=one")
    assert address.hosts == ("db1", "db2")
    assert address.port == 9142
    assert address.keyspace == "concursus"
    assert address.options == {"consistency": "one"}
    assert address.url == "cassandra://db1,db2:9142/concursus"
    assert parse_url("cassandra://127.0.0.1").url == "cassandra://127.0.0.1:9042/concursus"
    assert parse_url("cassandra://reader@db1/ks").username == "reader"
    with pytest.raises(SourceError, match="password does not belong"):
        parse_url("cassandra://reader:secret@db1/ks")
    with pytest.raises(SourceError, match="same port"):
        parse_url("cassandra://db1:9042,db2:9043/ks")
    with pytest.raises(SourceError, match="not a valid Cassandra name"):
        parse_url("cassandra://db1/my-keyspace")


@pytest.mark.parametrize("ring", [[0], [-5, 7, 2**62], list(range(-(2**62), 2**62, 2**59))])
@pytest.mark.parametrize("wanted", [1, 7, 32])
def test_token_ranges_cover_the_ring_once_and_respect_node_tokens(ring, wanted):
    from concursus_lab.sources.cassandra.queries import token_ranges

    ranges = token_ranges(ring, wanted)
    assert ranges[0][0] == -(2**63)
    assert ranges[-1][1] == 2**63 - 1
    assert all(a < b for a, b in ranges)
    assert all(prev[1] == nxt[0] for prev, nxt in itertools.pairwise(ranges))
    ends = {b for _, b in ranges}
    assert set(ring) <= ends  # no range crosses a node's token
    assert len(ranges) >= max(wanted, len(ring) + 1) - 1


def test_text_that_is_not_utf8_or_missing_is_quarantined():
    rows = [row("ok"), row("also-ok", stream_id="driver-app")]
    rows.append((b"person", b"\xff\xfe", *row()[2:]))
    rows.append((b"person", b"", *row()[2:]))
    frame, quarantine = decode_rows(rows)
    assert frame["aggregate_id"].to_list() == ["ok", "also-ok"]
    assert frame["stream_id"].to_list() == ["", "driver-app"]
    assert quarantine["reason"].to_list() == [
        "aggregateId is not UTF-8; aggregate_id is null",
        "aggregate_id is empty",
    ]
