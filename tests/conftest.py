"""Shared fixtures: the real local services, started once per test run."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

# No time limit per example: a timed assertion is a benchmark's job (bench/), and on a loaded
# two-core machine hypothesis's default 200 ms deadline failed tests that take 11 ms when quiet.
settings.register_profile("concursus-lab", deadline=None)
settings.load_profile("concursus-lab")


def _service(name: str, port: int) -> str:
    """Start ``name`` unless it already answers; fail (never skip) with how to start it."""
    try:
        from concursus_lab import services
    except ImportError as exc:  # pragma: no cover - the package is broken
        pytest.fail(f"concursus_lab.services cannot be imported: {exc}")
    try:
        services.ensure(name)
    except Exception as exc:
        pytest.fail(
            f"{name} is not running on 127.0.0.1:{port} and could not be started: {exc}\n"
            f"Start it by hand with `concursus-lab services start {name}` and see "
            f"`concursus-lab services logs {name}`."
        )
    return f"127.0.0.1:{port}"


@pytest.fixture(scope="session")
def cassandra_address() -> str:
    """host:port of a real Cassandra, started for this run when it was not running."""
    return _service("cassandra", int(os.environ.get("CONCURSUS_LAB_CASSANDRA_PORT", "9042")))


@pytest.fixture(scope="session")
def kafka_address() -> str:
    """host:port of a real Kafka broker, started for this run when it was not running."""
    return _service("kafka", int(os.environ.get("CONCURSUS_LAB_KAFKA_PORT", "9092")))


@pytest.fixture(scope="session")
def redis_address() -> str:
    """host:port of a real Redis, started for this run when it was not running."""
    return _service("redis", int(os.environ.get("CONCURSUS_LAB_REDIS_PORT", "6379")))


@pytest.fixture(scope="session")
def rabbitmq_address() -> str:
    """host:port of a real RabbitMQ, started for this run when it was not running."""
    return _service("rabbitmq", int(os.environ.get("CONCURSUS_LAB_RABBITMQ_PORT", "5672")))


@pytest.fixture(scope="session")
def hazelcast_address() -> str:
    """host:port of a real Hazelcast member, started for this run when it was not running."""
    return _service("hazelcast", int(os.environ.get("CONCURSUS_LAB_HAZELCAST_PORT", "5701")))


@pytest.fixture(scope="session")
def registry_url() -> str:
    """The Confluent API of a real schema registry (Apicurio), started when it was not running."""
    address = _service("registry", int(os.environ.get("CONCURSUS_LAB_REGISTRY_PORT", "8081")))
    return f"http://{address}/apis/ccompat/v7"
