"""The source contract, run on journals written in Pekko's layout (``pekko+cassandra://``).

A journal is read-only: the contract's histories are written beside it, row by row as the
plugin writes them, by :func:`concursus_lab.testing.journals.write_journal` (the parameters in
the event's field ``body``, the event time in its field ``at``), and read back through the
source. Two deliveries of one event share a sequence number, as a journal written twice for
one event (two writers after a split brain) holds them.
"""

from __future__ import annotations

import uuid

import polars as pl
import pytest

import concursus_lab as cl
from concursus_lab.testing.contract import SourceContract
from concursus_lab.testing.journals import create_journal, journal_rows, write_journal

pytestmark = pytest.mark.cassandra


@pytest.fixture(scope="module")
def session(cassandra_address):
    from cassandra.cluster import Cluster

    host, port = cassandra_address.split(":")
    cluster = Cluster([host], port=int(port), protocol_version=5)
    yield cluster.connect()
    cluster.shutdown()


@pytest.fixture
def keyspace(session):
    name = f"cl_pj_{uuid.uuid4().hex[:12]}"
    create_journal(session, name)
    yield name
    session.execute(f"DROP KEYSPACE IF EXISTS {name}", timeout=120)


class TestPekkoJournalContract(SourceContract):
    writable = False

    @pytest.fixture
    def source_of(self, session, keyspace, cassandra_address):
        opened = []

        def holding(*frames: pl.DataFrame):
            if frames:  # numbered together: a later delivery of an event keeps its number
                write_journal(session, keyspace, pl.concat(frames), nest="body")
            source = cl.open(
                f"pekko+cassandra://{cassandra_address}/{keyspace}",
                event_time="at",
                parameters="body",
                stream_id="stream",
                terminal=["delivered"],
            )
            opened.append(source)
            return source

        yield holding
        for source in opened:
            source.close()


def test_journal_rows_are_the_plugins_layout():
    events = cl.sample.fixture("messy").head(6)
    rows = journal_rows(events, partition_size=2)
    first = rows.row(0, named=True)
    assert first["persistence_id"] == f"{events['aggregate_type'][0]}|{events['aggregate_id'][0]}"
    assert first["ser_manifest"].startswith("lab.events.")
    assert rows["partition_nr"].to_list() == ((rows["sequence_nr"] - 1) // 2).to_list()
