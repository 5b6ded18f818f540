"""Where a follow stopped: the positions a live fold has read up to, to go on from.

A Kafka topic's records carry ``kafka_partition`` and ``kafka_offset``; :class:`Offsets`
keeps, per partition, the offset of the next record to read. A follow started again from
them (``KafkaSource.follow(offsets=...)``) reads every record after those it has, once.
(A RabbitMQ exchange keeps nothing to go back to: its ``stream_offset`` counts what one
follow received, and is not kept.)

>>> import polars as pl
>>> Offsets().after(pl.DataFrame({"kafka_partition": [0, 1, 0], "kafka_offset": [4, 9, 5]}))
Offsets(kafka={0: 6, 1: 10})
"""

from __future__ import annotations

import dataclasses

import polars as pl


@dataclasses.dataclass(frozen=True)
class Offsets:
    """The next record to read, per Kafka partition (empty: no record of a topic read)."""

    kafka: dict[int, int] = dataclasses.field(default_factory=dict)

    def after(self, frame: pl.DataFrame) -> Offsets:
        """These offsets moved past the records of ``frame`` (a batch just read)."""
        if not ({"kafka_partition", "kafka_offset"} <= set(frame.columns) and frame.height):
            return self
        kafka = dict(self.kafka)
        ends = frame.group_by("kafka_partition").agg(pl.col("kafka_offset").max())
        for partition, offset in ends.rows():
            kafka[int(partition)] = max(kafka.get(int(partition), 0), int(offset) + 1)
        return Offsets(dict(sorted(kafka.items())))
