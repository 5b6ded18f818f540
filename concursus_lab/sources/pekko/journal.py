"""The journal as events: a built-in :class:`~concursus_lab.Mapping` from journal rows.

:class:`Journal` holds what a user says about their journal (which field of the events is
their event time, which are their parameters, how to name events, which names are initial
or terminal) and turns the journal frame (:mod:`.rows`) into the canonical event frame with
the mapping every other source of your own shape uses:

===========================  ===========================================================
canonical column             from
===========================  ===========================================================
aggregate_type, aggregate_id ``persistence_id``, split at its ``|`` (:mod:`.names`)
event_timestamp              the event's own time field (``event_time="at"``), read with
                             the mapping's rules (ISO text, or epoch numbers with their
                             ``time_unit``); without one, the write time
stream_id                    the events' own stream field (``stream_id="stream"``), else ``""``
processing_id                ``timestamp``, the time UUID of the write
processing_timestamp         its time, to the microsecond
name, version                ``ser_manifest`` (and ``event_manifest``), see :mod:`.names`
parameters                   the event's fields (or the field ``parameters=`` names)
characteristics              ``types``, or ``initial`` and ``terminal``
sequence                     ``sequence_nr``: the event's identity and its replay order
===========================  ===========================================================

What cannot become an event goes to the quarantine (:data:`QUARANTINE`): the reason, the
row's key, its serializer id and manifests, and the payload as stored.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import polars as pl

from concursus_lab.events.types import EventTypes
from concursus_lab.exceptions import SourceError
from concursus_lab.mapping import Mapped, Mapping, Plan
from concursus_lab.sources.pekko import names
from concursus_lab.sources.pekko.payloads import Fields

#: Why each quarantined journal row is not an event, and the row as stored.
QUARANTINE = pl.Schema(
    {
        "reason": pl.String,
        "persistence_id": pl.String,
        "sequence_nr": pl.Int64,
        "processing_id": pl.String,
        "ser_id": pl.Int32,
        "ser_manifest": pl.String,
        "event_manifest": pl.String,
        "raw": pl.Binary,
    }
)

_ROW = "__journal_row"


@dataclasses.dataclass(frozen=True)
class Journal:
    """How a journal's rows become events; see the module docstring.

    ``event_time`` and ``parameters`` are dotted paths into the event's fields (``"at"``,
    ``"meta.at"``, ``"body"``): None reads the write time and the whole event.
    """

    event_time: str | None = None
    parameters: str | None = None
    stream_id: str | None = None
    time_unit: str | None = None
    time_zone: str | None = None
    types: EventTypes | None = None
    initial: Iterable[str] = ()
    terminal: Iterable[str] = ()
    names: str = "short"
    untyped: str = "entity"

    def __post_init__(self) -> None:
        names.check_naming(self.names)
        for option in ("event_time", "parameters", "stream_id", "untyped"):
            value = getattr(self, option)
            if value is not None and (not isinstance(value, str) or not value.strip(".")):
                raise SourceError(f"`{option}` must be a field name such as 'at', got {value!r}.")
        if names.SEPARATOR in self.untyped:
            raise SourceError(f"`untyped` must not hold {names.SEPARATOR!r}, got {self.untyped!r}.")
        object.__setattr__(self, "initial", tuple(self.initial))
        object.__setattr__(self, "terminal", tuple(self.terminal))
        self.mapping()  # checks the rest (units, zones, types) now, not at the first read

    @property
    def time_column(self) -> str:
        return "written" if self.event_time is None else f"event.{self.event_time}"

    def fields(self) -> Fields:
        """Where the decoder finds the parameters, the event time and the stream id."""
        read = {f"event.{f}": _path(f) for f in (self.event_time, self.stream_id) if f}
        return Fields(parameters=_path(self.parameters), read=read)

    def mapping(self) -> Mapping:
        """The mapping from the journal frame (named as :mod:`.rows` names it)."""
        return Mapping(
            aggregate_type=pl.col("aggregate_type"),
            aggregate_id="aggregate_id",
            name="name",
            version="version",
            event_time=self.time_column,
            stream_id=None if self.stream_id is None else f"event.{self.stream_id}",
            processing_time="written",
            processing_id="processing_id",
            sequence="sequence_nr",
            parameters="payload",
            time_unit=self.time_unit,
            time_zone=self.time_zone,
            types=self.types,
            initial=self.initial,
            terminal=self.terminal,
        )

    def describe(self) -> str:
        """What the event time is, in words (for a source's repr, so ``describe`` says it)."""
        if self.event_time is None:
            return "event time = the write time (no event time field named: event_time=...)"
        return f"event time = the events' {self.event_time!r}"

    def events(self, journal: pl.DataFrame, plans: dict | None = None) -> Mapped:
        """The journal frame's events and its quarantine, in the frame's order (a read maps
        its chunks apart and puts them in order with :func:`ordered`); ``plans`` keeps the
        mapping's plan from one chunk to the next (one dict per read: a plan is not shared
        between threads)."""
        journal = journal.with_row_index(_ROW)
        bad = journal.filter(pl.col("reason").is_not_null())
        good = names.named(journal.filter(pl.col("reason").is_null()), self.names, self.untyped)
        unnamed = good.filter(pl.col("name").is_null())
        if unnamed.height:
            bad = pl.concat(
                [
                    bad,
                    unnamed.select(bad.columns).with_columns(
                        pl.lit(names.why_unnamed()).alias("reason")
                    ),
                ]
            )
            good = good.filter(pl.col("name").is_not_null())
        data = good.select(
            "aggregate_type",
            "aggregate_id",
            "name",
            "version",
            "sequence_nr",
            "processing_id",
            "written",
            "payload",
            *self.fields().read,
        )
        key = tuple(data.schema.items())
        plans = {} if plans is None else plans
        plan = plans.get(key)
        if plan is None:
            plan = plans[key] = Plan(self.mapping(), data.schema, canonical=True)
        mapped = plan.run(data.lazy())
        unmapped = (
            mapped.quarantine.join(good.with_row_index("row").select("row", _ROW), on="row")
            .join(journal.drop("reason"), on=_ROW)
            .with_columns(pl.col("payload").cast(pl.Binary).alias("event"))
        )
        quarantine = pl.concat([_stored(bad), _stored(unmapped)], how="vertical")
        return Mapped(mapped.events, quarantine)


def ordered(parts: list[Mapped]) -> Mapped:
    """Parts of one read (chunks mapped apart) as one: events by aggregate in sequence order,
    the quarantine by persistence id and sequence number. Parts put in order first
    (:func:`in_order`, on the thread that maps them) leave this sort runs to join: about
    half the work of sorting rows in the order they came."""
    return in_order(
        Mapped(
            pl.concat([p.events for p in parts], how="vertical"),
            pl.concat([p.quarantine for p in parts], how="vertical"),
        )
    )


def in_order(mapped: Mapped) -> Mapped:
    """Events by aggregate in sequence order (deliveries of one event as they came), the
    quarantine by persistence id and sequence number."""
    return Mapped(
        mapped.events.sort("aggregate_type", "aggregate_id", "sequence", maintain_order=True),
        mapped.quarantine.sort("persistence_id", "sequence_nr", maintain_order=True),
    )


def _stored(rows: pl.DataFrame) -> pl.DataFrame:
    return rows.select(
        *(c for c in QUARANTINE.names() if c != "raw"), pl.col("event").alias("raw")
    ).cast(dict(QUARANTINE))


def _path(field: str | None) -> tuple[str, ...]:
    return () if field is None else tuple(p for p in field.split(".") if p)


def empty_quarantine() -> pl.DataFrame:
    return pl.DataFrame(schema=QUARANTINE)
