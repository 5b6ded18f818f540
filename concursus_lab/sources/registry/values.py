"""A batch of framed values as one frame of records: the value decoder of a registry topic.

:class:`RegistryValues` is called with a batch's values (and headers) and gives what a
mapping reads: one row per decoded value, one column per field of the reader schema, plus

=========================  ===========================================================
``kafka.schema_id``        the writer schema's id (or GUID), as text
``kafka.schema_version``   its version under the topic's subject (else its id): the
                           ``version`` column unless the mapping names another
=========================  ===========================================================

Values are grouped by writer schema and each group is decoded in one call (:mod:`~.avro`,
:mod:`~.protobuf`; JSON Schema values are plain JSON objects). Every writer version is
resolved onto one reader schema per read (``reader=``, else the latest version of the topic's
subject), so the columns do not depend on which versions a batch happened to hold. Values
whose schema cannot be had, or whose body does not decode, are named with the reason and the
schema id. When the registry cannot be reached, :attr:`RegistryValues.unreachable` says so and
the read that used this decoder raises :class:`~concursus_lab.exceptions.IncompleteRead`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from concursus_lab.exceptions import SchemaError, SourceUnavailable
from concursus_lab.sources.registry import avro, protobuf, wire
from concursus_lab.sources.registry.client import NotFound
from concursus_lab.sources.registry.schemas import Schema, Schemas, Unavailable

SCHEMA_ID, SCHEMA_VERSION = "kafka.schema_id", "kafka.schema_version"

Bad = list[tuple[int, str]]


class RegistryValues:
    """Decodes framed values through ``schemas``; see the module docstring.

    Parameters
    ----------
    schemas
        Where writer schemas come from (a registry, local files).
    reader
        The Avro reader schema every writer version is resolved onto (a dict, JSON text or an
        ``.avsc`` path); None: the latest version of ``schemas.subject``.
    """

    takes_headers = True

    def __init__(self, schemas: Schemas, reader: Any = None):
        self.schemas = schemas
        self.reader = _json_schema(reader) if reader is not None else None
        self.begin()

    def begin(self) -> None:
        """Start a read: schemas are fetched again (once each), the reader looked up again."""
        self.schemas = self.schemas.fresh()
        self._latest: Schema | bool | None = False  # False: not looked up yet
        self._files: dict[Any, protobuf.Files] = {}
        self.unreachable: str | None = None

    def __call__(
        self,
        values: Sequence[bytes | None],
        headers: Sequence[tuple] | None = None,
    ) -> tuple[pl.DataFrame, np.ndarray, Bad]:
        framing = wire.split(values, headers)
        bad: Bad = list(framing.reasons.items())
        frames: list[pl.DataFrame] = []
        used: list[np.ndarray] = []
        for (ref, start), rows in _groups(framing).items():
            try:
                schema = self.schemas.get(ref)
            except Unavailable as exc:
                bad.extend((i, str(exc)) for i in rows.tolist())
                continue
            except SourceUnavailable as exc:
                self.unreachable = str(exc)
                why = f"schema id {ref} could not be fetched: {exc}"
                bad.extend((i, why) for i in rows.tolist())
                continue
            whole = len(rows) == len(values)
            group = values if whole else [values[i] for i in rows.tolist()]
            frame, kept, more = self._decode(schema, group, start, framing.block if whole else None)
            bad.extend((int(rows[i]), f"schema id {ref}: {why}") for i, why in more)
            if frame.height:
                frames.append(
                    frame.with_columns(
                        pl.lit(str(ref)).alias(SCHEMA_ID),
                        pl.lit(schema.version).alias(SCHEMA_VERSION),
                    )
                )
                used.append(rows[kept])
        bad.sort()
        if not frames:
            return pl.DataFrame(), np.zeros(0, dtype=np.int64), bad
        frame = pl.concat(frames, how="diagonal_relaxed")
        order = np.concatenate(used)
        sort = np.argsort(order, kind="stable")
        return frame[sort], order[sort], bad

    # -- one schema group ------------------------------------------------------------------

    def _decode(
        self, schema: Schema, values: list[bytes], start: int, block: bytes | None
    ) -> tuple[pl.DataFrame, np.ndarray, Bad]:
        """One writer schema's values: the frame, which of ``values`` it holds, the bad ones
        (``block``: all of them joined with the Avro sentinel, when that was made)."""
        everything = np.arange(len(values))
        if schema.kind == "AVRO":
            reader = self._avro_reader(schema)
            try:
                frame, bad = avro.decode(values, start, schema.parsed, reader=reader, block=block)
            except avro.Unresolvable as exc:
                shown = "the reader schema" if self.reader else "the subject's latest version"
                return (
                    pl.DataFrame(),
                    everything[:0],
                    [(i, f"cannot be read as {shown}: {exc}") for i in everything.tolist()],
                )
            kept = np.setdiff1d(everything, [i for i, _ in bad]) if bad else everything
            return frame, kept, bad
        if schema.kind == "PROTOBUF":
            return self._protobuf(schema, values, start)
        return _json_bodies(values, start)

    def _latest_schema(self) -> Schema | None:
        """The latest version of the topic's subject, looked up once per read."""
        if self._latest is False:
            self._latest = None
            client, subject = self.schemas.client, self.schemas.subject
            if client is not None and subject is not None:
                try:
                    answer = client.version(subject, "latest")
                    self._latest = self.schemas.get(int(answer["id"]))
                except (NotFound, Unavailable, KeyError, ValueError):
                    self._latest = None
        return self._latest if isinstance(self._latest, Schema) else None

    def _avro_reader(self, writer: Schema) -> Any:
        if self.reader is not None:
            return self.reader
        latest = self._latest_schema()
        if latest is None or latest.kind != "AVRO" or latest.ref == writer.ref:
            return None
        return latest.parsed

    def _protobuf(
        self, schema: Schema, values: list[bytes], start: int
    ) -> tuple[pl.DataFrame, np.ndarray, Bad]:
        files = self._files_of(schema)
        bad: Bad = []
        paths = _one_message(values, start, files)
        if paths is None:  # several messages, or long index paths: value by value
            paths = {}
            for i, value in enumerate(values):
                try:
                    path, at = wire.message_indexes(value, start)
                    files.message(path)
                except (ValueError, IndexError) as exc:
                    bad.append((i, f"the Protobuf message indexes are wrong: {exc}"))
                    continue
                indexes, bodies = paths.setdefault(path, ([], []))
                indexes.append(i)
                bodies.append(value[at:])
        latest = self._latest_schema()
        reader_files = (
            self._files_of(latest) if latest is not None and latest.kind == "PROTOBUF" else None
        )
        frames, kept = [], []
        for path, members in paths.items():
            message = files.message(path)
            if reader_files is not None:  # protobuf resolves by field number: read as the newest
                message = reader_files.find(message.full_name) or message
            indexes, bodies = members
            frame, more = protobuf.decode(bodies, message)
            wrong = {k for k, _ in more}
            bad.extend((indexes[k], why) for k, why in more)
            frames.append(frame)
            kept.extend(
                indexes if not wrong else [i for k, i in enumerate(indexes) if k not in wrong]
            )
        frame = pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()
        return frame, np.asarray(kept, dtype=np.int64), bad

    def _files_of(self, schema: Schema) -> protobuf.Files:
        files = self._files.get(schema.ref)
        if files is None:
            files = self._files[schema.ref] = protobuf.Files(schema.files)
        return files


