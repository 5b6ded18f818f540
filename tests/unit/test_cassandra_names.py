"""Issue 15, item 9: Cassandra names are checked with Cassandra's own rule before any CQL."""

from __future__ import annotations

import pytest

from concursus_lab.exceptions import SourceError
from concursus_lab.sources.cassandra import tables
from concursus_lab.sources.cassandra.connect import parse_url


@pytest.mark.parametrize(
    "keyspace, stored", [("concursus", "concursus"), ("Parcels_2026", "parcels_2026")]
)
def test_valid_keyspaces_are_folded_as_cql_folds_unquoted_names(keyspace, stored):
    assert parse_url(f"cassandra://127.0.0.1/{keyspace}").keyspace == stored


@pytest.mark.parametrize(
    "keyspace, why",
    [
        ("1abc", "an ASCII letter, then letters"),  # a leading digit
        ("été", "an ASCII letter, then letters"),  # isalnum() said yes
        ("parcels-2026", "an ASCII letter, then letters"),
        ("a" * 49, "at most 48"),
        ("select", "a reserved word in CQL"),
        ("KEYSPACE", "a reserved word in CQL"),
    ],
)
def test_keyspaces_cassandra_would_refuse_are_refused_before_any_cql(keyspace, why):
    with pytest.raises(SourceError, match=why):
        parse_url(f"cassandra://127.0.0.1/{keyspace}")


class Recording:
    """A session that keeps the CQL it is given (what create() writes, not what it means)."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def execute(self, statement: str) -> None:
        self.statements.append(statement)


def test_replication_map_keys_and_values_are_quoted_as_cql_literals():
    session = Recording()
    tables.create(session, "concursus", {"class": "NetworkTopologyStrategy", "dc'1": 3})
    assert session.statements[0] == (
        "CREATE KEYSPACE IF NOT EXISTS concursus WITH replication = "
        "{'class': 'NetworkTopologyStrategy', 'dc''1': 3}"
    )
