"""An event's identity, and which of its deliveries counts.

An event is identified by ``(aggregate_type, aggregate_id, event_timestamp, stream_id)``,
Cassandra's primary key: deliveries that share it are one event delivered more than once.
Which of them counts is the ``duplicates=`` argument every function takes:

``"last"`` (the default)
    the delivery processed last wins, as a Cassandra upsert does;
``"first"``
    the delivery processed first wins, as an idempotency filter does;
``"keep"``
    every delivery counts, as a stream consumer without a filter sees them.

Deliveries of one identity are put in *delivery order*: processing time, then a tie column
the source may name (a store's delivery sequence, a Kafka offset), then row position. So
the outcome never depends on chance. This module is the one place that says so: every
function that resolves duplicates calls :func:`pick` (on runs it has put in delivery order
with :func:`in_delivery_order`), :func:`winners`, :func:`resolve` or, on a LazyFrame,
:func:`resolve_lazy`.

>>> import polars as pl
>>> from concursus_lab.frame.identity import resolve
>>> import concursus_lab as cl
>>> messy = cl.sample.fixture("messy")
>>> messy.height, resolve(messy, "last").height, resolve(messy, "keep").height
(17, 15, 17)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import polars as pl

from concursus_lab.exceptions import SchemaError

#: An event's identity, Cassandra's primary key: deliveries sharing it are duplicates.
IDENTITY: tuple[str, ...] = ("aggregate_type", "aggregate_id", "event_timestamp", "stream_id")

#: A 64-bit hash of the identity: equal identities hash equal (unequal ones rarely do).
IDENTITY_HASH = pl.struct(IDENTITY).hash(seed=0x5EED)

Duplicates = Literal["last", "first", "keep"]

#: The values of ``duplicates=``.
DUPLICATES: tuple[str, ...] = ("last", "first", "keep")

_MEANING = {
    "last": "'last' keeps the last processed delivery of each identity (as Cassandra does)",
    "first": "'first' the first (as an idempotency filter does)",
    "keep": "'keep' every delivery",
}


def check_duplicates(value: object, *, keep_means: str | None = "every delivery") -> Duplicates:
    """``value`` if it is a ``duplicates=`` choice, else a :class:`SchemaError` saying which.

    ``keep_means=None`` where keeping every delivery has no meaning (a latest value).

    >>> check_duplicates("frist")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    concursus_lab.exceptions.SchemaError: `duplicates` must be one of ('last', 'first', 'keep'), ...
    >>> check_duplicates("keep", keep_means=None)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    concursus_lab.exceptions.SchemaError: `duplicates` must be 'last' or 'first' here, got 'keep'...
    """
    if keep_means is not None and value in DUPLICATES:
        return value  # type: ignore[return-value]
    if keep_means is None and value in DUPLICATES[:2]:
        return value  # type: ignore[return-value]
    if keep_means is None:
        raise SchemaError(
            f"`duplicates` must be 'last' or 'first' here, got {value!r}: "
            f"{_MEANING['last']}, {_MEANING['first']}; keeping every delivery has no meaning "
            "for a latest value."
        )
    raise SchemaError(
        f"`duplicates` must be one of {DUPLICATES}, got {value!r}: {_MEANING['last']}, "
        f"{_MEANING['first']}, {_MEANING['keep']}."
    )


def by_delivery(frame: pl.DataFrame) -> pl.DataFrame:
    """The frame's rows in delivery order: processing time, then row order (a stable sort).

    This is the order in which deliveries arrived, the order a stream processor sees.
    """
    if frame.height > 1 and not frame["processing_timestamp"].is_sorted():
        return frame.sort("processing_timestamp", maintain_order=True)
    return frame


def delivery_order(frame: pl.DataFrame, ties: Sequence[str] = ()) -> np.ndarray:
    """The permutation that puts ``frame``'s rows in delivery order (row numbers).

    Processing time, then the ``ties`` columns (a Kafka offset), then row order: the order
    in which a stream processor reads the deliveries.
    """
    keys = ["processing_timestamp", *ties]
    return frame.select(pl.arg_sort_by(keys, maintain_order=True)).to_series().to_numpy()


def in_delivery_order(runs: np.ndarray, processing: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The permutation that puts each run's deliveries in delivery order.

    ``runs`` numbers the identity of each delivery (equal numbers: one identity);
    ``processing`` is its processing time and ``rows`` its row position (or any tie key
    that follows row order). Runs keep their relative order.
    """
    return np.lexsort((rows, processing, runs))


