"""Kafka topics of Concursus JSON events: records, reading, writing, the source (the JSON
itself is :mod:`concursus_lab.sources.concursus_json`, shared with Redis and RabbitMQ)."""
