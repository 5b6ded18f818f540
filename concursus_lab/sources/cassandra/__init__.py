"""Concursus's tables in Apache Cassandra, as a source (:class:`.source.CassandraSource`).

``source`` (the source itself) uses: ``connect`` (URL, credentials, TLS, the session),
``raw_cells`` (cells as the bytes sent: the one use of the driver's private API),
``tables`` (Concursus's CQL), ``queries`` (the SELECTs a read runs), ``paging`` (running
them page by page, with retries), ``reader`` (pages into a frame), ``codec`` with
``columns`` and ``parameters`` (raw rows into a canonical frame), ``write_times`` (rows with
no processingId) and ``writing`` (what an append writes).
"""
