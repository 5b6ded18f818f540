"""The two-axis cut: which deliveries a question about the past sees.

"The state at event time ``at``, as known at processing time ``known_at``" sees a delivery
when its event happened strictly **before** ``at`` (exclusive, as Concursus's
``getState(id, upTo)``) and it was processed **at or before** ``known_at`` (inclusive).
Either bound may be None: no bound on that axis. Every function with ``at=`` and
``known_at=`` cuts with these expressions, so the two axes mean the same everywhere.

>>> import concursus_lab as cl
>>> from concursus_lab.frame.cut import cut
>>> messy = cl.sample.fixture("messy")
>>> cut(messy, at="2026-03-02 12:00", known_at="2026-03-02 10:00").height
8
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from concursus_lab.common.time import TimeLike, optional_utc


def bounds(
    at: TimeLike | None, known_at: TimeLike | None
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """``at`` and ``known_at`` as UTC datetimes (or None), errors naming the argument."""
    return optional_utc(at, "at"), optional_utc(known_at, "known_at")


def happened_before(at: dt.datetime | None) -> pl.Expr:
    """True where the event happened strictly before ``at`` (always, without ``at``)."""
    return pl.lit(True) if at is None else pl.col("event_timestamp") < at


def known_by(known_at: dt.datetime | None) -> pl.Expr:
    """True where the delivery was processed at or before ``known_at`` (always, without)."""
    return pl.lit(True) if known_at is None else pl.col("processing_timestamp") <= known_at


def inside(at: dt.datetime | None, known_at: dt.datetime | None) -> pl.Expr | None:
    """Both conditions as one expression; None when neither bound is set."""
    if at is None and known_at is None:
        return None
    return happened_before(at) & known_by(known_at)


def cut(
    frame: pl.DataFrame, *, at: TimeLike | None = None, known_at: TimeLike | None = None
) -> pl.DataFrame:
    """The rows of ``frame`` inside the cut (the same frame when there is no bound)."""
    predicate = inside(*bounds(at, known_at))
    return frame if predicate is None else frame.filter(predicate)
