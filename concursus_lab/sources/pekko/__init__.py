"""Pekko and Akka Persistence journals in Cassandra, read as event histories (docs/pekko.md).

``source`` (:class:`.source.PekkoSource`, ``pekko+cassandra://`` and ``akka+cassandra://``)
uses: ``reading`` (the CQL a read runs: token ranges, or an entity's partitions), ``collect``
(pages into journal frames), ``rows`` (raw cells of ``messages`` into the journal frame),
``payloads`` with ``cbor`` (each event's bytes by serializer id), ``names`` (persistence ids
and manifests) and ``journal`` (the built-in mapping from the journal frame to events, and
the quarantine).
"""
