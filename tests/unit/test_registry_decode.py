"""Registry-framed values decoded in bulk, without servers: framings, Avro (with resolution onto a
reader schema), Protobuf, local schema files, and Concursus's own Avro layout."""

from __future__ import annotations

import io
import json
import uuid

import polars as pl
import pytest

from concursus_lab.sources.registry import avro, layout, protobuf, wire
from concursus_lab.sources.registry.schemas import Schemas
from concursus_lab.sources.registry.values import SCHEMA_ID, SCHEMA_VERSION, RegistryValues

fastavro = pytest.importorskip("fastavro")


def body(schema, record) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(schema), record)
    return out.getvalue()


def framed(schema_id: int, schema, record) -> bytes:
    return b"\x00" + schema_id.to_bytes(4, "big") + body(schema, record)


RICH = {
    "type": "record",
    "name": "Rich",
    "namespace": "t",
    "fields": [
        {"name": "id", "type": "string"},
        {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["A", "B", "C"]}},
        {"name": "again", "type": "Kind"},
        {"name": "attrs", "type": {"type": "map", "values": "long"}},
        {"name": "tags", "type": {"type": "array", "items": "Kind"}},
        {
            "name": "inner",
            "type": [
                "null",
                {
                    "type": "record",
                    "name": "In",
                    "fields": [{"name": "k", "type": "Kind"}, {"name": "n", "type": "int"}],
                },
            ],
        },
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-micros"}},
    ],
}


def test_framings_are_split_at_once_and_bad_ones_named():
    guid = uuid.uuid4()
    values = [
        b"\x00\x00\x00\x01\x02" + b"x",
        b"\x01" + guid.bytes + b"body",
        b"bare body",
        b"\x00\x00\x01",
        None,
        b"",
        b"\x07nothing",
    ]
    headers = [(), (), (("__value_schema_id", b"\x00\x00\x00\x00\x09"),), (), (), (), ()]
    got = wire.split(values, headers)
    assert got.refs == [258, str(guid), 9, None, None, None, None]
    assert got.starts.tolist() == [5, 17, 0, 0, 0, 0, 0]
    assert "shorter than the 5-byte frame" in got.reasons[3]
    assert got.reasons[4] == "no value (a tombstone)" and got.reasons[5] == "an empty value"
    assert "starts with 0x07" in got.reasons[6]


def test_enums_maps_and_nested_records_decode_in_one_call():
    t0 = 1_777_888_800_123_456
    records = [
        {
            "id": "a",
            "kind": "C",
            "again": "A",
            "attrs": {"x": 1, "y": 2},
            "tags": ["B", "C"],
            "inner": {"k": "B", "n": 3},
            "at": t0,
        },
        {"id": "b", "kind": "A", "again": "B", "attrs": {}, "tags": [], "inner": None, "at": t0},
    ]
    frame, bad = avro.decode([framed(3, RICH, r) for r in records], 5, RICH)
    assert bad == []
    assert frame["kind"].to_list() == ["C", "A"] and frame["again"].to_list() == ["A", "B"]
    assert frame["attrs"].to_list() == [[{"key": "x", "value": 1}, {"key": "y", "value": 2}], []]
    assert frame["tags"].to_list() == [["B", "C"], []]
    assert frame["inner"].to_list() == [{"k": "B", "n": 3}, None]
    assert frame["at"].dt.epoch("us").to_list() == [t0, t0]
    expected = [fastavro.schemaless_reader(io.BytesIO(body(RICH, r)), RICH, None) for r in records]
    assert [e["kind"] for e in expected] == frame["kind"].to_list()


def test_cut_and_overlong_bodies_are_found_and_the_rest_kept():
    values = [
        framed(
            1,
            RICH,
            {
                "id": f"r{n}",
                "kind": "A",
                "again": "A",
                "attrs": {},
                "tags": [],
                "inner": None,
                "at": 0,
            },
        )
        for n in range(6)
    ]
    values[2] = values[2][:-4]
    values[4] = values[4] + b"\x02"
    frame, bad = avro.decode(values, 5, RICH)
    assert frame["id"].to_list() == ["r0", "r1", "r3", "r5"]
    assert [i for i, _ in bad] == [2, 4]
    assert "1 byte(s) left after the record" in bad[1][1]


