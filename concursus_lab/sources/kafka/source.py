"""A Kafka topic of Concursus JSON events, read as canonical frames and written from them.

Open one with ``cl.open("kafka://host1:9092,host2:9092/parcel-events")``. Security settings
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
parsed at once (:mod:`concursus_lab.sources.kafka.records`) and decoded in batches
(:mod:`concursus_lab.sources.kafka.codec`) rather than one record at a time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import difflib
import functools
import logging
import os
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from concursus_lab.common.progress import bar as progress_bar
from concursus_lab.common.time import TimeLike, optional_utc
from concursus_lab.exceptions import (
    ConcursusLabError,
    IncompleteRead,
    MissingDependency,
    SourceError,
    SourceUnavailable,
)
from concursus_lab.frame.identity import Duplicates
from concursus_lab.frame.schema import SCHEMA, for_writing
from concursus_lab.frame.timeuuid import processing_time, time_uuids
from concursus_lab.sources.base import Source
from concursus_lab.sources.kafka import codec
from concursus_lab.sources.kafka.records import Records, head, read_whole_fetches, split
from concursus_lab.sources.kafka.records import chunks as by_partition
from concursus_lab.sources.query import Query

ENV_PREFIX = "CONCURSUS_LAB_KAFKA_"
_ENV_SETTINGS = {
    "SECURITY_PROTOCOL": "security_protocol",
    "SASL_MECHANISM": "sasl_mechanism",
    "SASL_USERNAME": "sasl_plain_username",
    "SASL_PASSWORD": "sasl_plain_password",
    "SSL_CAFILE": "ssl_cafile",
    "SSL_CERTFILE": "ssl_certfile",
    "SSL_KEYFILE": "ssl_keyfile",
    "SSL_PASSWORD": "ssl_password",
    "SSL_CHECK_HOSTNAME": "ssl_check_hostname",
}

#: Columns after the canonical ones in every frame read from Kafka.
KAFKA_COLUMNS = pl.Schema(
    {
        "kafka_partition": pl.Int32,
        "kafka_offset": pl.Int64,
        "kafka_timestamp": pl.Datetime("us", "UTC"),
    }
)
FRAME_SCHEMA = pl.Schema({**SCHEMA, **KAFKA_COLUMNS})
QUARANTINE_SCHEMA = pl.Schema({**KAFKA_COLUMNS, "raw": pl.Binary, "reason": pl.String})

DEFAULT_PARTITIONS = 6
#: A ``since`` read starts this much before ``since`` in record time, then filters exactly:
#: record timestamps come from clocks that may run behind the one that stamped processingId.
SEEK_SLACK = dt.timedelta(minutes=5)
_DECODE_BATCH = 200_000  # records decoded at once
_FETCH_BYTES = 64 * 1024 * 1024  # most bytes one fetch brings, all partitions together
_PARTITION_FETCH_BYTES = 16 * 1024 * 1024
_POLL_MS = 200


@functools.cache
def _kafka() -> Any:
    """The kafka-python package, or an error that says how to install it."""
    try:
        import crc32c  # noqa: F401 - without it record checks cap reads near 50k records/s
        import kafka
    except ImportError as exc:
        raise MissingDependency(
            f"Kafka sources need kafka-python and crc32c ({exc.name} is missing): "
            "pip install 'concursus-lab[kafka]'"
        ) from exc
    # kafka-python logs every reconnection attempt; with no logging set up, Python would
    # print them all. What matters reaches the user as an exception; who configures
    # logging still sees everything.
    logging.getLogger("kafka").addHandler(logging.NullHandler())
    return kafka


def env_settings(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """kafka-python security settings from ``CONCURSUS_LAB_KAFKA_*`` variables."""
    environ = os.environ if environ is None else environ
    settings: dict[str, Any] = {}
    for suffix, name in _ENV_SETTINGS.items():
        value = environ.get(ENV_PREFIX + suffix)
        if value is None or value == "":
            continue
        if name == "ssl_check_hostname":
            settings[name] = value.strip().lower() not in ("0", "false", "no", "off")
        elif name in ("security_protocol", "sasl_mechanism"):
            settings[name] = value.strip().upper()
        else:
            settings[name] = value
    return settings


def _is_local(servers: Sequence[str]) -> bool:
    return all(s.rsplit(":", 1)[0] in ("127.0.0.1", "localhost", "::1", "[::1]") for s in servers)


@dataclass
class _Partition:
    """Where a bounded read of one partition starts, ends and has got to."""

    start: int
    end: int
    position: int = field(init=False)

    def __post_init__(self) -> None:
        self.position = self.start

    @property
    def done(self) -> bool:
        return self.position >= self.end


class KafkaSource(Source):
    """A Kafka topic of Concursus JSON events; see the module docstring.

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
    """

    def __init__(
        self,
        servers: Sequence[str],
        topic: str,
        *,
        create: bool = False,
        partitions: int = DEFAULT_PARTITIONS,
        replication: int = 1,
        topic_config: Mapping[str, str] | None = None,
        client: Mapping[str, Any] | None = None,
        connect_timeout: float = 10.0,
        timeout: float = 60.0,
    ):
        if not servers or not all(isinstance(s, str) and s for s in servers):
            raise SourceError(f"`servers` must be 'host:port' strings, got {servers!r}.")
        if not isinstance(topic, str) or not topic:
            raise SourceError(f"`topic` must be a topic name, got {topic!r}.")
        if not isinstance(partitions, int) or partitions < 1:
            raise SourceError(f"`partitions` must be a positive int, got {partitions!r}.")
        self.servers = tuple(servers)
        self.topic = topic
        self.url = f"kafka://{','.join(self.servers)}/{topic}"
        self._settings = {**env_settings(), **dict(client or {})}
        self._connect_timeout = float(connect_timeout)
        self._timeout = float(timeout)
        self._quarantine = pl.DataFrame(schema=QUARANTINE_SCHEMA)
        _kafka()
        self.partitions = self._open_topic(create, partitions, replication, topic_config)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> KafkaSource:
        """Open ``kafka://host1:9092,host2:9092/topic``; options as for the constructor."""
        scheme, _, rest = url.partition("://")
        if scheme.lower() != "kafka":
            raise SourceError(f"not a kafka:// URL: {url!r}.")
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
        return cls(servers, topic, **options)

    # -- connections -------------------------------------------------------------------

    def _client_settings(self, client: type) -> dict[str, Any]:
        """Settings for one kind of kafka-python client: each refuses settings it lacks,
        so ``client=`` options meant for another kind are left out."""
        settings = {
            "bootstrap_servers": list(self.servers),
            "client_id": "concursus-lab",
            "bootstrap_timeout_ms": int(self._connect_timeout * 1000),
            "request_timeout_ms": 30_000,
            **self._settings,
        }
        known = getattr(client, "DEFAULT_CONFIG", settings)
        return {k: v for k, v in settings.items() if k in known}

    def _unreachable(self, exc: BaseException) -> ConcursusLabError:
        """The error for a failed call to Kafka: unreachable (retriable), or refused."""
        if not getattr(exc, "retriable", True) and type(exc).__name__ != "NoBrokersAvailable":
            return SourceError(
                f"Kafka at {','.join(self.servers)} refused: {type(exc).__name__}: {exc}"
            )
        if _is_local(self.servers):
            hint = "Is the local Kafka running? Start it with `concursus-lab services start kafka`."
        else:
            hint = (
                "Check the addresses and the network, and the security settings in "
                f"{ENV_PREFIX}* environment variables."
            )
        return SourceUnavailable(
            f"cannot reach Kafka at {','.join(self.servers)} ({type(exc).__name__}: {exc}). " + hint
        )

    @contextlib.contextmanager
    def _admin(self) -> Iterator[Any]:
        kafka = _kafka()
        try:
            admin = kafka.KafkaAdminClient(**self._client_settings(kafka.KafkaAdminClient))
        except kafka.errors.KafkaError as exc:
            raise self._unreachable(exc) from exc
        try:
            yield admin
        except kafka.errors.KafkaError as exc:
            raise self._unreachable(exc) from exc
        finally:
            admin.close()

    def _open_topic(
        self,
        create: bool,
        partitions: int,
        replication: int,
        topic_config: Mapping[str, str] | None,
    ) -> int:
        with self._admin() as admin:
            count = _partition_count(admin, self.topic)
            if count is None and create:
                try:
                    admin.create_topics(
                        {
                            self.topic: {
                                "num_partitions": partitions,
                                "replication_factor": replication,
                                "configs": dict(topic_config or {}),
                            }
                        },
                        wait_for_metadata=True,
                    )
                except _kafka().errors.TopicAlreadyExistsError:
                    pass  # made by someone else meanwhile
                count = _partition_count(admin, self.topic)
            if count is None:
                known = [t for t in admin.list_topics() if not t.startswith("__")]
                near = difflib.get_close_matches(self.topic, known, 1)
                hint = f" Did you mean {near[0]!r}?" if near else ""
                raise SourceUnavailable(
                    f"there is no topic {self.topic!r} on {','.join(self.servers)}.{hint} "
                    f"Pass create=True to create it ({partitions} partitions), e.g. "
                    f"cl.open({self.url!r}, create=True)."
                )
        return count

    def _consumer(self) -> Any:
        kafka = _kafka()
        try:
            consumer = kafka.KafkaConsumer(
                **{
                    "group_id": None,
                    "enable_auto_commit": False,
                    "auto_offset_reset": "earliest",
                    "allow_auto_create_topics": False,
                    "fetch_max_bytes": _FETCH_BYTES,
                    "max_partition_fetch_bytes": _PARTITION_FETCH_BYTES,
                    "fetch_max_wait_ms": 100,
                    "max_poll_records": 100_000,
                    "reconnect_backoff_max_ms": 2000,
                    "check_crcs": True,
                    **self._client_settings(kafka.KafkaConsumer),
                }
            )
        except kafka.errors.KafkaError as exc:
            raise self._unreachable(exc) from exc
        read_whole_fetches(consumer)
        return consumer

    def _topic_partitions(self, consumer: Any) -> list[Any]:
        kafka = _kafka()
        numbers = consumer.partitions_for_topic(self.topic)
        if not numbers:
            raise SourceUnavailable(
                f"the topic {self.topic!r} is gone from {','.join(self.servers)}; "
                f"recreate it with cl.open({self.url!r}, create=True)."
            )
        self.partitions = len(numbers)
        return [kafka.TopicPartition(self.topic, p) for p in sorted(numbers)]

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
        since_at = optional_utc(since, "since")
        keep = _row_filter(query, since_at)
        scan = _Scan(self, since_at, keep, progress)
        try:
            scan.run()
        finally:
            self._quarantine = scan.quarantine()
            _warn_quarantine(self._quarantine.height, self.topic)
        frame = scan.frame()
        result = query.apply(frame, order="kafka_offset")
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
    ) -> Iterator[pl.DataFrame]:
        """New events as they arrive: a generator of frames, for live views.

        Starts at the end of every partition as it is when ``follow`` is called (or where
        processing time ``since`` begins) and yields each batch of newly arrived events
        (at most ``batch`` records' worth, every delivery kept) as a frame like
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

        Examples
        --------
        >>> for frame in source.follow(idle_timeout=30):   # doctest: +SKIP
        ...     view.update(frame)
        """
        if not isinstance(batch, int) or batch < 1:
            raise SourceError(f"`batch` must be a positive int, got {batch!r}.")
        query = Query.of(aggregate_type, aggregate_ids, duplicates="keep")
        since_at = optional_utc(since, "since")
        consumer = self._consumer()
        try:  # where to start is decided now, not when the generator is first asked
            tps = self._topic_partitions(consumer)
            starts = _start_offsets(consumer, tps, since_at, from_end=since_at is None)
        finally:
            consumer.close()
        self._quarantine = pl.DataFrame(schema=QUARANTINE_SCHEMA)
        return self._follow(starts, _row_filter(query, since_at), poll_timeout, batch, idle_timeout)

    def _follow(
        self,
        starts: dict[Any, int],
        keep: pl.Expr | None,
        poll_timeout: float,
        batch: int,
        idle_timeout: float | None,
    ) -> Iterator[pl.DataFrame]:
        kafka = _kafka()
        positions = dict(starts)

        def connect() -> Any:
            consumer = self._consumer()
            consumer.assign(list(positions))
            for tp, offset in positions.items():
                consumer.seek(tp, offset)
            return consumer

        consumer = connect()
        try:
            last_seen = time.monotonic()
            while True:
                try:
                    chunks = by_partition(consumer.poll(timeout_ms=int(poll_timeout * 1000)))
                except kafka.errors.KafkaError:  # reconnect, and go on from where it was
                    time.sleep(poll_timeout)
                    consumer.close()
                    consumer = connect()
                    continue
                if not chunks:
                    if idle_timeout is not None and time.monotonic() - last_seen > idle_timeout:
                        return
                    continue
                last_seen = time.monotonic()
                for tp, records in chunks:
                    positions[tp] = max(positions[tp], int(records.offsets[-1]) + 1)
                for part in split(chunks, batch):
                    frame, bad = _decode(part)
                    if bad.height:
                        self._quarantine = pl.concat([self._quarantine, bad])
                        _warn_quarantine(bad.height, self.topic)
                    if keep is not None:
                        frame = frame.filter(keep)
                    if frame.height:
                        yield frame
        finally:
            consumer.close()

    # -- writing -----------------------------------------------------------------------

    def append(
        self,
        frame: pl.DataFrame,
        *,
        layout: codec.Layout = "flat",
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
        than a millisecond included: the JSON holds epoch milliseconds).
        """
        if layout not in codec.LAYOUTS:
            raise SourceError(f"`layout` must be 'flat' or 'nested', got {layout!r}.")
        frame = for_writing(frame, milliseconds="Concursus JSON")
        if frame.height == 0:
            return 0
        missing = frame["processing_id"].is_null()
        if missing.any():
            stamped = time_uuids(frame["processing_timestamp"])
            frame = frame.with_columns(
                pl.when(missing)
                .then(stamped)
                .otherwise(pl.col("processing_id"))
                .alias("processing_id")
            )
        by_id = processing_time(frame["processing_id"]).is_not_null()
        record_times = (
            pl.when(by_id).then(None).otherwise(pl.col("processing_timestamp").dt.epoch("ms"))
        )
        times = frame.select(record_times).to_series().to_list()
        values = codec.encode(frame, layout).to_list()
        keys = frame["aggregate_id"].cast(pl.Binary).to_list()
        return self._produce(keys, values, times, progress)

    def _produce(
        self,
        keys: list[bytes],
        values: list[bytes],
        times: list[int | None],
        progress: bool | None,
    ) -> int:
        kafka = _kafka()
        try:
            producer = kafka.KafkaProducer(
                **{
                    "enable_idempotence": True,
                    "acks": "all",
                    "linger_ms": 20,
                    "batch_size": 512 * 1024,
                    "allow_auto_create_topics": False,
                    **self._client_settings(kafka.KafkaProducer),
                }
            )
        except kafka.errors.KafkaError as exc:
            raise self._unreachable(exc) from exc
        failures: list[BaseException] = []
        bar = progress_bar(progress, total=len(values), what="writing", unit="events")
        written = 0
        try:
            send = producer.send
            for key, value, at in zip(keys, values, times, strict=True):
                send(self.topic, value=value, key=key, timestamp_ms=at).add_errback(failures.append)
                written += 1
                if written % 10_000 == 0 and bar is not None:
                    bar.update(10_000)
            producer.flush(timeout=max(self._timeout, 30.0))
        except kafka.errors.KafkaError as exc:
            failures.append(exc)
        finally:
            if bar is not None:
                bar.update(written - bar.n)
                bar.close()
            producer.close(timeout=5)
        if failures:
            raise SourceUnavailable(
                f"{len(failures):,} of {len(values):,} events were not written to "
                f"{self.topic!r} ({type(failures[0]).__name__}: {failures[0]}). Appending "
                "the same frame again is safe: reads keep the last delivery of each identity."
            )
        return len(values)

    # -- describing --------------------------------------------------------------------

    def __repr__(self) -> str:
        return f"KafkaSource({self.url!r}: topic {self.topic!r}, {self.partitions} partitions)"


# -- the bounded read ----------------------------------------------------------------------


class _Scan:
    """One bounded read of every partition: positions, decoded frames, bad records."""

    def __init__(
        self,
        source: KafkaSource,
        since: dt.datetime | None,
        keep: pl.Expr | None,
        progress: bool | None,
    ):
        self.source = source
        self.since = since
        self.keep = keep
        self.progress = progress
        self.frames: list[pl.DataFrame] = []
        self.bad: list[pl.DataFrame] = []
        self.pending: list[tuple[Any, Records]] = []
        self.pending_count = 0
        self.partitions: dict[Any, _Partition] = {}
        self.missing = False
        self.stopped_by = ""

    def run(self) -> None:
        kafka = _kafka()
        consumer = self.source._consumer()
        bar = None
        try:
            tps = self.source._topic_partitions(consumer)
            ends = consumer.end_offsets(tps)
            starts = _start_offsets(consumer, tps, self.since, from_end=False)
            self.partitions = {tp: _Partition(min(starts[tp], ends[tp]), ends[tp]) for tp in tps}
            todo = [tp for tp, p in self.partitions.items() if not p.done]
            total = sum(p.end - p.start for p in self.partitions.values())
            bar = progress_bar(self.progress, total=total, what=self.source.topic, unit="records")
            consumer = self._assign(consumer, todo)
            last_progress = time.monotonic()
            while todo:
                try:
                    polled = consumer.poll(timeout_ms=_POLL_MS)
                    chunks = by_partition(polled)
                    moved = self._take(chunks, consumer, todo, bar)
                except (kafka.errors.KafkaError, OSError) as exc:
                    self.stopped_by = f"{type(exc).__name__}: {exc}"
                    if time.monotonic() - last_progress > self.source._timeout:
                        self.missing = True
                        return
                    time.sleep(1.0)
                    with contextlib.suppress(Exception):
                        consumer.close()
                    try:
                        consumer = self._assign(self.source._consumer(), todo)
                    except SourceUnavailable as again:
                        self.stopped_by = str(again)
                    continue
                if moved:
                    last_progress = time.monotonic()
                elif time.monotonic() - last_progress > self.source._timeout:
                    waited = f"nothing arrived for {self.source._timeout:g} s"
                    self.stopped_by = f"{self.stopped_by}; {waited}" if self.stopped_by else waited
                    self.missing = True
                    return
                if self.pending_count >= _DECODE_BATCH:
                    self._decode()
                todo = [tp for tp in todo if not self.partitions[tp].done]
        except KeyboardInterrupt:
            self.stopped_by = "interrupted"
            self.missing = True
        finally:
            with contextlib.suppress(Exception):
                consumer.close()
            if bar is not None:
                bar.close()
            self._decode()

    def _assign(self, consumer: Any, todo: list[Any]) -> Any:
        if not todo:
            return consumer
        consumer.assign(todo)
        for tp in todo:
            consumer.seek(tp, self.partitions[tp].position)
        return consumer

    def _take(
        self, chunks: list[tuple[Any, Records]], consumer: Any, todo: list[Any], bar: Any
    ) -> bool:
        """Keep what lies before each partition's end; True when any position moved.

        Positions come from the consumer, not from the last record seen: transaction
        markers and compacted gaps take offsets but give no records.
        """
        for tp, records in chunks:
            part = self.partitions.get(tp)
            if part is None or part.done:
                continue
            if len(records) and records.offsets[-1] >= part.end:
                records = head(records, int(np.searchsorted(records.offsets, part.end)))
            if len(records):
                self.pending.append((tp, records))
                self.pending_count += len(records)
        moved = False
        for tp in todo:
            part = self.partitions[tp]
            at = consumer.position(tp, timeout_ms=1000)
            if at is not None and min(at, part.end) > part.position:
                if bar is not None:
                    bar.update(min(at, part.end) - part.position)
                part.position = min(at, part.end)
                moved = True
            if part.done:
                consumer.pause(tp)
        return moved

    def _decode(self) -> None:
        if not self.pending:
            return
        frame, bad = _decode(self.pending)
        self.pending, self.pending_count = [], 0
        if self.keep is not None:
            frame = frame.filter(self.keep)
        self.frames.append(frame)
        if bad.height:
            self.bad.append(bad)

    def frame(self) -> pl.DataFrame:
        if not self.frames:
            return pl.DataFrame(schema=FRAME_SCHEMA)
        return pl.concat(self.frames).sort("kafka_partition", "kafka_offset", maintain_order=True)

    def quarantine(self) -> pl.DataFrame:
        if not self.bad:
            return pl.DataFrame(schema=QUARANTINE_SCHEMA)
        return pl.concat(self.bad).sort("kafka_partition", "kafka_offset")

    def incomplete_message(self) -> str:
        unread = {tp.partition: p for tp, p in self.partitions.items() if p.position < p.end}
        left = sum(p.end - p.position for p in unread.values())
        read = sum(p.position - p.start for p in self.partitions.values())
        detail = "; ".join(
            f"partition {n}: offsets {p.position}..{p.end - 1} unread"
            for n, p in sorted(unread.items())
        )
        return (
            f"the read of {self.source.topic!r} stopped before its end "
            f"({self.stopped_by}): {read:,} records read, {left:,} not ({detail}). "
            "`.partial` holds the events read; read again to get the rest."
        )


def _decode(chunks: list[tuple[Any, Records]]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Decode records of several partitions at once: events with Kafka columns, bad records."""
    values: list[bytes | None] = []
    for _, records in chunks:
        values.extend(records.values)
    sizes = [len(r) for _, r in chunks]
    partitions = np.repeat(np.array([tp.partition for tp, _ in chunks], dtype=np.int32), sizes)
    offsets = np.concatenate([r.offsets for _, r in chunks])
    timestamps = np.concatenate([r.timestamps for _, r in chunks])
    rows, bad = codec.decode(values, timestamps)
    record = rows["record"].to_numpy()
    frame = rows.drop("record").with_columns(
        pl.Series("kafka_partition", partitions[record], dtype=pl.Int32),
        pl.Series("kafka_offset", offsets[record], dtype=pl.Int64),
        _record_time(timestamps[record]),
    )
    quarantine = pl.DataFrame(schema=QUARANTINE_SCHEMA)
    if bad.height:
        which = bad["record"].to_numpy()
        quarantine = pl.DataFrame(
            [
                pl.Series("kafka_partition", partitions[which], dtype=pl.Int32),
                pl.Series("kafka_offset", offsets[which], dtype=pl.Int64),
                _record_time(timestamps[which]),
                pl.Series("raw", [values[i] for i in which.tolist()], dtype=pl.Binary),
                bad["reason"],
            ]
        )
    return frame, quarantine


