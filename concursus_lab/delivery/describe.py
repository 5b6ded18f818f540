"""A one-screen description of a source or event frame: what ``concursus-lab info`` prints.

>>> import concursus_lab as cl
>>> print(cl.describe(cl.sample.parcels(50, seed=1)))  # doctest: +ELLIPSIS
152 deliveries of 152 events (0 repeated), 50 aggregates
...
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

from concursus_lab.common.text import plural
from concursus_lab.common.time import duration
from concursus_lab.delivery.lateness import lateness
from concursus_lab.frame import conflicts
from concursus_lab.frame.identity import decide
from concursus_lab.frame.schema import validate
from concursus_lab.sources.base import Source


@dataclass(frozen=True)
class Description:
    """What :func:`describe` found; prints as a short deterministic text."""

    title: str
    deliveries: int
    events: int
    aggregates: int
    counts: pl.DataFrame
    event_time: tuple[dt.datetime | None, dt.datetime | None]
    processing_time: tuple[dt.datetime | None, dt.datetime | None]
    lateness: pl.DataFrame
    quarantined: int
    #: identities whose deliveries differ in name, version or parameters (see
    #: :class:`~concursus_lab.exceptions.ConflictingDeliveries`)
    conflicting: int = 0

    def __str__(self) -> str:
        lines = []
        if self.title:
            lines.append(self.title)
        lines.append(
            f"{self.deliveries:,} deliveries of {self.events:,} events "
            f"({self.deliveries - self.events:,} repeated), {self.aggregates:,} aggregates"
        )
        if self.conflicting:
            lines.append(
                f"{plural(self.conflicting, 'identity', 'identities')} with conflicting "
                "deliveries (a different name, version or parameters; see the warning)"
            )
        if self.quarantined:
            lines.append(f"{self.quarantined:,} records quarantined (see `.quarantine`)")
        lines.append(f"event time:      {_span(self.event_time)}")
        lines.append(f"processing time: {_span(self.processing_time)}")
        lines.append("events by type and name:")
        for row in self.counts.iter_rows(named=True):
            lines.append(f"  {row['aggregate_type']:<12} {row['name']:<24} {row['events']:>12,}")
        if self.lateness.height:
            row = self.lateness.row(0, named=True)
            lines.append(
                "lateness (processing - event time): "
                + ", ".join(f"{k} {duration(row[k])}" for k in ("p50", "p90", "p99", "p999", "max"))
            )
            lines.append(
                f"messiness: {row['out_of_order']:,} out-of-order arrivals, "
                f"{row['duplicates']:,} repeated deliveries, "
                f"{row['negative']:,} with negative lateness (a clock running ahead)"
            )
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_markdown_(self) -> str:
        return "```\n" + str(self) + "\n```"


@conflicts.one_warning()
def describe(source: Source | pl.DataFrame) -> Description:
    """Counts, time ranges on both axes and the lateness profile of a source or frame.

    For a source, every delivery is read (``duplicates="keep"``) so repeats are counted;
    identities whose deliveries conflict are counted (``.conflicting``) and warned about.
    """
    if isinstance(source, Source):
        deliveries = source.events(duplicates="keep")
        title = repr(source)
        quarantined = source.quarantine.height
    else:
        deliveries = validate(source, check_parameters=False)
        title = ""
        quarantined = 0
    decision = decide(deliveries, "last")
    conflicts.report(decision.conflicts)
    events = deliveries if decision.mask is None else deliveries.filter(decision.mask)
    counts = (
        events.group_by("aggregate_type", "name")
        .agg(pl.len().alias("events"))
        .sort("aggregate_type", "events", "name", descending=[False, True, False])
    )
    spans = deliveries.select(
        pl.col("event_timestamp").min().alias("e0"),
        pl.col("event_timestamp").max().alias("e1"),
        pl.col("processing_timestamp").min().alias("p0"),
        pl.col("processing_timestamp").max().alias("p1"),
        pl.struct("aggregate_type", "aggregate_id").n_unique().alias("aggregates"),
    ).row(0, named=True)
    profile = lateness(deliveries)
    if not deliveries.height:  # no profile to show, but its columns (not the events')
        profile = profile.clear()
    return Description(
        title=title,
        deliveries=deliveries.height,
        events=events.height,
        aggregates=spans["aggregates"] if deliveries.height else 0,
        counts=counts,
        event_time=(spans["e0"], spans["e1"]),
        processing_time=(spans["p0"], spans["p1"]),
        lateness=profile,
        quarantined=quarantined,
        conflicting=decision.conflicts.identities,
    )


def _span(span: tuple[dt.datetime | None, dt.datetime | None]) -> str:
    start, end = span
    if start is None:
        return "(empty)"
    return f"{start:%Y-%m-%d %H:%M:%S} .. {end:%Y-%m-%d %H:%M:%S} UTC"