def pick(run_start: np.ndarray, duplicates: Duplicates) -> np.ndarray:
    """Which deliveries count, for runs of one identity each, in delivery order.

    ``run_start`` marks each run's first delivery. ``"last"`` keeps each run's last,
    ``"first"`` its first, ``"keep"`` every delivery.

    >>> pick(np.array([True, False, False, True]), "last").tolist()
    [False, False, True, True]
    >>> pick(np.array([True, False, False, True]), "first").tolist()
    [True, False, False, True]
    """
    if duplicates == "keep":
        return np.ones(len(run_start), dtype=bool)
    if duplicates == "first":
        return run_start.copy()
    return np.r_[run_start[1:], True] if len(run_start) else run_start.copy()


def winners(
    frame: pl.DataFrame,
    duplicates: Duplicates,
    *,
    ties: Sequence[str] = (),
    hashes: pl.Series | None = None,
) -> np.ndarray | None:
    """A mask of the rows that count (None when no identity is delivered twice).

    Identities are first compared by their :data:`IDENTITY_HASH` (fast; pass ``hashes``
    when you have them); only rows whose hash repeats are then compared on the identity
    columns themselves, so a collision never merges two events. ``ties`` names columns that
    order deliveries processed at the same instant.
    """
    if duplicates == "keep" or frame.height < 2:
        return None
    if hashes is None:
        hashes = frame.select(IDENTITY_HASH).to_series()
    suspects = hashes.is_duplicated()
    if not suspects.any():
        return None
    rows = np.flatnonzero(suspects.to_numpy())
    sub = frame.select(*IDENTITY, "processing_timestamp", *ties)[rows]
    # runs of one identity, then delivery order within each run (ties before row order)
    by_identity = sub.with_row_index("__at").sort(
        [*IDENTITY, "processing_timestamp", *ties, "__at"]
    )
    at = by_identity["__at"].to_numpy()
    run_start = (
        by_identity.select(
            pl.struct(IDENTITY).ne_missing(pl.struct(IDENTITY).shift(1)).fill_null(True)
        )
        .to_series()
        .to_numpy()
    )
    mask = np.ones(frame.height, dtype=bool)
    mask[rows[at[~pick(run_start, duplicates)]]] = False
    return mask


def resolve(
    frame: pl.DataFrame, duplicates: Duplicates = "last", *, ties: Sequence[str] = ()
) -> pl.DataFrame:
    """``frame`` with one row per identity, as ``duplicates`` says; rows keep their order.

    >>> import concursus_lab as cl
    >>> messy = cl.sample.fixture("messy")
    >>> resolve(messy, "first").filter(aggregate_id="parcel-C", name="delivered").height
    1
    """
    mask = winners(frame, duplicates, ties=ties)
    return frame if mask is None else frame.filter(pl.Series(mask))


def resolve_lazy(
    frame: pl.LazyFrame, duplicates: Duplicates, *, ties: Sequence[str] = ()
) -> pl.LazyFrame:
    """:func:`resolve` for a LazyFrame (the rows come out in delivery order).

    The same rule in polars' lazy terms: a stable sort into delivery order (processing
    time, ``ties``, row order), then the last (or first) row of each identity.
    """
    if duplicates == "keep":
        return frame
    ordered = frame.sort(["processing_timestamp", *ties], maintain_order=True)
    return ordered.unique(subset=list(IDENTITY), keep=duplicates, maintain_order=True)
