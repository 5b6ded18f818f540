"""``project`` on Spark: keyed folds in two bucketed steps, views over the bounded events.

A fold (``cl.fold(reducer, types=..., key=...)``) follows :mod:`concursus_lab.projections.
keyed`'s rules, in its two halves: each bucket of whole aggregates works out the rows the
fold applies and the key each belongs to (:func:`~concursus_lab.projections.keyed.
keyed_rows`: causal order, creation rules, an event without the key counting for the key its
aggregate named last); those rows are bucketed again by key, and each bucket of whole keys
is folded (:func:`~concursus_lab.projections.keyed.fold_keyed_rows`). A truck's load is
then folded from the events of every parcel loaded onto it, wherever they were read.

A plain view function is given what it is given locally, the events that happened before
``at`` as known at ``known_at``, duplicates resolved as it asks (each bucket bounded by
:func:`~concursus_lab.projections.projection.bounded`), but as a Spark DataFrame: on Spark
a view is written with Spark's functions and returns a Spark DataFrame.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from concursus_lab.common.time import TimeLike
from concursus_lab.events.decoded import commonest
from concursus_lab.exceptions import ConcursusLabError, ProjectionError
from concursus_lab.frame import conflicts
from concursus_lab.frame.cut import bounds
from concursus_lab.frame.schema import empty
from concursus_lab.projections.keyed import (
    fold_keyed_rows,
    fold_view,
    keyed_rows,
    warn_undecodable,
)
from concursus_lab.projections.projection import Fold, Projection, as_projection, bounded
from concursus_lab.spark import buckets as _buckets
from concursus_lab.spark.lateness import _empty_like
from concursus_lab.spark.read import to_polars
from concursus_lab.spark.result import SparkFrame


def project(
    events: Any,
    projection: Any,
    *,
    at: TimeLike | None = None,
    known_at: TimeLike | None = None,
    buckets: int | None = None,
) -> SparkFrame:
    """:func:`concursus_lab.project` on Spark; see the module docstring.

    Returns a :class:`~concursus_lab.spark.SparkFrame`: for a fold, ``.to_polars()`` is
    exactly ``cl.project(...)``'s view (sorted by key); for a view function, its Spark
    DataFrame (sorted by the projection's ``key=`` if it declares one).
    """
    chosen = as_projection(projection)
    at, known_at = bounds(at, known_at)
    if isinstance(chosen, Fold):
        return _fold(events, chosen, at, known_at, buckets)
    return _view(events, chosen, at, known_at, buckets)


def _fold(events, fold: Fold, at, known_at, buckets) -> SparkFrame:
    def applied(frame):
        bound = bounded(frame, fold.duplicates, at=at, known_at=known_at)
        rows, reasons = keyed_rows(fold, bound)
        # Spark has no unsigned integers: the hash travels as the same 64 bits, signed
        keyed = rows.with_columns(pl.col("__h").reinterpret(signed=True))
        return {"keyed": keyed}, {"undecodable": reasons}

    def folded(frame):
        frame = frame.with_columns(pl.col("__h").reinterpret(signed=False))
        return {"view": fold_keyed_rows(fold, frame)}, {}

    shape = keyed_rows(fold, empty())[0].with_columns(pl.col("__h").reinterpret(signed=True))
    first = _buckets.run(events, applied, empty={"keyed": shape}, buckets=buckets)
    conflicts.report(first.conflicts)
    reasons = first.total("undecodable")
    if reasons:  # the workers' warnings never reach this process: say it here, as locally
        warn_undecodable(fold, sum(reasons.values()), commonest(reasons), stacklevel=4)
    second = _buckets.run(
        first.frame("keyed"),
        folded,
        empty={"view": fold_view(fold, empty())},
        buckets=first.buckets,
        by=("__key",),
        one_kind=("view",),
    )
    first.unpersist()
    answer = SparkFrame(
        second.frame("view").orderBy(fold.key),
        lambda: second.polars("view").sort(fold.key),
        f"fold {fold.name!r} by {fold.key}",
    )
    return second.kept_for(answer)


def _view(events, chosen: Projection, at, known_at, buckets) -> SparkFrame:
    shape = pl.concat([empty(), _empty_like(events)], how="diagonal_relaxed")
    columns = [c for c in shape.columns if c != "__row"]

    def bound(frame):
        return bounded(frame, chosen.duplicates, at=at, known_at=known_at)

    found = _buckets.conflicts_found(events)
    given = _buckets.map_rows(events, bound, shape.schema, buckets=buckets, found=found)
    given = given.select(*columns)
    hint = (
        "on Spark a view function is given a Spark DataFrame and returns one (write it "
        "with pyspark.sql.functions), or run it locally on what fits: cl.project(...)."
    )
    try:
        out = chosen.function(given)
    except ConcursusLabError:
        raise
    except Exception as exc:
        raise ProjectionError(
            f"projection {chosen.name!r} raised {type(exc).__name__}: {exc}; {hint}"
        ) from exc
    if not hasattr(out, "sparkSession"):
        raise ProjectionError(f"projection {chosen.name!r} returned {type(out).__name__}; {hint}")
    key = list(chosen.key or ())
    if key:
        out = out.orderBy(*key)

    def collect() -> pl.DataFrame:
        collected = _sorted(to_polars(out), key)
        _buckets.report_found(found)  # the conflicts of the events the view was given
        return collected

    return SparkFrame(out, collect, f"view {chosen.name!r}")


def _sorted(frame: pl.DataFrame, key: list[str]) -> pl.DataFrame:
    return frame.sort(key) if key else frame
