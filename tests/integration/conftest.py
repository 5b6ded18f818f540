"""Fixtures the integration modules share; servers come from tests/conftest.py."""

from __future__ import annotations

import uuid

import pytest


@pytest.fixture
def topic(kafka_address):
    """A fresh topic name; the topic is deleted afterwards (by a new admin client, since
    a test may have restarted the broker)."""
    from kafka import KafkaAdminClient

    name = f"cl-test-{uuid.uuid4().hex[:12]}"
    yield name
    admin = KafkaAdminClient(bootstrap_servers=kafka_address)
    try:
        if name in admin.list_topics():
            admin.delete_topics([name])
    finally:
        admin.close()
