"""Where each delivery sits in its aggregate's replay: the positions keyframes count by.

An aggregate's deliveries, every one kept, in the causal order ``frame/order.py`` defines
(:func:`~concursus_lab.frame.order.in_identity_order` with ``"keep"``, then
:func:`~concursus_lab.frame.order.by_rank`): a keyframe is the state after the first *p* of
them. Whichever delivery of an identity counts, the deliveries of one identity sit side by
side there, so a cut between two positions either holds all of an identity's deliveries or
none; a cut that would split them (:attr:`Layout.clean` is False) is never a keyframe.
A delivery that arrives later lands somewhere in this order: the keyframes before it stay
true, those after it do not (``track.py``).
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import polars as pl

from concursus_lab.events.decode import type_codes
from concursus_lab.events.types import EventTypes
from concursus_lab.frame.identity import identity_hash, identity_of
from concursus_lab.frame.keys import gather_rows
from concursus_lab.frame.order import by_rank, causal_rank, in_identity_order


@dataclasses.dataclass(frozen=True)
class Layout:
    """Every delivery of a frame's aggregates in causal order, and where each aggregate's
    run of them starts.

    ``order`` holds row positions of the frame; the other per-position arrays are aligned
    with it. Aggregates come in a fixed order (by a hash of their id), ``ids`` names them.
    """

    order: np.ndarray  # frame rows, grouped by aggregate, causal order, every delivery
    segment: np.ndarray  # the aggregate (index into ids) of each position
    pos: np.ndarray  # the position within its aggregate
    firsts: np.ndarray  # where each aggregate's run starts in `order` (and the end, last)
    ids: list[str]
    identity: np.ndarray  # each frame row's identity hash
    rank: np.ndarray  # each position's causal rank
    base: np.ndarray  # per aggregate, its deliveries before the frame's (``window.py``)

    @property
    def sizes(self) -> np.ndarray:
        """Deliveries per aggregate (those before the frame's included)."""
        return np.diff(self.firsts) + self.base

    @functools.cached_property
    def clean(self) -> np.ndarray:
        """Per position: a cut just after it splits no identity's deliveries (worked out
        when first asked: time travel never asks)."""
        return _clean(self.segment, self.identity[self.order])

    def top_rank(self) -> np.ndarray:
        """Per aggregate, the highest causal rank among its deliveries in the frame."""
        if len(self.rank) == 0:
            return np.zeros(0, dtype=np.int8)
        return np.maximum.reduceat(self.rank, self.firsts[:-1])


def kinds_of(types: EventTypes, frame: pl.DataFrame) -> np.ndarray:
    """Each row's declared kind (``characteristics`` of its type; -1 when undeclared), as
    the replay plan ranks it."""
    codes = type_codes(types, frame, through_upcasters=True)  # as it will be upcast
    return np.array([t.characteristics for t in types] + [-1], dtype=np.int32)[codes]


def layout(frame: pl.DataFrame, types: EventTypes, base: dict[str, int] | None = None) -> Layout:
    """The :class:`Layout` of ``frame``'s rows (all of ``types``' aggregate type); ``base``
    names aggregates whose first ``base[id]`` deliveries are not in ``frame`` (they all come
    before its rows: ``window.py``), so that positions count them."""
    n = frame.height
    identity = frame.select(identity_hash(identity_of(frame))).to_series().to_numpy()
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return Layout(
            empty, empty, empty, np.zeros(1, np.int64), [], identity, empty.astype(np.int8), empty
        )
    kinds = kinds_of(types, frame)
    keyed = in_identity_order(frame, "keep")
    order, start = by_rank(keyed.order, keyed.start, kinds)
    segment = np.cumsum(start) - 1
    firsts = np.append(np.flatnonzero(start), n).astype(np.int64)
    ids = gather_rows(frame["aggregate_id"], order[firsts[:-1]]).to_list()
    before = np.zeros(len(ids), dtype=np.int64)
    if base:
        before[:] = [base.get(i, 0) for i in ids]
    pos = np.arange(n, dtype=np.int64) - firsts[segment] + before[segment]
    rank = causal_rank(kinds[order])
    return Layout(order, segment, pos, firsts, ids, identity, rank, before)


def _clean(segment: np.ndarray, identity: np.ndarray) -> np.ndarray:
    """Whether a cut after each position leaves every identity whole on one side."""
    n = len(segment)
    keys = pl.DataFrame({"s": segment, "i": identity})
    if not keys.select(pl.struct("s", "i").is_duplicated().any()).item():
        return np.ones(n, dtype=bool)
    last = keys.with_row_index("p").select(pl.col("p").max().over("s", "i")).to_series()
    reach = np.maximum.accumulate(last.to_numpy().astype(np.int64))
    return reach == np.arange(n)
