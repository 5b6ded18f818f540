"""Writer schemas by id, each had once per read: from a registry, or from local schema files.

A framed value names its writer schema by id (or GUID). :class:`Schemas` answers each id once
per read (it is made anew for every read, so a schema deleted since the last read is not
served from a stale cache) and remembers failures too: an id the registry does not know is
asked about once, and its records go to the quarantine with the reason.

Schemas come from a registry (:class:`~.client.Client`) or from local files, for offline work
and CI: ``schemas={7: "order-v1.avsc", 9: "order.desc"}`` (id -> file), or a folder whose files
are named by id (``7.avsc``, ``9.proto``, ``9.desc``, ``12.json``). ``.avsc`` is Avro,
``.json`` a JSON Schema, ``.desc``/``.pb`` a Protobuf descriptor set (``protoc
--include_imports --descriptor_set_out``; its last file is the schema) and ``.proto`` Protobuf
source (compiled with ``protoc`` when it is on PATH).

>>> import json, tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "7.avsc").write_text(json.dumps({"type": "record", "name": "Order",
...     "fields": [{"name": "id", "type": "string"}]}))
>>> schemas = Schemas(files=folder)
>>> schemas.get(7).kind, schemas.get(7).version
('AVRO', '7')
>>> schemas.get(8)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
concursus_lab.sources.registry.schemas.Unavailable: schema id 8 is not among the local ... (7)
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from concursus_lab.exceptions import SchemaError, SourceError, SourceUnavailable
from concursus_lab.sources.registry.client import Client, NotFound
from concursus_lab.sources.registry.wire import Ref

KINDS = ("AVRO", "PROTOBUF", "JSON")
_SUFFIXES = {
    ".avsc": "AVRO",
    ".json": "JSON",
    ".proto": "PROTOBUF",
    ".desc": "PROTOBUF",
    ".pb": "PROTOBUF",
}


class Unavailable(Exception):
    """A schema that cannot be had; the message is the quarantine's reason."""


@dataclass(frozen=True)
class Schema:
    """One writer schema: its id (or GUID), kind, text, Protobuf imports, and version."""

    ref: Ref
    kind: str
    text: str = ""
    #: Protobuf only: the serialized FileDescriptorProtos of the file's imports, then its own.
    files: tuple[bytes, ...] = ()
    #: What goes to the ``version`` column: the subject's version, else the id.
    version: str = ""
    subject: str | None = None

    @property
    def parsed(self) -> Any:
        return json.loads(self.text)


