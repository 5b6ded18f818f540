"""``state_at`` on Spark: every aggregate's state, folded by ``cl.state_at`` in each bucket.

The question and its rules are :func:`concursus_lab.state_at`'s (both time axes, which
delivery counts, causal order, the creation rules, undecodable rows counted and returned):
each bucket of whole aggregates (:mod:`concursus_lab.spark.buckets`) is answered by
``cl.state_at`` itself, in a Python worker, and the counts are added up; conflicting
deliveries are counted (``counts["conflicting"]``) and warned about here, as locally.

For example::

    import concursus_lab.spark as cls
    from concursus_lab.sample import parcel_state, parcel_types
    events = cls.read("cassandra://127.0.0.1:9042/concursus").frame
    states = cls.state_at(events, parcel_state, types=parcel_types,
                          at="2026-03-09", known_at="2026-03-09")
    states.to_polars()  # the frame cl.state_at(...).frame gives
"""

from __future__ import annotations

from typing import Any

from concursus_lab.common.time import TimeLike
from concursus_lab.events.decoded import commonest
from concursus_lab.events.types import EventTypes, as_event_types
from concursus_lab.frame import conflicts
from concursus_lab.frame.cut import bounds
from concursus_lab.frame.identity import check_duplicates
from concursus_lab.frame.schema import empty
from concursus_lab.spark import buckets as _buckets
from concursus_lab.spark.result import SparkFrame, SparkStateAt
from concursus_lab.timetravel.reducer import Reducer, check_reducer
from concursus_lab.timetravel.state_at import fold_states as local_state_at
from concursus_lab.timetravel.state_at import no_events_of_type, warn_undecodable


def state_at(
    events: Any,
    reducer: Reducer,
    *,
    types: EventTypes,
    at: TimeLike | None = None,
    known_at: TimeLike | None = None,
    duplicates: str = "last",
    strict: bool = False,
    buckets: int | None = None,
) -> SparkStateAt:
    """The state of every aggregate at event time ``at``, as known at ``known_at``, on Spark.

    Parameters
    ----------
    events
        A Spark DataFrame in the canonical schema (:func:`~concursus_lab.spark.read`'s
        ``.frame``, or :func:`~concursus_lab.spark.from_polars`); Kafka columns may follow.
    reducer, types, at, known_at, duplicates, strict
        As for :func:`concursus_lab.state_at`. The reducer runs in Spark's Python workers:
        it must pickle (cloudpickle takes functions of a notebook), and whatever it does
        besides returning a state happens there.
    buckets
        How many hash buckets of whole aggregates (default: the input's partitions, at
        least two per core); each must fit one worker's memory.

    Returns
    -------
    SparkStateAt
        ``.frame`` (a Spark DataFrame, one row per aggregate with a state), ``.to_polars()``
        (exactly ``cl.state_at(...).frame``), ``.counts``, ``.undecodable``.
    """
    types = as_event_types(types)
    check_reducer(reducer)
    check_duplicates(duplicates)
    at, known_at = bounds(at, known_at)

    def answer(frame):
        result = local_state_at(
            frame,
            reducer,
            types=types,
            at=at,
            known_at=known_at,
            duplicates=duplicates,
            strict=strict,
        )
        answers = {"states": result.frame, "undecodable": result.undecodable}
        reasons = dict(result.undecodable.group_by("reason").len().iter_rows())
        return answers, {"counts": result.counts, "reasons": reasons}

    nothing = local_state_at(empty(), reducer, types=types, at=at, known_at=known_at)
    kept = _buckets.run(
        events,
        answer,
        empty={"states": nothing.frame, "undecodable": nothing.undecodable},
        buckets=buckets,
        one_kind=("states",),
    )
    counts = {**dict.fromkeys(nothing.counts, 0), **kept.total("counts")}
    if counts["read"] == 0 and counts["other_aggregate_types"]:  # a bucket may have none
        others = f"{counts['other_aggregate_types']:,} rows of other aggregate types"
        raise no_events_of_type(types.aggregate_type, others)
    conflicts.report(kept.conflicts)  # on the driver, pointing at the caller's line
    # the workers' warnings never reach this process: said here, once, as locally
    warn_undecodable(types.aggregate_type, counts["undecodable"], commonest(kept.total("reasons")))
    undecodable = SparkFrame(
        kept.frame("undecodable"),
        lambda: kept.polars("undecodable").sort("aggregate_id", "event_timestamp"),
        "undecodable rows",
    )
    answer = SparkStateAt(
        kept.frame("states"),
        lambda: kept.polars("states").sort("aggregate_id"),
        f"{types.aggregate_type} states",
        types.aggregate_type,
        at,
        known_at,
        counts,
        undecodable,
    )
    return kept.kept_for(answer)
