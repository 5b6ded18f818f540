"""``latest`` of a history larger than memory: a hash bucket of whole aggregates at a time.

Each aggregate's row depends on that aggregate's events only, so each bucket
(:mod:`~concursus_lab.timetravel.buckets`) is answered by :func:`~concursus_lab.timetravel.
latest.latest_frame` itself and the rows are put together. A column's dtype follows the kinds
of the values it shows over *all* buckets (:mod:`~concursus_lab.timetravel.parameter_values`):
each bucket says which kinds it showed, and when one bucket's integers meet another's strings,
say, the buckets are read again for that parameter's JSON texts, as one frame of all the events
would show it. A parameter seen in only some buckets is null in the others, as it is for the
aggregates that never had it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import polars as pl

from concursus_lab.frame import conflicts
from concursus_lab.frame.keys import string_order
from concursus_lab.timetravel.buckets import each_bucket, put_together
from concursus_lab.timetravel.parameter_values import mixed_kinds, typed_nulls

#: ``latest``'s first columns; one column per parameter follows, in alphabetical order.
FIXED = ("aggregate_type", "aggregate_id", "last_event", "last_event_timestamp", "events")


#: One bucket's answer: its rows (``as_text``: these parameters as JSON texts) and kinds.
Answer = Callable[[pl.DataFrame, frozenset[str]], tuple[pl.DataFrame, dict[str, list[int]]]]


def latest_in_buckets(
    events: Any, buckets: int | None, answer: Answer, *, progress: bool | None
) -> pl.DataFrame:
    """:func:`~concursus_lab.timetravel.latest.latest` of ``events`` (a lazy frame, a local
    store, or a frame with ``buckets``), one bucket of whole aggregates at a time: ``answer``
    is :func:`~concursus_lab.timetravel.latest.latest_frame` with the question's bounds."""

    def answers(as_text: frozenset[str]) -> list[tuple[pl.DataFrame, dict[str, list[int]]]]:
        with conflicts.one_warning(disjoint=True):
            parts = each_bucket(
                events,
                buckets,
                lambda rows: answer(rows, as_text),
                progress=progress,
                what="latest",
            )
            return list(parts)

    parts = answers(frozenset())
    again = mixed_kinds([kinds for _, kinds in parts])
    if again:  # kinds differ between buckets: those parameters as JSON texts everywhere
        parts = answers(again)
    frames = [part for part, _ in parts]
    del parts  # the rows live on in `frames` alone, and are copied once, in order

    def in_order(names: Sequence[str]) -> list[str]:
        return [*FIXED, *sorted(c for c in names if c not in FIXED)]

    frame, _ = put_together(
        frames, lambda f: string_order(f["aggregate_type"], f["aggregate_id"]), in_order
    )
    return typed_nulls(frame)