@dataclass
class Schemas:
    """Schemas for one read; see the module docstring."""

    client: Client | None = None
    files: Mapping[Ref, str | Path] | str | Path | None = None
    #: The subject whose versions name ``version`` first (TopicNameStrategy: ``<topic>-value``).
    subject: str | None = None
    _known: dict[Ref, Schema | Unavailable] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.client is None and self.files is None:
            raise SourceError("a registry topic needs `registry=` (a URL) or `schemas=` (files).")
        self._files = _file_table(self.files) if self.files is not None else {}

    def fresh(self) -> Schemas:
        """The same sources with an empty cache: one per read."""
        return Schemas(self.client, self.files, self.subject)

    def get(self, ref: Ref) -> Schema:
        """The schema ``ref`` names, or :class:`Unavailable` with the reason. An unreachable
        registry raises :class:`~concursus_lab.exceptions.SourceUnavailable` (not cached)."""
        known = self._known.get(ref)
        if known is None:
            try:
                known = self._fetch(ref)
            except Unavailable as exc:
                known = exc
            self._known[ref] = known
        if isinstance(known, Unavailable):
            raise known
        return known

    def _fetch(self, ref: Ref) -> Schema:
        what = f"schema {'GUID' if isinstance(ref, str) else 'id'} {ref}"
        if ref in self._files:
            return _from_file(ref, Path(self._files[ref]))
        if self.client is None:
            known = ", ".join(str(k) for k in self._files) or "none"
            raise Unavailable(f"{what} is not among the local schema files ({known})")
        try:
            answer = (
                self.client.schema_by_guid(ref) if isinstance(ref, str) else self.client.schema(ref)
            )
        except NotFound as exc:
            raise Unavailable(
                f"{what} is not in the registry at {self.client.url} ({exc}): deleted, or "
                "written through another registry"
            ) from None
        kind = answer.get("schemaType") or "AVRO"
        if kind not in KINDS:
            raise Unavailable(f"{what} is of type {kind!r}, which is not read here ({KINDS})")
        text = answer.get("schema", "")
        files: tuple[bytes, ...] = ()
        if kind == "PROTOBUF":
            files = self._proto_files(ref, text, answer.get("references") or [])
        return Schema(ref, kind, text, files, self._version(ref), self.subject)

    def _version(self, ref: Ref) -> str:
        """The writer schema's version under :attr:`subject` (else its first subject); the
        id itself when the registry does not say."""
        if isinstance(ref, str) or self.client is None:
            return str(ref)
        try:
            versions = self.client.versions_of(ref)
        except (NotFound, SourceError):
            return str(ref)
        ours = [v for v in versions if v.get("subject") == self.subject] or versions
        return str(ours[0]["version"]) if ours else str(ref)

    def _proto_files(self, ref: Ref, text: str, references: list[dict]) -> tuple[bytes, ...]:
        """The file (base64 FileDescriptorProto, as Apicurio keeps what confluent-kafka
        registers, or .proto text) and its references' files, imports first."""
        files: list[bytes] = []
        for reference in references:
            assert self.client is not None
            try:
                found = self.client.version(reference["subject"], reference["version"])
            except NotFound:
                raise Unavailable(
                    f"schema id {ref} imports {reference.get('name')!r} (subject "
                    f"{reference.get('subject')!r} version {reference.get('version')}), "
                    "which the registry does not have"
                ) from None
            files.extend(
                self._proto_files(
                    found.get("id", ref), found["schema"], found.get("references") or []
                )
            )
        files.append(proto_file(text, f"schema id {ref}"))
        return tuple(files)


def proto_file(text: str, what: str) -> bytes:
    """A serialized FileDescriptorProto from a registry's Protobuf schema text: base64 of one
    (what confluent-kafka registers), or .proto source (compiled with protoc)."""
    stripped = text.strip()
    try:
        raw = base64.b64decode(stripped, validate=True)
    except (binascii.Error, ValueError):
        raw = None
    if raw:
        return raw
    from concursus_lab.sources.registry.protobuf import compile_proto

    return compile_proto(text, what)


def _file_table(files: Mapping[Ref, str | Path] | str | Path) -> dict[Ref, Path]:
    if isinstance(files, Mapping):
        table = {k: Path(v) for k, v in files.items()}
    else:
        folder = Path(files)
        if not folder.is_dir():
            raise SourceError(
                f"`schemas` must be a folder of schema files named by id (7.avsc, 9.desc) or a "
                f"dict of id -> file; {str(folder)!r} is not a folder."
            )
        table = {}
        for path in sorted(folder.iterdir()):
            if path.suffix in _SUFFIXES and path.stem.isdigit():
                table[int(path.stem)] = path
    for ref, path in table.items():
        if not isinstance(ref, int | str):
            raise SourceError(f"`schemas` keys are schema ids (int) or GUIDs, got {ref!r}.")
        if path.suffix not in _SUFFIXES or not path.is_file():
            raise SourceError(
                f"schema {ref}: {str(path)!r} is not a schema file ({', '.join(_SUFFIXES)})."
            )
    return table


def _from_file(ref: Ref, path: Path) -> Schema:
    kind = _SUFFIXES[path.suffix]
    if path.suffix in (".desc", ".pb"):
        from concursus_lab.sources.registry.protobuf import descriptor_set_files

        return Schema(ref, kind, "", descriptor_set_files(path.read_bytes(), str(path)), str(ref))
    text = path.read_text(encoding="utf-8")
    if kind == "PROTOBUF":
        return Schema(ref, kind, text, (proto_file(text, str(path)),), str(ref))
    try:
        json.loads(text)
    except ValueError as exc:
        raise SchemaError(f"{str(path)!r} is not JSON ({exc}); an .avsc file holds one.") from None
    return Schema(ref, kind, text, (), str(ref))


__all__ = ["Schema", "Schemas", "SourceUnavailable", "Unavailable"]
