"""A live Hazelcast idempotency filter (Concursus's event window): window, keys, Java's stream."""
