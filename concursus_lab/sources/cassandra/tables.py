"""Concursus's two tables in CQL: making the keyspace and tables, and checking they are there.

``EVENT_TABLE`` and ``CATALOGUE_TABLE`` are Java Concursus's own CQL, word for word but for
the keyspace, so a keyspace made here is one Java Concursus reads and writes.
"""

from __future__ import annotations

from typing import Any

from concursus_lab.exceptions import SourceError, SourceUnavailable
from concursus_lab.sources.cassandra.codec import CQL_COLUMNS

#: Concursus's own CQL, word for word but for the keyspace.
EVENT_TABLE = """CREATE TABLE IF NOT EXISTS {keyspace}.Event (
  aggregateType text, aggregateId text, eventTimestamp timestamp, streamId text,
  processingId timeuuid, name text, version text, parameters map<text, text>,
  characteristics int,
  PRIMARY KEY((aggregateType, aggregateId), eventTimestamp, streamId)
) WITH CLUSTERING ORDER BY (eventTimestamp DESC);"""
CATALOGUE_TABLE = """CREATE TABLE IF NOT EXISTS {keyspace}.Catalogue (
  aggregateType text, bucket int, aggregateId text,
  PRIMARY KEY ((aggregateType, bucket), aggregateId)
) WITH CLUSTERING ORDER BY (aggregateId DESC);"""


def create(session: Any, keyspace: str, replication: dict | None) -> None:
    """Make ``keyspace`` (when missing, with ``replication``) and both tables (when missing)."""
    replication = replication or {"class": "SimpleStrategy", "replication_factor": 1}
    if not isinstance(replication, dict) or "class" not in replication:
        raise SourceError(
            "`replication` must be a replication map such as "
            "{'class': 'NetworkTopologyStrategy', 'dc1': 3}, got " + repr(replication)
        )
    body = ", ".join(f"{_cql_literal(str(k))}: {_cql_literal(v)}" for k, v in replication.items())
    session.execute(f"CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = {{{body}}}")
    session.execute(EVENT_TABLE.format(keyspace=keyspace))
    session.execute(CATALOGUE_TABLE.format(keyspace=keyspace))


def check(metadata: Any, keyspace: str, url: str) -> None:
    """Raise, saying how to make them, unless ``keyspace`` holds Concursus's tables."""
    found = metadata.keyspaces.get(keyspace)
    if found is None:
        raise SourceUnavailable(
            f"keyspace {keyspace!r} does not exist at {url}. Make it and "
            f"Concursus's tables with cl.open({url!r}, create=True)."
        )
    for table in ("event", "catalogue"):
        if table not in found.tables:
            raise SourceUnavailable(
                f"table {keyspace}.{table} does not exist at {url}. Make "
                f"Concursus's tables with cl.open({url!r}, create=True)."
            )
    columns = set(found.tables["event"].columns)
    missing = [c for c in CQL_COLUMNS if c.lower() not in columns]
    if missing:
        raise SourceError(
            f"{keyspace}.event is not Concursus's Event table: it has no column "
            f"{', '.join(missing)}. Expected:\n{EVENT_TABLE.format(keyspace=keyspace)}"
        )


def _cql_literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"