def _one_message(
    values: list[bytes], start: int, files: protobuf.Files
) -> dict[tuple[int, ...], tuple[Any, list[bytes]]] | None:
    """The common case at C speed: every value names one message with a short index path (a
    lone ``0x00``, or ``02 XX``); None otherwise."""
    heads = {v[start : start + 2] for v in values}
    found = set()
    for head in heads:
        try:
            found.add(wire.message_indexes(head, 0))
        except ValueError:
            return None
    if len(found) != 1:
        return None
    ((path, at),) = found
    try:
        files.message(path)
    except IndexError:
        return None
    at += start
    return {path: (range(len(values)), [v[at:] for v in values])}


def _groups(framing: wire.Framing) -> dict[tuple[Any, int], np.ndarray]:
    """Row indexes per (schema, body start); ids grouped with NumPy, GUIDs (few) in Python."""
    ids, starts = framing.ids, framing.starts
    groups: dict[tuple[Any, int], np.ndarray] = {}
    keys = np.where(ids >= 0, ids * 32 + starts, -1)  # starts are 0, 5 or 17
    uniques, inverse = np.unique(keys, return_inverse=True)
    if len(uniques) == 1 and uniques[0] >= 0:  # the common case: one schema, one framing
        groups[(int(uniques[0]) // 32, int(uniques[0]) % 32)] = np.arange(len(ids))
    else:
        order = np.argsort(inverse, kind="stable")
        bounds = np.cumsum(np.bincount(inverse, minlength=len(uniques)))[:-1]
        for key, rows in zip(uniques.tolist(), np.split(order, bounds), strict=True):
            if key >= 0:
                groups[(key // 32, key % 32)] = rows
    guids: dict[tuple[Any, int], list[int]] = {}
    for i, guid in framing.guids.items():
        guids.setdefault((guid, int(starts[i])), []).append(i)
    groups.update((key, np.array(rows, dtype=np.int64)) for key, rows in guids.items())
    return groups


def _json_bodies(values: list[bytes], start: int) -> tuple[pl.DataFrame, np.ndarray, Bad]:
    """JSON Schema values: the body is a plain JSON object."""
    from concursus_lab.sources.kafka.values import json_objects

    return json_objects([v[start:] for v in values])


def _json_schema(reader: Any) -> Any:
    if isinstance(reader, dict | list):
        return reader
    if isinstance(reader, Path) or (isinstance(reader, str) and reader.endswith(".avsc")):
        reader = Path(reader).read_text(encoding="utf-8")
    try:
        return json.loads(reader)
    except (TypeError, ValueError):
        raise SchemaError(
            f"`reader` must be an Avro schema (a dict, its JSON text or an .avsc file), got "
            f"{str(reader)[:80]!r}."
        ) from None