def test_unions_polars_cannot_read_are_decoded_one_by_one():
    schema = {
        "type": "record",
        "name": "U",
        "fields": [{"name": "v", "type": ["null", "string", "long"]}],
    }
    frame, bad = avro.decode(
        [framed(1, schema, {"v": "x"}), framed(1, schema, {"v": None})], 5, schema
    )
    assert bad == [] and frame["v"].to_list() == ["x", None]


def test_writer_versions_resolve_onto_the_reader_schema():
    writer = {
        "type": "record",
        "name": "O",
        "fields": [
            {"name": "id", "type": "string"},
            {"name": "qty", "type": "int"},
            {"name": "old_name", "type": "string"},
            {"name": "gone", "type": "string"},
        ],
    }
    reader = {
        "type": "record",
        "name": "O",
        "fields": [
            {"name": "id", "type": "string"},
            {"name": "qty", "type": "long"},
            {"name": "new_name", "type": "string", "aliases": ["old_name"]},
            {"name": "raw", "type": "bytes", "default": "\u00ff"},
            {
                "name": "where",
                "type": {
                    "type": "record",
                    "name": "W",
                    "fields": [{"name": "city", "type": "string"}],
                },
                "default": {"city": "Lewisham"},
            },
            {
                "name": "when",
                "type": {"type": "long", "logicalType": "timestamp-millis"},
                "default": 1000,
            },
        ],
    }
    value = framed(1, writer, {"id": "a", "qty": 7, "old_name": "n", "gone": "g"})
    frame, bad = avro.decode([value, value], 5, writer, reader=reader)
    assert bad == [] and frame.columns == ["id", "qty", "new_name", "raw", "where", "when"]
    assert frame.schema["qty"] == pl.Int64
    assert frame.row(0) == ("a", 7, "n", b"\xff", {"city": "Lewisham"}, frame["when"][0])
    assert frame["when"].dt.epoch("ms").to_list() == [1000, 1000]
    no_default = {**reader, "fields": [*reader["fields"], {"name": "must", "type": "int"}]}
    with pytest.raises(avro.Unresolvable, match="'must' has no default"):
        avro.decode([value], 5, writer, reader=no_default)
    clash = {**reader, "fields": [{"name": "qty", "type": "string"}]}
    with pytest.raises(avro.Unresolvable, match="'qty' is int in the writer"):
        avro.decode([value], 5, writer, reader=clash)


