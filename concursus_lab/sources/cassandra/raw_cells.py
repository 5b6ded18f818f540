"""Every cell as the bytes Cassandra sent: the one use of cassandra-driver's private API.

The codec builds columns from the bytes Cassandra sends. The driver has no public way to
hand a cell over undecoded, so the fast path replaces the driver's result message with a
subclass (its undocumented ``recv_results_metadata`` and ``recv_results_rows``) that marks
every column ``cqltypes.BytesType``: the driver's Cython row parser then only splits pages
into tuples of bytes. (The documented parts are ``Session.client_protocol_handler`` and
``ProtocolHandler.message_types_by_opcode``.) It is taken only with a driver version in
:data:`VERIFIED`, and only when those names are still where they were.

Otherwise reads take the public path: the driver decodes each cell into a Python value (the
session's ``tuple_factory``) and :func:`as_sent` writes it back as the bytes Cassandra sent,
so the codec sees the same bytes and the frames are the same
(``tests/integration/test_cassandra_raw_cells.py``), only slower; a warning names the driver
version, once per process. One difference: the driver cannot decode a timestamp outside
years 1 to 9999 (which the fast path sets aside in the quarantine), so on the public path a
page holding one stops the read. ``tests/unit/test_cassandra_raw_cells.py`` fails when the
installed driver is not in :data:`VERIFIED` or the private names moved.
"""

from __future__ import annotations

import datetime as dt
import inspect
import warnings
from collections.abc import Callable
from typing import Any, ClassVar

#: cassandra-driver versions the fast path was run and checked with (both tests above).
VERIFIED: frozenset[str] = frozenset({"3.30.1"})

#: The parameters of the private methods the fast path overrides, as last verified.
HOOKS: dict[str, tuple[str, ...]] = {
    "recv_results_metadata": ("self", "f", "user_type_map"),
    "recv_results_rows": (
        "self",
        "f",
        "protocol_version",
        "user_type_map",
        "result_metadata",
        "column_encryption_policy",
    ),
}

_HANDLER: Any = None
_WARNED = False


def install(session: Any) -> bool:
    """Make ``session`` hand every cell over as bytes; False when it takes the public path.

    On the public path the session is left as it is, and its rows go through
    :func:`as_sent` before the codec.
    """
    handler = raw_handler()
    if handler is None:
        return False
    session.client_protocol_handler = handler
    return True


def raw_handler() -> Any:
    """The driver's protocol handler, but every cell stays bytes; None off the fast path."""
    global _HANDLER
    if _HANDLER is not None:
        return _HANDLER
    import cassandra

    version = cassandra.__version__
    if version not in VERIFIED:
        _warn_once(f"cassandra-driver {version} is not a version verified for fast reads")
        return None
    problem = hook_problem()
    if problem is not None:
        _warn_once(f"cassandra-driver {version}'s private API moved ({problem})")
        return None
    _HANDLER = _build()
    return _HANDLER


def hook_problem() -> str | None:
    """What is not where the fast path needs it in the installed driver, or None."""
    try:
        from cassandra import cqltypes
        from cassandra.protocol import ProtocolHandler, ResultMessage

        base = ProtocolHandler.message_types_by_opcode[ResultMessage.opcode]
    except (ImportError, AttributeError, KeyError) as exc:
        return f"no result message to extend: {exc!r}"
    if not isinstance(base, type) or not issubclass(base, ResultMessage):
        return f"the result message is {base!r}, not a ResultMessage"
    if not hasattr(cqltypes, "BytesType") or "column_metadata" not in dir(base):
        return "no cqltypes.BytesType or ResultMessage.column_metadata"
    for name, wanted in HOOKS.items():
        try:
            found = tuple(inspect.signature(getattr(base, name)).parameters)
        except (AttributeError, TypeError, ValueError) as exc:
            return f"ResultMessage.{name}: {exc!r}"
        if found != wanted:
            return f"ResultMessage.{name}{found} is not {name}{wanted}"
    return None


def _build() -> Any:
    """Text, timestamps, UUIDs, ints and the parameters map all arrive as bytes.

    The driver's Cython row parser is used when it is compiled (it is in the PyPI wheels).
    (The driver's NumpyProtocolHandler would not help: it makes arrays only for numeric
    columns, and with NumPy 2 a page holding an ``int`` column comes back with no rows and
    no error; see docs/cassandra.md.)
    """
    from cassandra import cqltypes
    from cassandra.protocol import ProtocolHandler, ResultMessage

    def as_raw(metadata: list | None) -> list | None:
        if not metadata:
            return metadata
        return [(ks, table, name, cqltypes.BytesType) for ks, table, name, _ in metadata]

    base = ProtocolHandler.message_types_by_opcode[ResultMessage.opcode]

    class RawResultMessage(base):
        def recv_results_metadata(self, f, user_type_map):
            super().recv_results_metadata(f, user_type_map)
            self.column_metadata = as_raw(self.column_metadata)

        def recv_results_rows(
            self, f, protocol_version, user_type_map, result_metadata, column_encryption_policy
        ):
            return super().recv_results_rows(
                f,
                protocol_version,
                user_type_map,
                as_raw(result_metadata),
                column_encryption_policy,
            )

    class RawProtocolHandler(ProtocolHandler):
        message_types_by_opcode: ClassVar[dict] = {
            **ProtocolHandler.message_types_by_opcode,
            RawResultMessage.opcode: RawResultMessage,
        }

    return RawProtocolHandler


def _warn_once(why: str) -> None:
    global _WARNED
    if _WARNED:
        return
    _WARNED = True
    warnings.warn(
        f"{why} (verified: {', '.join(sorted(VERIFIED))}); Cassandra reads take the driver's "
        "public API instead, which gives the same frames, slower. See "
        "concursus_lab/sources/cassandra/raw_cells.py.",
        RuntimeWarning,
        stacklevel=2,
    )


# -- the public path: the driver's Python values back to the bytes Cassandra sent ----------

_EPOCH = dt.datetime(1970, 1, 1)  # the driver's timestamps are naive UTC
_MS = dt.timedelta(milliseconds=1)


def _int32(value: int) -> bytes:
    return value.to_bytes(4, "big", signed=True)


def _int64(value: int) -> bytes:
    return value.to_bytes(8, "big", signed=True)


def _timestamp(value: dt.datetime) -> bytes:
    # the driver made it from milliseconds / 1000.0: rounding to milliseconds undoes that
    return _int64(round((value - _EPOCH) / _MS))


def _text_map(value: Any) -> bytes:
    parts = [_int32(len(value))]
    for pair in value.items():
        for text in pair:
            if text is None:
                parts.append(_int32(-1))
            else:
                data = text.encode()
                parts += (_int32(len(data)), data)
    return b"".join(parts)


#: How each CQL type the readers select is written back, by its CQL name.
ENCODERS: dict[str, Callable[[Any], bytes]] = {
    "text": str.encode,
    "timestamp": _timestamp,
    "timeuuid": lambda value: value.bytes,
    "int": _int32,
    "bigint": _int64,
    "map<text, text>": _text_map,
    "blob": bytes,
}


def as_sent(rows: list[tuple], types: tuple[str, ...]) -> list[tuple]:
    """Rows of the driver's Python values (one CQL type per column) as the bytes sent."""
    if not rows:
        return []
    encoders = [ENCODERS[t] for t in types]
    columns = [
        [None if value is None else encode(value) for value in column]
        for encode, column in zip(encoders, zip(*rows, strict=True), strict=True)
    ]
    return list(zip(*columns, strict=True))
