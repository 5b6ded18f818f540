"""Kafka records stamped with their event time, as some producers do, for the ``since=`` tests.

Such a producer writes each event when it processes it, but gives the record the time the
event happened, so a late event's record time runs behind its processing time.
"""

from __future__ import annotations

import datetime as dt

import polars as pl


def produce_stamped_with_event_time(address: str, topic: str, events: pl.DataFrame) -> None:
    """Write ``events`` in processing order, keyed by aggregate id, record time = event time."""
    from kafka import KafkaProducer

    from concursus_lab.sources.concursus_json_write import encode

    ordered = events.sort("processing_timestamp")
    producer = KafkaProducer(bootstrap_servers=address)
    try:
        for key, value, at in zip(
            ordered["aggregate_id"].cast(pl.Binary).to_list(),
            encode(ordered, "flat").to_list(),
            ordered["event_timestamp"].dt.epoch("ms").to_list(),
            strict=True,
        ):
            producer.send(topic, key=key, value=value, timestamp_ms=at)
        producer.flush()
    finally:
        producer.close()


def late_since(events: pl.DataFrame) -> dt.datetime:
    """A ``since`` that a seek by record time passes: the processing time of an event processed
    more than ten minutes after it happened, after ten quiet minutes (so no record just before
    it carries a record time near ``since``)."""
    ordered = events.sort("processing_timestamp")
    quiet = ordered["processing_timestamp"].diff() > dt.timedelta(minutes=10)
    late = ordered["processing_timestamp"] - ordered["event_timestamp"] > dt.timedelta(minutes=10)
    found = ordered.filter(quiet & late)["processing_timestamp"]
    assert found.len() > 0, "no late event after a quiet spell: pick another sample"
    return found[found.len() // 2]
