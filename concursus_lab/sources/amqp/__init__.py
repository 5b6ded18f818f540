"""RabbitMQ: a topic exchange Concursus publishes to, followed, captured, or read as a stream."""
