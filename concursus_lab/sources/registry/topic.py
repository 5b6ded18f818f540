"""A Kafka topic of Avro, Protobuf or JSON Schema values, read through a schema registry.

``cl.open("kafka://127.0.0.1:9092/orders", registry="http://127.0.0.1:8081/apis/ccompat/v7",
mapping=cl.Mapping(...))`` gives a :class:`RegistryTopic` (so does the URL
``kafka+registry://127.0.0.1:9092/orders``, with the registry in
``$CONCURSUS_LAB_REGISTRY_URL``, for ``$CONCURSUS_LAB_SOURCE``): a Kafka source whose values are
decoded by :class:`~concursus_lab.sources.registry.values.RegistryValues` (in bulk, per writer
schema) into records the mapping reads as it reads a JSON topic's: the fields of the reader
schema, dotted paths into nested records, ``kafka.key``, ``kafka.timestamp``,
``kafka.headers.<name>``, and ``kafka.schema_id`` / ``kafka.schema_version``. ``version`` is
the writer schema's version unless the mapping names it. ``.events()``, ``since=``,
``.follow()`` and Spark's read decode the same way.

Without a mapping the topic holds Concursus's own events as Avro records
(:mod:`~concursus_lab.sources.registry.layout`), and :meth:`RegistryTopic.append` writes
them: the schema registered under the topic's subject (``<topic>-value``, Confluent's
TopicNameStrategy), each value framed as ``0x00`` + its id, as Confluent's serializer frames it.

A registry that cannot be reached during a read is never a silent gap: the values whose
schema could not be fetched go to the quarantine, and the read raises
:class:`~concursus_lab.exceptions.IncompleteRead` with what it decoded.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from concursus_lab.exceptions import IncompleteRead, SourceError
from concursus_lab.mapping import Mapping as EventMapping
from concursus_lab.sources.kafka import writing
from concursus_lab.sources.kafka.mapped import MappedRecords
from concursus_lab.sources.kafka.source import KafkaSource
from concursus_lab.sources.query import Query
from concursus_lab.sources.registry import layout
from concursus_lab.sources.registry.client import Client, from_env
from concursus_lab.sources.registry.schemas import Ref, Schemas
from concursus_lab.sources.registry.values import SCHEMA_VERSION, RegistryValues


class RegistryTopic(KafkaSource):
    """A topic of schema-registry-framed values; see the module docstring.

    Parameters
    ----------
    servers, topic
        As for :class:`~concursus_lab.sources.kafka.source.KafkaSource` (so are ``options``).
    registry
        The registry's Confluent API (``http://host:8081``, Apicurio's
        ``http://host:8080/apis/ccompat/v7``); True: ``$CONCURSUS_LAB_REGISTRY_URL``.
        Credentials come from ``CONCURSUS_LAB_REGISTRY_*`` (see
        :mod:`~concursus_lab.sources.registry.client`).
    schemas
        Or local schema files: a folder of files named by id (``7.avsc``, ``9.desc``) or a
        dict of id -> file (see :mod:`~concursus_lab.sources.registry.schemas`).
    reader
        The Avro reader schema every writer version is resolved onto (a dict, JSON text or an
        ``.avsc`` file); default: the latest version of the topic's subject.
    subject
        The value subject (default ``<topic>-value``).
    mapping
        How a decoded record maps onto the canonical frame; None: Concursus's own Avro layout.
    """

    def __init__(
        self,
        servers: Sequence[str],
        topic: str,
        *,
        registry: str | bool | None = None,
        schemas: Mapping[Ref, str | Path] | str | Path | None = None,
        reader: Any = None,
        subject: str | None = None,
        mapping: EventMapping | None = None,
        **options: Any,
    ):
        url = from_env() if registry is True else (registry or None)
        self.registry = None if url is None else Client(url)
        self.subject = subject or f"{topic}-value"
        self.values = RegistryValues(Schemas(self.registry, schemas, self.subject), reader)
        self.own_layout = mapping is None
        chosen = layout.MAPPING if mapping is None else mapping
        if chosen.version is None:  # the writer schema's version, unless the mapping says
            chosen = dataclasses.replace(chosen, version=SCHEMA_VERSION)
        super().__init__(servers, topic, mapping=chosen, **options)
        self._mapped = MappedRecords(chosen, self.values)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RegistryTopic:
        """``kafka://`` with ``registry=`` or ``schemas=``; or ``kafka+registry://host/topic``,
        whose registry is ``$CONCURSUS_LAB_REGISTRY_URL`` unless one is given."""
        if url.lower().startswith("kafka+registry://") and not {"registry", "schemas"} & set(
            options
        ):
            options["registry"] = True
        return super().from_url(url, **options)  # type: ignore[return-value]

    # -- reading ----------------------------------------------------------------------------

    def _events(self, query: Query, progress: bool | None, since: dt.datetime | None = None):
        self.values.begin()
        try:
            result = super()._events(query, progress, since)
        except IncompleteRead as exc:
            if self.values.unreachable is None:
                raise
            raise IncompleteRead(f"{exc} {self._gone()}", partial=exc.partial) from None
        if self.values.unreachable is not None:
            raise IncompleteRead(self._gone(), partial=result)
        return result

    def _gone(self) -> str:
        stuck = self.quarantine.filter(pl.col("reason").str.contains("could not be fetched"))
        return (
            f"the read of {self.topic!r} could not decode {stuck.height:,} record(s): "
            f"{self.values.unreachable} They are in `.quarantine`; `.partial` holds the events "
            "decoded. Read again once the registry answers."
        )

    def follow(self, *args: Any, **kwargs: Any) -> Iterator[pl.DataFrame]:
        """As :meth:`KafkaSource.follow`; values whose schema cannot be fetched (the registry
        gone) join :attr:`quarantine` with that reason, and following goes on."""
        self.values.begin()
        return super().follow(*args, **kwargs)

    # -- writing ----------------------------------------------------------------------------

    def append(self, frame: pl.DataFrame, *, progress: bool | None = None, **_: Any) -> int:
        """Write ``frame``'s events as Avro records of Concursus's layout; returns how many.

        The layout's schema is registered under the topic's subject (or found there), and
        each value is framed as Confluent's serializer frames it (``0x00`` + the schema id),
        keyed by aggregate id. What is refused or not confirmed raises
        :class:`~concursus_lab.exceptions.IncompleteWrite`, as for JSON topics.
        """
        if not self.own_layout:
            raise SourceError(
                f"{self.url} holds your own records, read through a mapping; concursus-lab "
                "writes only Concursus's own Avro layout (open the topic without mapping=), "
                "never your producers' schemas."
            )
        if self.registry is None:
            raise SourceError(
                f"appending to {self.url} registers its schema: open it with registry= "
                "(local schema files are for reading)."
            )
        schema_id = self.registry.register(self.subject, json.dumps(layout.SCHEMA))
        return writing.append(
            self._cluster,
            self.topic,
            frame,
            layout="flat",
            progress=progress,
            timeout=self._timeout,
            encode=layout.encoder(schema_id),
        )

    def __repr__(self) -> str:
        where = self.registry.url if self.registry is not None else "local schema files"
        shape = "Concursus's Avro layout" if self.own_layout else repr(self.mapping)
        return (
            f"RegistryTopic({self.url!r}: topic {self.topic!r}, {self.partitions} partitions, "
            f"schemas from {where}; {shape})"
        )