def _proto():
    from google.protobuf import descriptor_pb2

    proto = descriptor_pb2.FileDescriptorProto(name="t/p.proto", package="tp", syntax="proto3")
    proto.dependency.append("google/protobuf/timestamp.proto")
    proto.message_type.add(name="First").field.add(name="x", number=1, type=9, label=1)
    msg = proto.message_type.add(name="Msg")
    msg.field.add(name="id", number=1, type=9, label=1)
    msg.field.add(name="at", number=2, type=11, label=1, type_name=".google.protobuf.Timestamp")
    msg.field.add(name="n", number=3, type=17, label=1)  # sint32
    msg.field.add(name="tags", number=4, type=9, label=3)
    entry = msg.nested_type.add(name="AttrsEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=9, label=1)
    entry.field.add(name="value", number=2, type=3, label=1)
    msg.field.add(name="attrs", number=5, type=11, label=3, type_name=".tp.Msg.AttrsEntry")
    kind = msg.enum_type.add(name="Kind")
    kind.value.add(name="NONE", number=0)
    kind.value.add(name="BIG", number=1)
    msg.field.add(name="kind", number=6, type=14, label=1, type_name=".tp.Msg.Kind")
    inner = msg.nested_type.add(name="Inner")
    inner.field.add(name="v", number=1, type=1, label=1)
    msg.field.add(name="inner", number=7, type=11, label=1, type_name=".tp.Msg.Inner")
    msg.field.add(name="maybe", number=8, type=9, label=1, proto3_optional=True, oneof_index=0)
    msg.oneof_decl.add(name="_maybe")
    return proto


def test_protobuf_values_decode_into_columns(tmp_path):
    from google.protobuf import descriptor_pb2, message_factory

    proto = _proto()
    files = protobuf.Files([proto.SerializeToString()])
    cls = message_factory.GetMessageClass(files.message((1,)))
    a = cls(id="a", n=-5, tags=["p", "q"], kind=1, maybe="m")
    a.at.FromMicroseconds(1_777_888_800_123_456)
    a.attrs["k"] = 9
    a.inner.v = 0.5
    b = cls(id="b")
    prefix = b"\x00" + (12).to_bytes(4, "big") + b"\x02\x02"  # the file's second message
    values = [
        prefix + a.SerializeToString(),
        prefix + b.SerializeToString(),
        prefix + a.SerializeToString()[:-2],
        b"\x00" + (12).to_bytes(4, "big") + b"\x02\x08",
    ]
    desc = tmp_path / "12.desc"
    desc.write_bytes(descriptor_pb2.FileDescriptorSet(file=[proto]).SerializeToString())
    frame, used, bad = RegistryValues(Schemas(files=tmp_path))(values)
    assert used.tolist() == [0, 1]
    assert frame["id"].to_list() == ["a", "b"] and frame["n"].to_list() == [-5, 0]
    assert frame["at"].dt.epoch("us").to_list()[0] == 1_777_888_800_123_456
    assert frame["at"][1] is None  # an unset message is null
    assert frame["tags"].to_list() == [["p", "q"], []]
    assert frame["attrs"].to_list() == [[{"key": "k", "value": 9}], []]
    assert frame["kind"].to_list() == ["BIG", "NONE"]
    assert frame["inner"].to_list() == [{"v": 0.5}, None]
    assert frame["maybe"].to_list() == ["m", None]
    assert frame[SCHEMA_ID].to_list() == ["12", "12"]
    assert [i for i, _ in bad] == [2, 3]
    assert "does not parse as tp.Msg" in bad[0][1] and "message index" in bad[1][1]


def test_protobuf_message_indexes_outside_the_file_are_named(tmp_path):
    from google.protobuf import descriptor_pb2

    proto = _proto()
    (tmp_path / "12.desc").write_bytes(
        descriptor_pb2.FileDescriptorSet(file=[proto]).SerializeToString()
    )
    frame = b"\x00" + (12).to_bytes(4, "big")
    values = [
        frame + b"\x02\x01",  # index -1
        frame + b"\x04\x02\x06",  # the second message's nested message 3: it has 1
        frame + b"\x04o1\x0ecreated",  # an Avro body read as message indexes
    ]
    _frame, used, bad = RegistryValues(Schemas(files=tmp_path))(values)
    assert used.tolist() == [] and [i for i, _ in bad] == [0, 1, 2]
    for _, why in bad:
        assert "message index" in why and "is not in" in why, why
    assert "[-1]" in bad[0][1] and "[1, 3]" in bad[1][1]


def test_local_schema_files_name_versions_by_id_and_say_what_is_missing(tmp_path):
    schema = {"type": "record", "name": "S", "fields": [{"name": "id", "type": "string"}]}
    path = tmp_path / "s.avsc"
    path.write_text(json.dumps(schema))
    decode = RegistryValues(Schemas(files={5: path}))
    frame, _used, bad = decode([framed(5, schema, {"id": "x"}), framed(6, schema, {"id": "y"})])
    assert frame.select("id", SCHEMA_VERSION).rows() == [("x", "5")]
    assert bad == [(1, "schema id 6 is not among the local schema files (5)")]


def test_concursus_events_round_trip_through_the_avro_layout():
    import concursus_lab as cl

    events = cl.sample.parcels().head(20)
    values = layout.encoder(77)(events)
    assert values[0][:5] == b"\x00\x00\x00\x00\x4d"
    frame, bad = avro.decode(values.to_list(), 5, layout.SCHEMA)
    assert bad == []
    back = cl.from_polars(frame, layout.MAPPING)
    assert back.select(cl.SCHEMA.names()).equals(events.select(cl.SCHEMA.names()))


def test_registry_credentials_come_from_the_environment():
    from concursus_lab.exceptions import SourceError
    from concursus_lab.sources.registry.client import Client, from_env

    env = {"CONCURSUS_LAB_REGISTRY_USERNAME": "key", "CONCURSUS_LAB_REGISTRY_PASSWORD": "s3"}
    client = Client("https://registry.example:8081", environ=env)
    assert client._headers["Authorization"] == "Basic a2V5OnMz"
    token = Client("https://r.example", environ={"CONCURSUS_LAB_REGISTRY_TOKEN": "t"})
    assert token._headers["Authorization"] == "Bearer t"
    assert "s3" not in repr(client)
    with pytest.raises(SourceError, match="CONCURSUS_LAB_REGISTRY_URL, which is not set"):
        from_env({})
    with pytest.raises(SourceError, match="must be the registry's http"):
        Client("127.0.0.1:8081")
