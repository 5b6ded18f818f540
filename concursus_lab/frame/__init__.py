"""The canonical event frame, and the rules that define a replay.

The public part (``cl.frame``): the frame's :data:`SCHEMA`, an event's identity
(:data:`IDENTITY`, Concursus's, and :func:`identity_of`, a frame's, which names a
``sequence`` or an ``event_id`` when it has one; :func:`content_ids`), :func:`validate`,
:func:`empty`, the pandas bridges, and the time-based UUIDs that stamp processing time
(:func:`time_uuids`, :func:`processing_time`). The most used of them are also at the top,
``cl.SCHEMA`` and so on. :func:`schemas` says which shapes a history's events had per
version, and where they drifted.

The rules every replay shares live here once, each stated in its module's docstring:
``identity.py`` (an event's identity, and which delivery counts; ``conflicts.py``: repeats
that do not say the same thing), ``order.py`` (causal order), ``cut.py`` (the two-axis
cut: before ``at``, known at ``known_at``) and ``creation.py`` (which events create a
state); ``keys.py`` makes the integers they sort by, ``jhash.py`` is Java's
``String.hashCode`` for Concursus's catalogue buckets.

>>> import concursus_lab as cl
>>> cl.frame.IDENTITY
('aggregate_type', 'aggregate_id', 'event_timestamp', 'stream_id')
>>> cl.frame.identity_of(["aggregate_type", "aggregate_id", "event_id"])
('aggregate_type', 'aggregate_id', 'event_id')
"""

from concursus_lab.frame.identity import IDENTITY, content_ids, identity_of
from concursus_lab.frame.schema import SCHEMA, empty, from_pandas, to_pandas, validate
from concursus_lab.frame.schemas import Schemas, schemas
from concursus_lab.frame.timeuuid import processing_time, time_uuids

__all__ = [
    "IDENTITY",
    "SCHEMA",
    "Schemas",
    "content_ids",
    "empty",
    "from_pandas",
    "identity_of",
    "processing_time",
    "schemas",
    "time_uuids",
    "to_pandas",
    "validate",
]
