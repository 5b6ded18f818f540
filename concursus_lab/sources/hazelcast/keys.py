"""The keys of Concursus's idempotency map: ``SerializableEventIdentity``, as Java writes it.

Concursus's ``IdempotentEventFilter`` does ``putIfAbsent(SerializableEventIdentity.of(event),
true)``: the key is a ``java.io.Serializable`` object of the (package-private, final) class
``com.opencredo.concursus.hazelcast.events.SerializableEventIdentity`` with four fields, the
event identity: ``aggregateType``, ``aggregateId``, ``eventTimestamp`` (an ``Instant``) and
``streamId``. Hazelcast stores it as Java serialization (type id -100), which
hazelcast-python-client does not read; :func:`custom_serializers` takes those bytes as they are,
through the client's public ``custom_serializers`` option, and :class:`JavaKey` keeps them, so a
key read can be sent back unchanged (for its entry view) and a key made here
(:meth:`JavaKey.of_identity`) is byte for byte the one Java makes, hence the same map entry.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, ClassVar

from concursus_lab.sources.hazelcast.java_stream import (
    JavaObject,
    JavaStreamError,
    read_object,
    write_object,
)

IDENTITY_CLASS = "com.opencredo.concursus.hazelcast.events.SerializableEventIdentity"
#: Java's computed ``serialVersionUID`` of Concursus's class (it declares none), read with
#: ``ObjectStreamClass.lookup`` from the class compiled from Concursus's own source.
IDENTITY_SUID = 5721940847776016960
JAVA_SERIALIZATION_TYPE_ID = -100
"""Hazelcast's type id for ``java.io.Serializable`` objects (``JAVA_DEFAULT_TYPE_SERIALIZABLE``)."""
#: Hazelcast's type ids of Java values hazelcast-python-client has no serializer for (from
#: Hazelcast 5.7's ``SerializationConstants``). A key of one of them would make the client's
#: whole ``key_set`` fail; read as a :class:`StoredKey`, it is quarantined instead.
JAVA_ONLY_TYPES: dict[int, str] = {
    -22: "Map.Entry",
    -23: "immutable Map.Entry",
    -25: "java.util.Date",
    **{tid: "Java collection" for tid in range(-49, -30)},
    -50: "java.util.Optional",
    -56: "Compact (with schema)",
    -100: "java.io.Serializable",
    -101: "java.io.Externalizable",
    -102: "java.nio.ByteBuffer",
    -110: ".NET CLR serialization",
    -140: "Go gob",
}
_FIELDS = {
    "aggregateType": "aggregate_type",
    "aggregateId": "aggregate_id",
    "eventTimestamp": "event_timestamp",
    "streamId": "stream_id",
}


@dataclass(frozen=True)
class StoredKey:
    """A map key as Hazelcast stored it: the bytes its serializer (:attr:`type_id`) wrote."""

    payload: bytes
    type_id: ClassVar[int] = 0

    @property
    def kind(self) -> str:
        return JAVA_ONLY_TYPES.get(self.type_id, "unknown")


@dataclass(frozen=True)
class JavaKey(StoredKey):
    """One map key stored with Java serialization: its stream bytes, exactly as stored."""

    type_id: ClassVar[int] = JAVA_SERIALIZATION_TYPE_ID

    @classmethod
    def of_identity(
        cls, aggregate_type: str, aggregate_id: str, event_timestamp: dt.datetime, stream_id: str
    ) -> JavaKey:
        """The key Concursus's filter puts for an event of this identity.

        >>> key = JavaKey.of_identity("parcel", "p-1", dt.datetime(2026, 1, 1, tzinfo=dt.UTC), "")
        >>> key.identity()["aggregate_id"]
        'p-1'
        """
        fields = {
            "aggregateType": aggregate_type,
            "aggregateId": aggregate_id,
            "eventTimestamp": event_timestamp,
            "streamId": stream_id,
        }
        return cls(write_object(IDENTITY_CLASS, IDENTITY_SUID, fields))

    def identity(self) -> dict[str, Any]:
        """The event identity this key holds, in the canonical frame's column names.

        Raises
        ------
        JavaStreamError
            When the bytes are not a ``SerializableEventIdentity`` (another class, another
            shape, or not Java serialization at all); the message says what was found.
        """
        found = read_object(self.payload)
        if not isinstance(found, JavaObject) or found.class_name != IDENTITY_CLASS:
            what = found.class_name if isinstance(found, JavaObject) else type(found).__name__
            raise JavaStreamError(f"the key is a {what}, not Concursus's {IDENTITY_CLASS}")
        if set(found.fields) != set(_FIELDS):
            raise JavaStreamError(
                f"the key has fields {sorted(found.fields)}, not {sorted(_FIELDS)}"
            )
        values = {ours: found.fields[theirs] for theirs, ours in _FIELDS.items()}
        for column, value in values.items():
            wanted = dt.datetime if column == "event_timestamp" else str
            if not isinstance(value, wanted):
                raise JavaStreamError(f"the key's {column} is {value!r}, not a {wanted.__name__}")
        return values


#: One key class per type id in :data:`JAVA_ONLY_TYPES` (the client picks a serializer by class).
KEY_CLASSES: dict[int, type[StoredKey]] = {
    tid: JavaKey
    if tid == JAVA_SERIALIZATION_TYPE_ID
    else type(f"StoredKey{-tid}", (StoredKey,), {"type_id": tid, "__module__": __name__})
    for tid in JAVA_ONLY_TYPES
}


def custom_serializers(stream_serializer: type) -> dict[type, type]:
    """hazelcast-python-client's ``custom_serializers`` option: for each of
    :data:`JAVA_ONLY_TYPES`, a serializer that keeps the bytes as they are.

    ``stream_serializer`` is the client's ``StreamSerializer`` base class (the client is an
    optional dependency, so it is passed in). Each serializer reads a value of its type id
    as a :class:`StoredKey` (a :class:`JavaKey` for Java serialization) and writes one back
    unchanged, so a key read is the same entry when sent back.
    """

    def serializer(key_class: type[StoredKey]) -> type:
        class KeepBytes(stream_serializer):  # type: ignore[misc, valid-type]
            def write(self, out: Any, obj: StoredKey) -> None:
                out.write_from(bytearray(obj.payload))

            def read(self, inp: Any) -> StoredKey:
                buffer = bytearray(inp.size() - inp.position())
                inp.read_into(buffer)
                return key_class(bytes(buffer))

            def get_type_id(self) -> int:
                return key_class.type_id

            def destroy(self) -> None:
                pass

        return KeepBytes

    return {key_class: serializer(key_class) for key_class in KEY_CLASSES.values()}
