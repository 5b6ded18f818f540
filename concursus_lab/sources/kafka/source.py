"""A Kafka topic of Concursus JSON events, read as canonical frames and written from them; or a
topic of your own JSON events, read through a mapping.

Open one with ``cl.open("kafka://host1:9092,host2:9092/parcel-events")``; a topic of your
own shape with ``cl.open("kafka://host:9092/orders", mapping=cl.Mapping(...))`` (or the
mapping in the URL's query string, :meth:`~concursus_lab.Mapping.to_query`), whose records
:mod:`~concursus_lab.sources.kafka.mapped` decodes. Security settings
come from environment variables, so credentials never sit in a notebook:

====================================  =============================================
variable                              kafka-python setting
====================================  =============================================
``CONCURSUS_LAB_KAFKA_SECURITY_PROTOCOL``  ``security_protocol`` (``SASL_SSL``, ...)
``CONCURSUS_LAB_KAFKA_SASL_MECHANISM``     ``sasl_mechanism`` (``PLAIN``, ``SCRAM-SHA-512``)
``CONCURSUS_LAB_KAFKA_SASL_USERNAME``      ``sasl_plain_username``
``CONCURSUS_LAB_KAFKA_SASL_PASSWORD``      ``sasl_plain_password``
``CONCURSUS_LAB_KAFKA_SSL_CAFILE``         ``ssl_cafile``
``CONCURSUS_LAB_KAFKA_SSL_CERTFILE``       ``ssl_certfile``
``CONCURSUS_LAB_KAFKA_SSL_KEYFILE``        ``ssl_keyfile``
``CONCURSUS_LAB_KAFKA_SSL_PASSWORD``       ``ssl_password``
``CONCURSUS_LAB_KAFKA_SSL_CHECK_HOSTNAME`` ``ssl_check_hostname`` (``true``/``false``)
====================================  =============================================

A read is bounded: every partition from its start (or from where processing time ``since``
begins) up to the end offsets taken when the read starts, so it ends even while producers
write. Kafka keeps every delivery; ``duplicates="last"`` resolves them as Cassandra would,
breaking ties by partition and offset.

Records are read with a plain consumer (no group, nothing committed). Whole fetches are
parsed at once (:mod:`concursus_lab.sources.kafka.records`, handed over by kafka-python
through :mod:`concursus_lab.sources.kafka.private`) and decoded in batches
(:mod:`concursus_lab.sources.concursus_json`) rather than one record at a time.

This module holds what users see, :class:`KafkaSource`; the work is done next door:
:mod:`~concursus_lab.sources.kafka.connection` (settings, clients, topics, errors),
:mod:`~concursus_lab.sources.kafka.reading` (the bounded read),
:mod:`~concursus_lab.sources.kafka.follow` and :mod:`~concursus_lab.sources.kafka.writing`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from collections.abc import Mapping as Settings
from typing import Any

import polars as pl

from concursus_lab.common.time import TimeLike, optional_utc
from concursus_lab.exceptions import IncompleteRead, SchemaError, SourceError, SourceUnavailable
from concursus_lab.frame.identity import Duplicates
from concursus_lab.mapping import Mapping
from concursus_lab.sources import concursus_json_write, kinds
from concursus_lab.sources.base import Source
from concursus_lab.sources.kafka import private, reading, writing
from concursus_lab.sources.kafka.connection import ENV_PREFIX, Cluster, env_settings, kafka_python
from concursus_lab.sources.kafka.follow import follow as _follow
from concursus_lab.sources.kafka.mapped import MappedRecords
from concursus_lab.sources.kafka.reading import (
    FRAME_SCHEMA,
    KAFKA_COLUMNS,
    QUARANTINE_SCHEMA,
    Scan,
    row_filter,
)
from concursus_lab.sources.kafka.seek import SEEK_SLACK, resumed_offsets, start_offsets
from concursus_lab.sources.quarantine import warn_quarantined
from concursus_lab.sources.query import Query

__all__ = [
    "DEFAULT_PARTITIONS",
    "ENV_PREFIX",
    "FRAME_SCHEMA",
    "KAFKA_COLUMNS",
    "QUARANTINE_SCHEMA",
    "SEEK_SLACK",
    "KafkaSource",
    "env_settings",
]

DEFAULT_PARTITIONS = 6


class KafkaSource(Source):
    """A Kafka topic of Concursus JSON events, or of your own (``mapping``); see the module
    docstring.

    Parameters
    ----------
    servers
        Bootstrap servers, ``"host:port"`` each.
    topic
        The topic name.
    create
        Create the topic when it is missing (with ``partitions`` partitions).
    partitions, replication
        For a topic created here.
    topic_config
        Topic settings for a topic created here, e.g. ``{"retention.ms": "-1"}``.
    client
        More kafka-python settings (they win over the environment variables).
    connect_timeout
        Seconds to wait for the cluster when opening.
    timeout
        Seconds a read may go without progress (a broker restarting) before it gives up
        with :class:`~concursus_lab.IncompleteRead`.
    mapping
        For a topic of your own JSON events: how a record (its value's fields, and
        ``kafka.key``, ``kafka.timestamp``, ``kafka.headers.<name>``, ...) maps onto the
        canonical frame (see :mod:`~concursus_lab.sources.kafka.mapped`). Such a topic is
        read, never written here.
    """

    takes_mapping = True

    def __init__(
        self,
        servers: Sequence[str],
        topic: str,
        *,
        create: bool = False,
        partitions: int = DEFAULT_PARTITIONS,
        replication: int = 1,
        topic_config: Settings[str, str] | None = None,
        client: Settings[str, Any] | None = None,
        connect_timeout: float = 10.0,
        timeout: float = 60.0,
        mapping: Mapping | None = None,
    ):
        if mapping is not None and not isinstance(mapping, Mapping):
            raise SourceError(f"`mapping` must be a cl.Mapping, got {type(mapping).__name__}.")
        if not servers or not all(isinstance(s, str) and s for s in servers):
            raise SourceError(f"`servers` must be 'host:port' strings, got {servers!r}.")
        if not isinstance(topic, str) or not topic:
            raise SourceError(f"`topic` must be a topic name, got {topic!r}.")
        if not isinstance(partitions, int) or partitions < 1:
            raise SourceError(f"`partitions` must be a positive int, got {partitions!r}.")
        self.servers = tuple(servers)
        self.topic = topic
        self.url = f"kafka://{','.join(self.servers)}/{topic}"
        self.mapping = mapping
        self._mapped = None if mapping is None else MappedRecords(mapping)
        settings = {**env_settings(), **dict(client or {})}
        self._cluster = Cluster(self.servers, settings, float(connect_timeout))
        self._timeout = float(timeout)
        self._quarantine = pl.DataFrame(schema=QUARANTINE_SCHEMA)
        kafka_python()
        self.partitions = self._cluster.open_topic(
            topic,
            url=self.url,
            create=create,
            partitions=partitions,
            replication=replication,
            topic_config=topic_config,
        )

    @classmethod
    def from_url(cls, url: str, **options: Any) -> KafkaSource:
        """Open ``kafka://host1:9092,host2:9092/topic``; options as for the constructor.
        A query string is a mapping (``?aggregate_type=order&aggregate_id=kafka.key&...``)."""
        scheme, _, rest = url.partition("://")
        if scheme.lower() not in ("kafka", "kafka+registry"):
            raise SourceError(f"not a kafka:// URL: {url!r}.")
        rest, _, query = rest.partition("?")
        if "#" in rest or "#" in query:
            raise SourceError(
                f"a kafka:// URL takes no fragment ({url.split('#', 1)[0]}#...): pass settings "
                f"as keyword arguments, and credentials in {ENV_PREFIX}SASL_USERNAME and "
                f"{ENV_PREFIX}SASL_PASSWORD (the URL is shown and logged)."
            )
        if query:
            if options.get("mapping") is not None:
                raise SourceError(
                    f"{url!r} has a mapping in its query string and mapping= was given too; "
                    "give one of them."
                )
            try:
                options["mapping"] = Mapping.from_query(query)
            except SchemaError as exc:
                raise SourceError(
                    f"a kafka:// URL takes no query options but a mapping's fields "
                    f"({url.split('?', 1)[0]}?aggregate_type=...): {exc} Pass settings as "
                    f"keyword arguments, and credentials in {ENV_PREFIX}SASL_USERNAME and "
                    f"{ENV_PREFIX}SASL_PASSWORD (the URL is shown and logged)."
                ) from None
        hosts, _, topic = rest.partition("/")
        if "@" in hosts:
            raise SourceError(
                "credentials do not belong in a kafka:// URL (it is shown and logged); set "
                f"{ENV_PREFIX}SASL_USERNAME and {ENV_PREFIX}SASL_PASSWORD instead."
            )
        topic = topic.strip("/")
        servers = [h.strip() for h in hosts.split(",") if h.strip()]
        if not servers or not topic or "/" in topic:
            raise SourceError(
                f"a Kafka URL names servers and one topic, like "
                f"'kafka://127.0.0.1:9092/parcel-events'; got {url!r}."
            )
        servers = [s if ":" in s.rsplit("]", 1)[-1] else f"{s}:9092" for s in servers]
        if cls is KafkaSource and (  # Avro, Protobuf, JSON Schema
            scheme.lower() == "kafka+registry" or {"registry", "schemas"} & set(options)
        ):
            return kinds.kind("kafka+registry", url).from_url(url, **options)
        return cls(servers, topic, **options)

    # -- connections -------------------------------------------------------------------

    def _consumer(self) -> Any:
        consumer = self._cluster.consumer()
        if self._mapped is None:
            private.read_whole_fetches(consumer)
        else:  # a mapping may name the records' keys and headers
            private.read_whole_fetches(consumer, keys=True)
        return consumer

    def _decode(self, chunks: list) -> tuple[pl.DataFrame, pl.DataFrame]:
        """A batch of records as (events with the Kafka columns, quarantined records)."""
        return reading.decode(chunks) if self._mapped is None else self._mapped(chunks)

    def _decode_joined(self, partitions: Any, records: Any) -> tuple[pl.DataFrame, pl.DataFrame]:
        """:meth:`_decode` of records already :func:`~.reading.joined` (Spark's batches)."""
        if self._mapped is None:
            return reading.decode_joined(partitions, records)
        return self._mapped.decode_joined(partitions, records)

    def _empty(self) -> pl.DataFrame:
        """What a read that finds no event gives."""
        return pl.DataFrame(schema=FRAME_SCHEMA) if self._mapped is None else self._mapped.empty()

    def _reader(self) -> reading.Reader:
        """What a read or a follow of this topic needs: they hand back what they found."""
        return reading.Reader(
            topic=self.topic,
            cluster=self._cluster,
            timeout=self._timeout,
            consumer=self._consumer,
            topic_partitions=self._topic_partitions,
            decode=self._decode,
            empty=self._empty,
            mapped=self._mapped,
        )

    def _topic_partitions(self, consumer: Any) -> list[Any]:
        numbers = consumer.partitions_for_topic(self.topic)
        if not numbers:
            raise SourceUnavailable(
                f"the topic {self.topic!r} is gone from {','.join(self.servers)}; "
                f"recreate it with cl.open({self.url!r}, create=True)."
            )
        self.partitions = len(numbers)
        return [kafka_python().TopicPartition(self.topic, p) for p in sorted(numbers)]

    # -- reading -----------------------------------------------------------------------

    def events(
        self,
        aggregate_type: str | None = None,
        aggregate_ids: Iterable[str] | str | None = None,
        event_time: tuple[TimeLike | None, TimeLike | None] | None = None,
        known_at: TimeLike | None = None,
        since: TimeLike | None = None,
        *,
        duplicates: Duplicates = "last",
        progress: bool | None = None,
    ) -> pl.DataFrame:
        """The topic's events up to now, as a canonical frame with Kafka columns after it.

        Parameters
        ----------
        aggregate_type, aggregate_ids, event_time, known_at, duplicates
            As for every source (see :meth:`Source.events`).
        since
            Only events processed at or after this time. The read starts at the offsets
            where that processing time begins in each partition, so a recent slice of a
            long topic costs little.
        progress
            Show a progress bar (default: only when the read takes more than a moment).

        Returns
        -------
        polars.DataFrame
            The canonical columns, then ``kafka_partition``, ``kafka_offset`` and
            ``kafka_timestamp`` (the record's timestamp), sorted by partition and offset.
            Records that could not be decoded are in :attr:`quarantine`, and a warning
            gives their count.

        Raises
        ------
        IncompleteRead
            The broker stopped answering for longer than ``timeout`` seconds, or the read
            was interrupted; ``.partial`` holds what was read.
        """
        query = Query.of(aggregate_type, aggregate_ids, event_time, known_at, duplicates)
        return self._events(query, progress, optional_utc(since, "since"))

    def _events(
        self, query: Query, progress: bool | None, since: dt.datetime | None = None
    ) -> pl.DataFrame:
        """Every partition from ``since``'s offsets (or the start) to its end offset of now."""
        scan = Scan(self._reader(), since, row_filter(query, since), progress)
        try:
            scan.run()
        finally:
            self._quarantine = scan.quarantine()
            warn_quarantined(self._quarantine, "record(s)", self.url, stacklevel=4)
        result = query.apply(scan.frame(), order="kafka_offset")
        if scan.missing:
            raise IncompleteRead(scan.incomplete_message(), partial=result)
        return result

    @property
    def quarantine(self) -> pl.DataFrame:
        """Records the last read (or follow) could not decode: ``kafka_partition``,
        ``kafka_offset``, ``kafka_timestamp``, ``raw`` (the value's bytes) and ``reason``."""
        return self._quarantine

    def follow(
        self,
        aggregate_type: str | None = None,
        aggregate_ids: Iterable[str] | str | None = None,
        *,
        since: TimeLike | None = None,
        poll_timeout: float = 1.0,
        batch: int = 10_000,
        idle_timeout: float | None = None,
        offsets: Settings[int, int] | None = None,
    ) -> Iterator[pl.DataFrame]:
        """New events as they arrive: a generator of frames, for live views.

        Starts at the end of every partition as it is when ``follow`` is called (or where
        processing time ``since`` begins, or at ``offsets``) and yields each batch of newly
        arrived events (at most ``batch`` records' worth, every delivery kept) as a frame like
        :meth:`events` returns. Records that do not decode are added to :attr:`quarantine`.
        Closing the generator (or leaving a ``for`` loop over it) closes its consumer.

        Parameters
        ----------
        poll_timeout
            Seconds each wait for new records lasts.
        batch
            Most records decoded into one frame.
        idle_timeout
            Stop after this many seconds without a new record (None: never stop).
        offsets
            ``partition -> offset`` of the next record to read, to go on from where a
            follow stopped (``cl.live``'s ``offsets.kafka``); a partition not named starts at
            its beginning. Not with ``since``.

        Examples
        --------
        >>> for frame in source.follow(idle_timeout=30):   # doctest: +SKIP
        ...     view.update(frame)
        """
        if not isinstance(batch, int) or batch < 1:
            raise SourceError(f"`batch` must be a positive int, got {batch!r}.")
        query = Query.of(aggregate_type, aggregate_ids, duplicates="keep")
        since_at = optional_utc(since, "since")
        if offsets is not None and since_at is not None:
            raise SourceError(
                f"`since` ({since!r}) and `offsets` both say where to start: pass one of them."
            )
        consumer = self._consumer()
        try:  # where to start is decided now, not when the generator is first asked
            tps = self._topic_partitions(consumer)
            if offsets is not None:
                starts = resumed_offsets(consumer, tps, offsets)
            else:
                starts = start_offsets(
                    consumer,
                    tps,
                    since_at,
                    from_end=since_at is None,
                    cluster=self._cluster,
                    timeout=self._timeout,
                    decode=self._mapped,
                )
        finally:
            consumer.close()
        self._quarantine = pl.DataFrame(schema=QUARANTINE_SCHEMA)
        keep = row_filter(query, since_at)
        return self._quarantined(
            _follow(self._reader(), starts, keep, poll_timeout, batch, idle_timeout)
        )

    def _quarantined(
        self, batches: Iterator[tuple[pl.DataFrame, pl.DataFrame]]
    ) -> Iterator[pl.DataFrame]:
        """The events of each of ``batches``; its records that did not decode join
        :attr:`quarantine`, with a warning. Closing this closes ``batches`` (its consumer)."""
        try:
            for frame, bad in batches:
                if bad.height:
                    self._quarantine = pl.concat([self._quarantine, bad])
                    warn_quarantined(bad, "record(s)", self.url)
                if frame.height:
                    yield frame
        finally:
            batches.close()

    # -- writing -----------------------------------------------------------------------

    def append(
        self,
        frame: pl.DataFrame,
        *,
        layout: concursus_json_write.Layout = "flat",
        progress: bool | None = None,
    ) -> int:
        """Validate ``frame`` and write one record per event; returns how many were written.

        Each record is keyed by its aggregate id (so one aggregate's events stay in one
        partition) and holds one Concursus JSON event in ``layout`` (``"flat"``, as
        Concursus 0.6 writes, or ``"nested"``). An event without a ``processing_id`` is
        stamped with a time-based UUID of its ``processing_timestamp``; the record
        timestamp is the time of writing, except for events whose ``processing_id`` is not
        a time-based UUID, whose record timestamp is their ``processing_timestamp`` (that
        is where a read finds it). The producer is idempotent and everything is flushed
        before this returns. Nothing is written when validation fails (event times finer
        than a millisecond included: the JSON holds epoch milliseconds), nor when any
        event's record would be larger than the topic takes (its ``max.message.bytes``):
        that :class:`~concursus_lab.exceptions.SchemaError` names the row. When the broker
        refuses some records all the same, or the connection fails part-way,
        :class:`~concursus_lab.exceptions.IncompleteWrite` counts what the broker confirmed
        and holds the frame of the rest.
        """
        if self.mapping is not None:
            raise SourceError(
                f"{self.url} is a topic of your own shape, read through a mapping, never "
                "written here (your producers write it). Copy it into a store to work on: "
                f"cl.copy(cl.open({self.url!r}, mapping=...), 'data/my-store', create=True)."
            )
        return writing.append(
            self._cluster,
            self.topic,
            frame,
            layout=layout,
            progress=progress,
            timeout=self._timeout,
        )

    # -- describing --------------------------------------------------------------------

    def __repr__(self) -> str:
        shape = "" if self.mapping is None else f"; {self.mapping!r}"
        return (
            f"KafkaSource({self.url!r}: topic {self.topic!r}, {self.partitions} partitions{shape})"
        )
