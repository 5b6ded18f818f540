"""Reaching a Kafka cluster: the client package, settings, clients, topics, and the errors.

Everything that talks to the cluster goes through a :class:`Cluster`: it makes kafka-python's
admin clients, consumers and producers with one set of settings (security ones from
``CONCURSUS_LAB_KAFKA_*`` environment variables, see :func:`env_settings`) and turns a failed
call into :class:`~concursus_lab.exceptions.SourceUnavailable` (unreachable, worth retrying)
or :class:`~concursus_lab.exceptions.SourceError` (refused).
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from concursus_lab.common.optional import require
from concursus_lab.exceptions import (
    ConcursusLabError,
    SourceError,
    SourceUnavailable,
)

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
_FETCH_BYTES = 64 * 1024 * 1024  # most bytes one fetch brings, all partitions together
_PARTITION_FETCH_BYTES = 16 * 1024 * 1024
_BATCH_BYTES = 512 * 1024  # most bytes the producer puts in one batch


@functools.cache
def kafka_python() -> Any:
    """The kafka-python package, or an error that says how to install it."""
    # crc32c: without it record checks cap reads near 50k records/s
    kafka = require("kafka", "crc32c", needed_by="Kafka sources", extra="kafka")
    # kafka-python logs every reconnection attempt; with no logging set up, Python would
    # print them all. What matters reaches the user as an exception; who configures
    # logging still sees everything.
    logging.getLogger("kafka").addHandler(logging.NullHandler())
    # ... but never the secrets: kafka-python's admin client logs its whole configuration
    # at DEBUG when it starts, passwords included. Only those values are masked.
    admin = logging.getLogger("kafka.admin.client")
    if not any(isinstance(f, _MaskSecrets) for f in admin.filters):
        admin.addFilter(_MaskSecrets())
    return kafka


class _MaskSecrets(logging.Filter):
    """Masks the value of every setting whose name holds ``password`` in a log record's
    arguments (kafka-python logs its configuration dict)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and any(isinstance(a, dict) for a in args):
            record.args = tuple(_masked(a) if isinstance(a, dict) else a for a in args)
        elif isinstance(args, dict):
            record.args = _masked(args)
        return True


def _masked(settings: dict) -> dict:
    return {
        k: "***" if "password" in str(k).lower() and v is not None else v
        for k, v in settings.items()
    }


def env_settings(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """kafka-python security settings from ``CONCURSUS_LAB_KAFKA_*`` variables.

    >>> env_settings({"CONCURSUS_LAB_KAFKA_SECURITY_PROTOCOL": "sasl_ssl"})
    {'security_protocol': 'SASL_SSL'}
    """
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


@dataclass(frozen=True)
class Cluster:
    """The cluster at ``servers``, reached with ``settings`` (kafka-python's names)."""

    servers: tuple[str, ...]
    settings: Mapping[str, Any]
    connect_timeout: float

    def client_settings(self, client: type) -> dict[str, Any]:
        """Settings for one kind of kafka-python client: each refuses settings it lacks,
        so ``client=`` options meant for another kind are left out."""
        settings = {
            "bootstrap_servers": list(self.servers),
            "client_id": "concursus-lab",
            "bootstrap_timeout_ms": int(self.connect_timeout * 1000),
            "request_timeout_ms": 30_000,
            **self.settings,
        }
        known = getattr(client, "DEFAULT_CONFIG", settings)
        return {k: v for k, v in settings.items() if k in known}

    def unreachable(self, exc: BaseException) -> ConcursusLabError:
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
    def admin(self) -> Iterator[Any]:
        """An admin client, closed on the way out; Kafka's errors become ours."""
        kafka = kafka_python()
        try:
            admin = kafka.KafkaAdminClient(**self.client_settings(kafka.KafkaAdminClient))
        except kafka.errors.KafkaError as exc:
            raise self.unreachable(exc) from exc
        try:
            yield admin
        except kafka.errors.KafkaError as exc:
            raise self.unreachable(exc) from exc
        finally:
            admin.close()

    def consumer(self, **overrides: Any) -> Any:
        """A plain consumer: no group, nothing committed, partitions assigned by hand;
        ``overrides`` (kafka-python's names) win over every other setting."""
        kafka = kafka_python()
        try:
            return kafka.KafkaConsumer(
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
                    **self.client_settings(kafka.KafkaConsumer),
                    **overrides,
                }
            )
        except kafka.errors.KafkaError as exc:
            raise self.unreachable(exc) from exc

    def producer(self, *, batch_size: int = _BATCH_BYTES) -> Any:
        """An idempotent producer that waits for every replica and creates no topics."""
        kafka = kafka_python()
        try:
            return kafka.KafkaProducer(
                **{
                    "enable_idempotence": True,
                    "acks": "all",
                    "linger_ms": 20,
                    "batch_size": batch_size,
                    "allow_auto_create_topics": False,
                    **self.client_settings(kafka.KafkaProducer),
                }
            )
        except kafka.errors.KafkaError as exc:
            raise self.unreachable(exc) from exc

    def record_limit(self, topic: str) -> int:
        """The most bytes one record batch may have on ``topic``: the topic's
        ``max.message.bytes`` (the broker refuses larger batches) or the producer's
        ``max_request_size`` (it refuses larger records before sending), whichever is less."""
        kafka = kafka_python()
        request = kafka.KafkaProducer.DEFAULT_CONFIG["max_request_size"]
        request = self.settings.get("max_request_size", request)
        resource = kafka.admin.ConfigResource(
            kafka.admin.ConfigResourceType.TOPIC, topic, configs={"max.message.bytes": None}
        )
        with self.admin() as admin:
            try:
                described = admin.describe_configs([resource], config_filter="all")
            except kafka.errors.KafkaError as exc:
                raise self.unreachable(exc) from exc
        entry = described.get("topic", {}).get(topic, {}).get("max.message.bytes") or {}
        try:
            return min(int(entry["value"]), request)
        except (KeyError, TypeError, ValueError):
            return request  # the broker did not say: the producer's own limit still holds

    def open_topic(
        self,
        topic: str,
        *,
        url: str,
        create: bool,
        partitions: int,
        replication: int,
        topic_config: Mapping[str, str] | None,
    ) -> int:
        """How many partitions ``topic`` has, creating it first when asked to."""
        with self.admin() as admin:
            count = _partition_count(admin, topic)
            if count is None and create:
                try:
                    admin.create_topics(
                        {
                            topic: {
                                "num_partitions": partitions,
                                "replication_factor": replication,
                                "configs": dict(topic_config or {}),
                            }
                        },
                        wait_for_metadata=True,
                    )
                except kafka_python().errors.TopicAlreadyExistsError:
                    pass  # made by someone else meanwhile
                count = _partition_count(admin, topic)
            if count is None:
                known = [t for t in admin.list_topics() if not t.startswith("__")]
                near = difflib.get_close_matches(topic, known, 1)
                hint = f" Did you mean {near[0]!r}?" if near else ""
                raise SourceUnavailable(
                    f"there is no topic {topic!r} on {','.join(self.servers)}.{hint} "
                    f"Pass create=True to create it ({partitions} partitions), e.g. "
                    f"cl.open({url!r}, create=True)."
                )
        return count


def _partition_count(admin: Any, topic: str) -> int | None:
    """How many partitions ``topic`` has; None when it does not exist."""
    kafka = kafka_python()
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
