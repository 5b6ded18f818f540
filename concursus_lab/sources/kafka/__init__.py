"""Kafka topics of Concursus JSON events: records, the codec, the source."""
