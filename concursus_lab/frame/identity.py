"""An event's identity, and which of its deliveries counts.

Deliveries that share an identity are one event delivered more than once. What identifies
an event depends on the columns the frame has (:func:`identity_of`), one rule for all:

* an ``event_id`` column (an id the data names for each event, or a content digest,
  :func:`content_ids`): ``(aggregate_type, aggregate_id, event_id)``;
* else a ``sequence`` column (the event's position within its aggregate, a Pekko
  ``sequence_nr``): ``(aggregate_type, aggregate_id, sequence)``;
* else Concursus's :data:`IDENTITY`, Cassandra's primary key:
  ``(aggregate_type, aggregate_id, event_timestamp, stream_id)``.

Which delivery counts is the ``duplicates=`` argument every function takes:

``"last"`` (the default)
    the delivery processed last wins, as a Cassandra upsert does;
``"first"``
    the delivery processed first wins, as an idempotency filter does;
``"keep"``
    every delivery counts, as a stream consumer without a filter sees them.

Deliveries of one identity are put in *delivery order*: processing time, then Kafka's
``(kafka_partition, kafka_offset)`` when the frame has them (:func:`tie_columns`), then a
tie column the source may name (a store's delivery sequence), then row position. So the
outcome never depends on chance, nor on the engine (local or Spark). Deliveries of one
identity that differ in what they say are *conflicting*: counted and warned about
(``conflicts.py``). This module is the one place that says so: every function that
resolves duplicates calls :func:`pick` (on runs it has put in delivery order with
:func:`in_delivery_order`), :func:`decide`, :func:`winners`, :func:`resolve` or, on a
LazyFrame, :func:`resolve_lazy`.

>>> import polars as pl
>>> from concursus_lab.frame.identity import resolve
>>> import concursus_lab as cl
>>> messy = cl.sample.fixture("messy")
>>> messy.height, resolve(messy, "last").height, resolve(messy, "keep").height
(17, 15, 17)
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Sequence
from typing import Literal

import numpy as np
import polars as pl

from concursus_lab.exceptions import SchemaError
from concursus_lab.frame import conflicts as _conflicts
from concursus_lab.frame.conflicts import Conflicts
from concursus_lab.frame.schema import OPTIONAL

#: Concursus's identity, Cassandra's primary key: deliveries sharing it are duplicates
#: (when the frame names no ``sequence`` or ``event_id``, see :func:`identity_of`).
IDENTITY: tuple[str, ...] = ("aggregate_type", "aggregate_id", "event_timestamp", "stream_id")

#: The optional identity columns' names (``schema.OPTIONAL`` gives their dtypes).
SEQUENCE, EVENT_ID = OPTIONAL.names()

#: Kafka's order of deliveries, when a frame carries it: ties of processing time break on it.
KAFKA_ORDER: tuple[str, ...] = ("kafka_partition", "kafka_offset")


def identity_of(frame_or_columns: object) -> tuple[str, ...]:
    """The columns that identify an event of this frame (a DataFrame, a LazyFrame, a
    schema, or column names): by ``event_id`` if it has one, else by ``sequence``, else
    Concursus's :data:`IDENTITY`.

    >>> import concursus_lab as cl
    >>> cl.frame.identity_of(["aggregate_type", "aggregate_id", "sequence"])
    ('aggregate_type', 'aggregate_id', 'sequence')
    >>> cl.frame.identity_of(cl.sample.parcels(1, seed=1)) == cl.IDENTITY
    True
    """
    columns = _columns(frame_or_columns)
    if EVENT_ID in columns:
        return ("aggregate_type", "aggregate_id", EVENT_ID)
    if SEQUENCE in columns:
        return ("aggregate_type", "aggregate_id", SEQUENCE)
    return IDENTITY


def identity_hash(identity: Sequence[str]) -> pl.Expr:
    """A 64-bit hash of the ``identity`` columns: equal identities hash equal (unequal ones
    rarely do: compare the columns where hashes repeat)."""
    return pl.struct(list(identity)).hash(seed=0x5EED)


def repeated(hashes: pl.Series) -> pl.Series:
    """``hashes.is_duplicated()`` through a sorted copy: a tenth of the working memory of a
    hash table over every row (41 MB against 300 MB at 5M rows), and no slower."""
    ordered = hashes.sort()
    twice = ordered.filter(ordered == ordered.shift(1)).unique()
    del ordered
    return hashes.is_in(twice.implode())


def tie_columns(frame_or_columns: object, ties: Sequence[str] = ()) -> tuple[str, ...]:
    """The columns that order deliveries processed at the same instant, before row order:
    Kafka's ``(kafka_partition, kafka_offset)`` when the frame has them, then ``ties``
    (a source's own delivery sequence).

    >>> tie_columns(["kafka_partition", "kafka_offset", "name"], ["_delivery"])
    ('kafka_partition', 'kafka_offset', '_delivery')
    """
    columns = _columns(frame_or_columns)
    kafka = tuple(c for c in KAFKA_ORDER if c in columns) if KAFKA_ORDER[1] in columns else ()
    return (*kafka, *(t for t in ties if t not in kafka))


def _columns(frame_or_columns: object) -> set[str]:
    if isinstance(frame_or_columns, pl.DataFrame):
        return set(frame_or_columns.columns)
    if isinstance(frame_or_columns, pl.LazyFrame):
        return set(frame_or_columns.collect_schema().names())
    if isinstance(frame_or_columns, pl.Schema | dict):
        return set(frame_or_columns)
    if isinstance(frame_or_columns, Iterable) and not isinstance(frame_or_columns, str):
        return set(frame_or_columns)
    raise SchemaError(
        f"expected a frame, a schema or column names, got {type(frame_or_columns).__name__}."
    )


def content_ids(frame: pl.DataFrame | pl.LazyFrame) -> pl.Series:
    """A stable digest of what each event says, ``"~"`` + 32 hex digits: the ``event_id``
    of data that names neither a sequence nor an event id (content identity).

    Two rows get the same id only if they agree on event time (in microseconds), stream
    id, name, version and parameters (as text). The digest is BLAKE2b's (128 bits, Python's
    ``hashlib``) of the UTF-8 text ``<epoch us>:<n>:<stream_id><n>:<name><n>:<version>
    <parameters>`` (each ``<n>`` the byte length of the field after it), so it is the same
    in every process and with every polars version, and another program can compute it;
    the ``~`` says it was computed, not named by the data. About a second per million
    rows.

    >>> import concursus_lab as cl
    >>> ids = content_ids(cl.sample.parcels(2, seed=1))
    >>> ids.name, ids.str.len_chars().to_list()
    ('event_id', [33, 33, 33, 33, 33, 33])
    """
    if isinstance(frame, pl.LazyFrame):
        frame = frame.select("event_timestamp", "stream_id", "name", "version", "parameters")
        frame = frame.collect()

    def field(column: str) -> list[pl.Expr]:  # its length first: the text is unambiguous
        return [pl.col(column).str.len_bytes().cast(pl.String), pl.lit(":"), pl.col(column)]

    text = frame.select(
        pl.concat_str(
            pl.col("event_timestamp").dt.epoch("us").cast(pl.String),
            pl.lit(":"),
            *field("stream_id"),
            *field("name"),
            *field("version"),
            pl.col("parameters"),
        ).cast(pl.Binary)
    ).to_series()
    blake = hashlib.blake2b
    ids = ["~" + blake(raw, digest_size=16).hexdigest() for raw in text.to_list()]
    return pl.Series(EVENT_ID, ids, dtype=pl.String)


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
    """The frame's rows in delivery order: processing time, then Kafka's order when the
    frame has it (:func:`tie_columns`), then row order (a stable sort).

    This is the order in which deliveries arrived, the order a stream processor sees.
    """
    ties = tie_columns(frame)
    if frame.height > 1 and (ties or not frame["processing_timestamp"].is_sorted()):
        return frame.sort("processing_timestamp", *ties, maintain_order=True)
    return frame


def delivery_order(frame: pl.DataFrame, ties: Sequence[str] = ()) -> np.ndarray:
    """The permutation that puts ``frame``'s rows in delivery order (row numbers).

    Processing time, then the :func:`tie_columns` (Kafka's order, then ``ties``), then row
    order: the order in which a stream processor reads the deliveries.
    """
    keys = ["processing_timestamp", *tie_columns(frame, ties)]
    return frame.select(pl.arg_sort_by(keys, maintain_order=True)).to_series().to_numpy()


def in_delivery_order(
    runs: np.ndarray,
    processing: np.ndarray,
    rows: np.ndarray,
    ties: Sequence[np.ndarray] = (),
) -> np.ndarray:
    """The permutation that puts each run's deliveries in delivery order.

    ``runs`` numbers the identity of each delivery (equal numbers: one identity);
    ``processing`` is its processing time, ``ties`` the values of its :func:`tie_columns`
    and ``rows`` its row position (or any tie key that follows row order). Runs keep their
    relative order.
    """
    return np.lexsort((rows, *reversed(ties), processing, runs))


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


@dataclasses.dataclass(frozen=True)
class Decision:
    """Which rows count (``mask``, None: all of them), which lost to a winner that differs
    from them (``conflicting``, row positions) and the :class:`Conflicts` found."""

    mask: np.ndarray | None
    conflicting: np.ndarray
    conflicts: Conflicts


_NOTHING = Decision(None, np.zeros(0, dtype=np.int64), Conflicts())


def decide(
    frame: pl.DataFrame,
    duplicates: Duplicates,
    *,
    ties: Sequence[str] = (),
    hashes: pl.Series | None = None,
) -> Decision:
    """Which rows count, as ``duplicates`` says, and the conflicts among those that do not.

    Identities (:func:`identity_of`) are first compared by a 64-bit hash (fast; pass
    ``hashes`` of :func:`identity_hash` when you have them); only rows whose hash repeats
    are then compared on the identity columns themselves, so a collision never merges two
    events. Deliveries are ordered by processing time, then :func:`tie_columns` (Kafka's
    order, then ``ties``), then row.
    """
    if duplicates == "keep" or frame.height < 2:
        return _NOTHING
    identity = identity_of(frame)
    if hashes is None:
        hashes = frame.select(identity_hash(identity)).to_series()
    suspects = repeated(hashes)
    if not suspects.any():
        return _NOTHING
    ties = tie_columns(frame, ties)
    rows = np.flatnonzero(suspects.to_numpy())
    sub = frame.select(*identity, "processing_timestamp", *ties)[rows]
    # runs of one identity, then delivery order within each run (ties before row order)
    by_identity = sub.with_row_index("__at").sort(
        [*identity, "processing_timestamp", *ties, "__at"]
    )
    at = by_identity["__at"].to_numpy()
    key = pl.struct(list(identity))
    run_start = by_identity.select(key.ne_missing(key.shift(1)).fill_null(True))
    run_start = run_start.to_series().to_numpy()
    counted = pick(run_start, duplicates)
    ordered = rows[at]
    lost, conflicts = _conflicts.find(frame, ordered, run_start, counted, identity, duplicates)
    mask = np.ones(frame.height, dtype=bool)
    mask[ordered[~counted]] = False
    return Decision(mask, ordered[lost], conflicts)


def winners(
    frame: pl.DataFrame,
    duplicates: Duplicates,
    *,
    ties: Sequence[str] = (),
    hashes: pl.Series | None = None,
) -> np.ndarray | None:
    """A mask of the rows that count (None when no identity is delivered twice), as
    :func:`decide` finds them; conflicting deliveries are warned about."""
    decision = decide(frame, duplicates, ties=ties, hashes=hashes)
    _conflicts.report(decision.conflicts)
    return decision.mask


def resolve(
    frame: pl.DataFrame, duplicates: Duplicates = "last", *, ties: Sequence[str] = ()
) -> pl.DataFrame:
    """``frame`` with one row per identity, as ``duplicates`` says; rows keep their order.
    Conflicting deliveries are warned about.

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
    time, :func:`tie_columns`, row order), then the last (or first) row of each identity.
    Conflicts are not looked for here: a caller that collects the losers too does so with
    :func:`decide`.
    """
    if duplicates == "keep":
        return frame
    schema = frame.collect_schema()
    ordered = frame.sort(["processing_timestamp", *tie_columns(schema, ties)], maintain_order=True)
    return ordered.unique(subset=list(identity_of(schema)), keep=duplicates, maintain_order=True)