def _record_time(millis: np.ndarray) -> pl.Series:
    return (
        pl.from_epoch(pl.Series("kafka_timestamp", millis, dtype=pl.Int64), time_unit="ms")
        .dt.replace_time_zone("UTC")
        .dt.cast_time_unit("us")
    )


def _start_offsets(
    consumer: Any, tps: list[Any], since: dt.datetime | None, *, from_end: bool
) -> dict[Any, int]:
    """Where to start reading each partition: its beginning or end, or where ``since``
    begins (less :data:`SEEK_SLACK`); a partition with nothing that late starts at its end."""
    ends = consumer.end_offsets(tps)
    if since is None:
        return dict(ends) if from_end else dict(consumer.beginning_offsets(tps))
    target = max(0, int((since - SEEK_SLACK).timestamp() * 1000))
    found = consumer.offsets_for_times({tp: target for tp in tps})
    return {tp: ends[tp] if found.get(tp) is None else found[tp].offset for tp in tps}


def _row_filter(query: Query, since: dt.datetime | None) -> pl.Expr | None:
    parts = [p for p in (query.predicate(),) if p is not None]
    if since is not None:
        parts.append(pl.col("processing_timestamp") >= since)
    if not parts:
        return None
    return pl.all_horizontal(parts)


def _warn_quarantine(count: int, topic: str) -> None:
    if count:
        warnings.warn(
            f"{count:,} record(s) of Kafka topic {topic!r} could not be decoded and were "
            "left out; see `source.quarantine` for each one's partition, offset, bytes "
            "and reason.",
            stacklevel=3,
        )


def _partition_count(admin: Any, topic: str) -> int | None:
    """How many partitions ``topic`` has; None when it does not exist."""
    kafka = _kafka()
    for described in admin.describe_topics([topic]):
        if described.get("name") != topic:
            continue
        error = kafka.errors.for_code(described.get("error_code", 0))
        if error is kafka.errors.UnknownTopicOrPartitionError:
            return None
        if error is not kafka.errors.NoError:
            raise error(f"describing topic {topic!r}")
        return len(described.get("partitions") or []) or None
    return None
