"""Frames of your own shape in: :func:`from_polars` and :func:`from_pandas`, with a mapping.

Without a mapping, the frame must be canonical already (``cl.SCHEMA``'s ten columns), as
``cl.frame.from_pandas`` has always taken it. With one, every column is worked out from the
frame's own (:class:`~concursus_lab.mapping.plan.Plan`); a row that does not map is an error
that names it, since a function that returns a frame has nowhere to put it aside (open the
frame as a source, ``cl.sources.MemorySource(df, mapping=...)``, to keep such rows in its
``.quarantine`` instead).
"""

from __future__ import annotations

from typing import Any

import polars as pl

from concursus_lab.common.text import plural
from concursus_lab.exceptions import SchemaError
from concursus_lab.frame import schema as canonical
from concursus_lab.mapping.plan import Mapped, Plan
from concursus_lab.mapping.spec import Mapping

_SHOWN = 3


def from_polars(frame: pl.DataFrame | pl.LazyFrame, mapping: Mapping | None = None) -> pl.DataFrame:
    """A polars frame of your own events as a canonical event frame.

    Parameters
    ----------
    frame
        Your events, one row each (a LazyFrame is read once).
    mapping
        Where each canonical column comes from (:class:`~concursus_lab.Mapping`). None: the
        frame is canonical already and is only validated.

    >>> import polars as pl, concursus_lab as cl
    >>> clicks = pl.DataFrame({"user": ["u1"], "kind": ["signedUp"], "ts": [1714730000]})
    >>> cl.from_polars(clicks, cl.Mapping(aggregate_type="user", aggregate_id="user",
    ...                name="kind", event_time="ts"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    concursus_lab.exceptions.SchemaError: 'ts' (`event_time`) holds numbers (Int64): ...
    """
    if isinstance(frame, pl.LazyFrame):
        frame = frame.collect()
    if not isinstance(frame, pl.DataFrame):
        hint = " Use cl.from_pandas(df, mapping)." if _is_pandas(frame) else ""
        raise SchemaError(f"`frame` must be a polars DataFrame, got {type(frame).__name__}.{hint}")
    if mapping is None:
        return canonical.validate(frame)
    return strict(apply(frame, mapping))


def from_pandas(df: Any, mapping: Mapping | None = None) -> pl.DataFrame:
    """A pandas frame of your own events as a canonical event frame (see :func:`from_polars`).

    Without a mapping the frame must be canonical already (``cl.frame.from_pandas``).
    """
    if mapping is None:
        return canonical.from_pandas(df)
    try:
        frame = pl.from_pandas(df)
    except (TypeError, ValueError) as exc:
        raise SchemaError(f"`df` could not be read as a table: {exc}") from exc
    return strict(apply(frame, mapping))


def apply(frame: pl.DataFrame, mapping: Mapping) -> Mapped:
    """``mapping`` over ``frame``: the events and the rows that did not map."""
    if not isinstance(mapping, Mapping):
        raise SchemaError(f"`mapping` must be a cl.Mapping, got {type(mapping).__name__}.")
    return Plan(mapping, frame.schema).run(frame.lazy())


def strict(mapped: Mapped) -> pl.DataFrame:
    """The events of ``mapped``, or an error naming the rows that did not map."""
    bad = mapped.quarantine
    if bad.height:
        shown = "; ".join(
            f"row {r}: {why}" for r, why in bad.select("row", "reason").head(_SHOWN).rows()
        )
        raise SchemaError(
            f"{plural(bad.height, 'row')} of the frame do not map: {shown}. Fix or drop them, or "
            "open the frame as a source (cl.sources.MemorySource(df, mapping=...)) to keep them "
            "in its .quarantine."
        )
    return mapped.events


def _is_pandas(value: Any) -> bool:
    return type(value).__module__.startswith("pandas")
