"""The one use of cassandra-driver's private API, checked without a server.

These fail loudly when the driver changes under :mod:`concursus_lab.sources.cassandra.raw_cells`:
a version not verified, a private method that moved or changed its parameters, or a result
message that no longer hands every cell over as the bytes sent. Each test decodes a ROWS
result frame body built here byte by byte, as Cassandra sends it.
"""

from __future__ import annotations

import datetime as dt
import uuid
import warnings

import pytest

from concursus_lab.sources.cassandra import raw_cells
from concursus_lab.sources.cassandra.codec import CQL_COLUMNS, CQL_TYPES, decode_rows

cassandra = pytest.importorskip("cassandra")
from cassandra import cqltypes  # noqa: E402
from cassandra.protocol import ProtocolHandler  # noqa: E402

TextMap = cqltypes.MapType.apply_parameters([cqltypes.UTF8Type, cqltypes.UTF8Type])
#: Protocol type options (native protocol v5, section 4.2.5.2) and driver types, by CQL name.
OPTIONS = {
    "text": (b"\x00\x0d", cqltypes.UTF8Type),
    "timestamp": (b"\x00\x0b", cqltypes.DateType),
    "timeuuid": (b"\x00\x0f", cqltypes.TimeUUIDType),
    "int": (b"\x00\x09", cqltypes.Int32Type),
    "bigint": (b"\x00\x02", cqltypes.LongType),
    "map<text, text>": (b"\x00\x21\x00\x0d\x00\x0d", TextMap),
}
RESULT, ROWS, GLOBAL_TABLES_SPEC, NO_METADATA = 0x08, 2, 0x0001, 0x0004


def int32(value: int) -> bytes:
    return value.to_bytes(4, "big", signed=True)


def string(text: str) -> bytes:
    data = text.encode()
    return len(data).to_bytes(2, "big") + data


def rows_body(names, types, rows, *, metadata: bool = True) -> bytes:
    """A RESULT message body of kind ROWS; without metadata, as for a prepared statement."""
    body = int32(ROWS) + int32(GLOBAL_TABLES_SPEC if metadata else NO_METADATA)
    body += int32(len(names))
    if metadata:
        body += string("ks") + string("event")
        body += b"".join(string(n) + OPTIONS[t][0] for n, t in zip(names, types, strict=True))
    body += int32(len(rows))
    for row in rows:
        body += b"".join(int32(-1) if c is None else int32(len(c)) + c for c in row)
    return body


def result_metadata(names, types) -> list[tuple]:
    return [("ks", "event", n, OPTIONS[t][1]) for n, t in zip(names, types, strict=True)]


def decode(handler, body: bytes, metadata: list | None = None) -> list:
    message = handler.decode_message(5, {}, 1, 0, RESULT, body, None, metadata)
    return message.parsed_rows


def ms(value: int) -> bytes:
    return value.to_bytes(8, "big", signed=True)


#: Event rows as Cassandra sends them: nulls, Java's UUID variant, far times, Unicode, maps.
EVENTS = [
    (
        b"person",
        b"id1",
        ms(1459420277981),
        b"",
        uuid.UUID("c4f74bc0-e9f0-11f1-ffff-ffffffffff65").bytes,
        b"created",
        b"0",
        TextMap.serialize({"name": '"Arthur Putey"', "dob": "[1968,5,28]", "n": "42"}, 5),
        int32(1),
    ),
    (b"person", b"id2", ms(-62135596800000), b"mobile", None, b"moved", None, None, None),
    (
        b"parcel",
        "Zürich-€-😀".encode(),
        ms(253402300799999),  # the last millisecond of year 9999
        "app·ü".encode(),
        uuid.uuid1().bytes,
        b"x",
        b"1",
        TextMap.serialize({"k": "not json", "ü": '"€"'}, 5),
        int32(2),
    ),
]


@pytest.fixture
def fresh(monkeypatch):
    """The adapter as in a new process: no handler built, no warning given yet."""
    monkeypatch.setattr(raw_cells, "_HANDLER", None)
    monkeypatch.setattr(raw_cells, "_WARNED", False)


def test_the_installed_driver_is_a_verified_version():
    assert cassandra.__version__ in raw_cells.VERIFIED, (
        f"cassandra-driver {cassandra.__version__} is not in raw_cells.VERIFIED "
        f"({sorted(raw_cells.VERIFIED)}): Cassandra reads take the slower public path. Run "
        "this file and tests/integration/test_cassandra_raw_cells.py with it, then add it."
    )


def test_the_private_hook_is_where_it_was():
    assert raw_cells.hook_problem() is None


@pytest.mark.parametrize("metadata", [True, False], ids=["with metadata", "prepared"])
def test_the_fast_path_hands_every_cell_over_as_the_bytes_sent(fresh, metadata):
    handler = raw_cells.raw_handler()
    assert handler is not None
    body = rows_body(CQL_COLUMNS, CQL_TYPES, EVENTS, metadata=metadata)
    given = None if metadata else result_metadata(CQL_COLUMNS, CQL_TYPES)
    assert decode(handler, body, given) == EVENTS
    bigint = rows_body(["writetime(name)"], ["bigint"], [(ms(1772409600123456),), (None,)])
    assert decode(handler, bigint) == [(ms(1772409600123456),), (None,)]


@pytest.mark.parametrize("metadata", [True, False], ids=["with metadata", "prepared"])
def test_the_public_path_gives_back_the_same_bytes(metadata):
    body = rows_body(CQL_COLUMNS, CQL_TYPES, EVENTS, metadata=metadata)
    given = None if metadata else result_metadata(CQL_COLUMNS, CQL_TYPES)
    values = decode(ProtocolHandler, body, given)
    assert isinstance(values[0][2], dt.datetime)  # decoded by the driver
    assert raw_cells.as_sent(values, CQL_TYPES) == EVENTS
    public, quarantine = decode_rows(raw_cells.as_sent(values, CQL_TYPES))
    fast, fast_quarantine = decode_rows(EVENTS)
    assert public.equals(fast) and quarantine.equals(fast_quarantine)
    bigint = rows_body(["writetime(name)"], ["bigint"], [(ms(-5),), (None,)])
    assert raw_cells.as_sent(decode(ProtocolHandler, bigint), ("bigint",)) == [(ms(-5),), (None,)]


def test_install_sets_the_sessions_handler_on_the_fast_path(fresh):
    class Session:
        client_protocol_handler = ProtocolHandler

    session = Session()
    assert raw_cells.install(session) is True
    assert session.client_protocol_handler is raw_cells.raw_handler()


def test_a_version_not_verified_takes_the_public_path_and_warns_once(fresh, monkeypatch):
    monkeypatch.setattr(raw_cells, "VERIFIED", frozenset({"0.0.1"}))

    class Session:
        client_protocol_handler = ProtocolHandler

    session = Session()
    with pytest.warns(RuntimeWarning, match=rf"cassandra-driver {cassandra.__version__} is not"):
        assert raw_cells.install(session) is False
    assert session.client_protocol_handler is ProtocolHandler
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert raw_cells.install(session) is False  # once per process


def test_a_private_method_that_changed_takes_the_public_path(fresh, monkeypatch):
    moved = {**raw_cells.HOOKS, "recv_results_rows": ("self", "f", "protocol_version")}
    monkeypatch.setattr(raw_cells, "HOOKS", moved)
    assert "recv_results_rows" in raw_cells.hook_problem()
    with pytest.warns(RuntimeWarning, match=r"private API moved \(ResultMessage.recv_results_rows"):
        assert raw_cells.raw_handler() is None
