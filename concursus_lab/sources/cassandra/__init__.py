"""Concursus's Cassandra tables: connecting, paging token ranges, the row codec."""
