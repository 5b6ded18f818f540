"""Live views: :func:`cl.project <concursus_lab.project>` kept up to date batch by batch.

:func:`view` makes a :class:`LiveProjection` of a projection; give it the batches a follow
reads (:meth:`LiveProjection.update`, or :meth:`LiveProjection.follow`, which is
:func:`cl.live.states(...).follow <concursus_lab.live.following.follow>`'s own loop).
After every batch, :attr:`LiveProjection.frame` equals ``cl.project`` over everything read.

* A keyed fold (:func:`cl.fold <concursus_lab.fold>`) is kept incrementally, through the
  two halves Spark splits it into (``projections/keyed.py``): each aggregate's rows, keyed
  and ordered by its own events (:func:`~concursus_lab.projections.keyed.keyed_rows`), are
  kept; a batch re-keys only the aggregates it touches (a late delivery, or a redelivery
  that wins, changes only its own aggregate's rows) and re-folds only the keys those
  aggregates named before or after it (:func:`~concursus_lab.projections.keyed.
  fold_keyed_rows`); the other keys' rows of the view are kept as they were. A batch's
  :class:`ViewChanges` lists the keys it re-folded, with their rows before and after.
* Any other projection (a function of the whole frame, vectorised) is run again over
  everything read after each batch: polars is quicker at that than keeping its pieces,
  and nothing else could know what a function of the frame depends on. Its changes list no
  keys (``keys`` is None).
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import polars as pl

from concursus_lab.events.decoded import commonest
from concursus_lab.frame.identity import tie_columns
from concursus_lab.frame.schema import columns_of, empty, validate
from concursus_lab.live import following
from concursus_lab.live.offsets import Offsets
from concursus_lab.projections.keyed import fold_keyed_rows, keyed_rows, warn_undecodable
from concursus_lab.projections.projection import AnyProjection, Fold, as_projection, bounded

#: A kept keyed row's key column (``projections/keyed.py``'s).
KEY = "__key"


@dataclasses.dataclass(frozen=True)
class ViewChanges:
    """What one batch changed in a live view.

    ``keys``: the keys the batch re-folded (a keyed fold; None for a projection run again
    whole); ``before`` and ``after``: the view's rows of those keys before and after it
    (the whole view, for a projection run again); ``read``: the batch's deliveries read.
    """

    batch: int
    keys: list[Any] | None
    before: pl.DataFrame
    after: pl.DataFrame
    read: int

    def summary(self) -> str:
        """One line: the batch, what it read, what it changed."""
        what = "the view run again" if self.keys is None else f"{len(self.keys):,} keys re-folded"
        return f"batch {self.batch}: {self.read:,} deliveries read, {what}"

    def __repr__(self) -> str:
        return f"ViewChanges({self.summary()})"


class LiveProjection:
    """A projection's view, kept up to date batch by batch (see the module); make one with
    :func:`view`."""

    def __init__(self, projection: AnyProjection) -> None:
        self.projection = as_projection(projection)
        self._fold = isinstance(self.projection, Fold)
        self._kept: pl.DataFrame | None = None  # every delivery read (of the fold's type)
        self._keyed: pl.DataFrame | None = None  # a fold's kept rows, every aggregate's
        self._view = self.projection._view(bounded(empty(), self.projection.duplicates))
        self.offsets = Offsets()
        self.batches = 0

    @property
    def aggregate_type(self) -> str | None:
        """The aggregate type a follow reads (None: every type, for a projection)."""
        return self.projection.types.aggregate_type if self._fold else None

    @property
    def read(self) -> int:
        """Deliveries read so far (of the fold's aggregate type)."""
        return 0 if self._kept is None else self._kept.height

    @property
    def deliveries(self) -> pl.DataFrame:
        """Every delivery read so far, in the order read."""
        return empty() if self._kept is None else self._kept

    @property
    def frame(self) -> pl.DataFrame:
        """The view: ``cl.project`` over everything read so far."""
        return self._view

    def update(self, frame: pl.DataFrame) -> ViewChanges:
        """Take a batch (a canonical frame) into the view; returns what it changed."""
        frame = validate(frame, check_parameters=False)
        mine = frame
        if self._fold:
            mine = frame.filter(pl.col("aggregate_type") == self.aggregate_type)
        mine = mine.select(*columns_of(mine), *tie_columns(mine))
        kept = mine if self._kept is None else pl.concat([self._kept, mine], how="diagonal_relaxed")
        if not self._fold:
            before = self._view
            self._view = self.projection._view(bounded(kept, self.projection.duplicates))
            changes = ViewChanges(self.batches + 1, None, before, self._view, mine.height)
        else:
            changes = self._refold(kept, mine)
        self._kept = kept
        self.offsets = self.offsets.after(frame)
        self.batches += 1
        return changes

    #: Follow a source (a Kafka topic, a RabbitMQ exchange, a growing store), taking each
    #: batch it brings: see :func:`concursus_lab.live.following.follow`.
    follow = following.follow

    def _refold(self, kept: pl.DataFrame, mine: pl.DataFrame) -> ViewChanges:
        """The batch ``mine`` taken into a keyed fold: its aggregates re-keyed, the keys
        they name (before or after) folded again."""
        fold = self.projection
        ids = mine["aggregate_id"].unique().implode()
        touched = pl.col("aggregate_id").is_in(ids)
        rows, reasons = keyed_rows(fold, bounded(kept.filter(touched), fold.duplicates))
        if reasons:
            warn_undecodable(fold, sum(reasons.values()), commonest(reasons), stacklevel=4)
        old = self._keyed.filter(touched) if self._keyed is not None else rows.head(0)
        keys = pl.concat([old[KEY], rows[KEY]]).unique().sort()
        others = self._keyed.filter(~touched) if self._keyed is not None else None
        keyed = rows if others is None else pl.concat([others, rows], how="diagonal_relaxed")
        named = pl.col(KEY).is_in(keys.implode())
        with warnings.catch_warnings():  # warned of above, for the batch's aggregates
            warnings.simplefilter("ignore")
            after = fold_keyed_rows(fold, keyed.filter(named))
        in_keys = pl.col(fold.key).is_in(keys.implode())
        before = self._view.filter(in_keys)
        rest = self._view.filter(~in_keys)
        if rest.height == 0:  # a view's columns may depend on its states: take the new ones
            self._view = after
        elif after.height:
            self._view = pl.concat([rest, after], how="diagonal_relaxed").sort(fold.key)
        else:
            self._view = rest
        self._keyed = keyed
        return ViewChanges(self.batches + 1, keys.to_list(), before, after, mine.height)

    def summary(self) -> str:
        """One line: the projection, its rows, what was read."""
        return (
            f"live view {self.projection.name!r}: {self._view.height:,} rows from "
            f"{self.read:,} deliveries in {self.batches:,} batches"
        )

    def __repr__(self) -> str:
        return self.summary()


def view(projection: AnyProjection) -> LiveProjection:
    """``projection`` (a :func:`cl.fold <concursus_lab.fold>`, a :func:`cl.projection
    <concursus_lab.projection>` or a function ``events -> view``) kept live: empty until
    given batches (``update``) or a source to follow (``follow``).

    >>> import polars as pl
    >>> import concursus_lab as cl
    >>> from concursus_lab.sample import parcel_state, parcel_types
    >>> events = cl.sample.parcels(40, seed=3)
    >>> received = pl.col("name") == "receivedAtDepot"
    >>> live = cl.live.view(cl.fold(parcel_state, types=parcel_types))
    >>> live.update(events.filter(~received))
    ViewChanges(batch 1: 97 deliveries read, 40 keys re-folded)
    >>> live.update(events.filter(received))  # late: each parcel's past restated
    ViewChanges(batch 2: 40 deliveries read, 40 keys re-folded)
    >>> live.frame.equals(cl.project(events, cl.fold(parcel_state, types=parcel_types)))
    True
    """
    return LiveProjection(projection)
