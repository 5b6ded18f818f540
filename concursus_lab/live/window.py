"""Which deliveries a batch re-folds: the new ones, and the old ones only where they must.

A batch's deliveries of an aggregate usually land after everything it had (its newest
events, in order): their aggregate is folded on from its live state, and none of its old
deliveries need placing again. :func:`window` finds those aggregates from what their
:class:`~concursus_lab.live.track.Track` keeps (the latest event time and the highest causal
rank among their deliveries) and gives, for the others (a late delivery, a repeat of an
identity already folded, a frame identified by ``sequence`` or ``event_id``), every delivery
kept, as before, read from the pieces of ``kept.py`` that hold them. So a batch in time
order costs what the batch holds, not what was folded before it; a late delivery costs its
own aggregate's history and the deliveries read since that aggregate's first.

A delivery lands after all of its aggregate's when its causal rank is at least theirs and
its event time is later than all of theirs (it then repeats none of their identities,
which hold the event time).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import polars as pl

from concursus_lab.events.types import EventTypes
from concursus_lab.frame.identity import IDENTITY, identity_of
from concursus_lab.frame.order import causal_rank
from concursus_lab.live.kept import Kept
from concursus_lab.live.layout import kinds_of
from concursus_lab.live.track import Track


@dataclasses.dataclass(frozen=True)
class Window:
    """The rows a batch re-folds (``frame``: old rows of the aggregates that need them, in
    the order read, then the batch's), which of them are new, and, per aggregate id
    folded on from its live state, how many deliveries lie before its rows (``base``)."""

    frame: pl.DataFrame
    new: np.ndarray
    base: dict[str, int]


def window(kept: Kept, mine: pl.DataFrame, tracks: dict[str, Track], types: EventTypes) -> Window:
    """The :class:`Window` of ``mine`` (a batch, in the columns kept) over ``kept`` (every
    delivery folded before it) and the aggregates' ``tracks``."""
    if kept.height == 0 or not tracks:
        return Window(mine, np.ones(mine.height, dtype=bool), {})
    ranks = causal_rank(kinds_of(types, mine))
    per = (
        mine.select("aggregate_id", pl.col("event_timestamp").dt.epoch("us").alias("ts"))
        .with_columns(rank=pl.Series(ranks, dtype=pl.Int8))
        .group_by("aggregate_id")
        .agg(pl.col("ts").min(), pl.col("rank").min())
    )
    ordered = identity_of(mine) == IDENTITY
    base: dict[str, int] = {}
    late: list[str] = []
    since = kept.height
    for aggregate_id, ts, rank in zip(*(per[c].to_list() for c in per.columns), strict=True):
        track = tracks.get(aggregate_id)
        if track is None:
            continue  # nothing before it
        if ordered and rank >= track.rank and ts > track.head.max_ts:
            base[aggregate_id] = track.head.pos
        else:
            late.append(aggregate_id)
            since = min(since, track.since)
    if not late:
        return Window(mine, np.ones(mine.height, dtype=bool), base)
    old = kept.since(since).filter(
        pl.col("aggregate_id").is_in(pl.Series(late, dtype=pl.String).implode())
    )
    frame = pl.concat([old, mine], how="diagonal_relaxed")
    new = np.arange(frame.height) >= old.height
    return Window(frame, new, base)
