"""What a mapping says: where each canonical column comes from in the user's own data.

A :class:`Mapping` is declarative: it names columns (or dotted field paths into a struct or
JSON value, or polars expressions) and a few facts the data cannot tell (the unit of epoch
numbers, the zone of naive times, which events are initial or terminal). It checks what it
can when it is made; what depends on the data is checked when it is applied
(:mod:`~concursus_lab.mapping.plan`).

>>> import concursus_lab as cl
>>> orders = cl.Mapping(
...     aggregate_type="order", aggregate_id="order_id", name="event_type",
...     event_time="occurred_at", processing_time="ingested_at", sequence="seq",
... )
>>> orders  # doctest: +ELLIPSIS
Mapping(aggregate_type='order', aggregate_id='order_id', name='event_type', ...)
>>> cl.Mapping(aggregate_type="order", aggregate_id="id", name="type", event_time="at",
...            time_unit="seconds")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
concursus_lab.exceptions.SchemaError: `time_unit` must be one of 's', 'ms', 'us', 'ns' ...
"""

from __future__ import annotations

import dataclasses
import zoneinfo
from collections.abc import Iterable
from collections.abc import Mapping as MappingType
from typing import Any
from urllib.parse import parse_qsl, urlencode

import polars as pl

from concursus_lab.events.types import EventTypes
from concursus_lab.exceptions import SchemaError

#: A field of the user's data: a column name, a dotted path into a struct or JSON column
#: (``"payload.order.id"``), or a polars expression (``pl.lit("web")`` for a constant).
Field = str | pl.Expr

#: The units an epoch number may be in; never guessed from its magnitude.
TIME_UNITS: tuple[str, ...] = ("s", "ms", "us", "ns")

#: The fields a mapping may name, in the order they print.
FIELDS: tuple[str, ...] = (
    "aggregate_type",
    "aggregate_id",
    "name",
    "event_time",
    "processing_time",
    "sequence",
    "event_id",
    "stream_id",
    "version",
    "characteristics",
    "processing_id",
)

#: Fields whose canonical column has the field's own name.
_CANONICAL_FIELDS = (
    "aggregate_id",
    "name",
    "stream_id",
    "version",
    "characteristics",
    "processing_id",
)

#: Options that a URL's query string may carry besides the fields (``?time_unit=ms``).
_URL_OPTIONS = ("time_unit", "time_zone", "parameters", "initial", "terminal", "identity")


@dataclasses.dataclass(frozen=True, eq=False, kw_only=True)
class Mapping:
    """Where each column of the canonical event frame comes from in your own data.

    Parameters
    ----------
    aggregate_type
        The aggregate type's name (``"order"``), or ``pl.col("kind")`` for a column that
        holds it.
    aggregate_id, name, event_time
        Required: a column name, a dotted path into a struct or JSON text column
        (``"payload.order.id"``) or a polars expression.
    processing_time
        When each event was captured. Not mapped: the source's own (a Kafka record's
        timestamp, a Cassandra cell's write time) or, for frames and files, the event time
        itself (so no lateness can be seen; the source says so).
    sequence, event_id
        What identifies an event: a per-aggregate sequence number (it also orders events of
        one instant), or an id per event. Neither: two rows are one event only if they agree
        on name, version and parameters too (a content identity), so different events at
        one time are never merged.
    stream_id, version, characteristics, processing_id
        Optional columns; defaults ``""``, ``"0"``, from ``types``/``initial``/``terminal``,
        and null.
    parameters
        None: every column no other field names. A list of columns: those, each a
        parameter; a column that is null in a row is no parameter of that row's event (a wide
        export has a column for every field of every event type). One column (a struct, or
        JSON object text): its fields are the parameters, as they are.
    time_unit
        ``"s"``, ``"ms"``, ``"us"`` or ``"ns"``: the unit of epoch numbers in time columns.
        Required when a time column holds numbers; never guessed.
    time_zone
        The zone of naive times (``"UTC"``, ``"Europe/London"``). Naive times are refused
        unless it is said.
    types
        Declared :class:`~concursus_lab.EventTypes`: which names are initial or terminal.
    initial, terminal
        Or those names themselves, when no types are declared.
    """

    aggregate_type: str | pl.Expr
    aggregate_id: Field
    name: Field
    event_time: Field
    processing_time: Field | None = None
    sequence: Field | None = None
    event_id: Field | None = None
    stream_id: Field | None = None
    version: Field | None = None
    characteristics: Field | None = None
    processing_id: Field | None = None
    parameters: str | Iterable[str] | None = None
    time_unit: str | None = None
    time_zone: str | None = None
    types: EventTypes | None = None
    initial: Iterable[str] = ()
    terminal: Iterable[str] = ()
    identity: str = "own"

    def __post_init__(self) -> None:
        for field in FIELDS:
            value = getattr(self, field)
            required = field in ("aggregate_type", "aggregate_id", "name", "event_time")
            if value is None and required:
                raise SchemaError(f"`{field}` must be given: the column that holds it.")
            if value is not None and not isinstance(value, str | pl.Expr):
                raise SchemaError(
                    f"`{field}` must be a column name, a dotted field path or a polars "
                    f"expression, got {value!r}."
                )
            if isinstance(value, str) and not value.strip():
                raise SchemaError(f"`{field}` must name a column, got an empty string.")
        if self.time_unit is not None and self.time_unit not in TIME_UNITS:
            raise SchemaError(
                f"`time_unit` must be one of 's', 'ms', 'us', 'ns' (the unit of epoch numbers), "
                f"got {self.time_unit!r}."
            )
        if self.time_zone is not None:
            _check_zone(self.time_zone)
        object.__setattr__(self, "parameters", _parameters(self.parameters))
        object.__setattr__(self, "initial", _names(self.initial, "initial"))
        object.__setattr__(self, "terminal", _names(self.terminal, "terminal"))
        if self.identity not in ("own", "concursus"):
            raise SchemaError(
                f"`identity` must be 'own' (a sequence, an event id, else the content) or "
                f"'concursus' (Concursus's key), got {self.identity!r}."
            )
        self._check_types()

    def _check_types(self) -> None:
        if self.types is None:
            return
        if not isinstance(self.types, EventTypes):
            raise SchemaError(f"`types` must be an EventTypes, got {type(self.types).__name__}.")
        if (
            isinstance(self.aggregate_type, str)
            and self.aggregate_type != self.types.aggregate_type
        ):
            raise SchemaError(
                f"`types` declares {self.types.aggregate_type!r} events but "
                f"`aggregate_type` is {self.aggregate_type!r}; map them to the same type."
            )
        if self.initial or self.terminal:
            raise SchemaError(
                "give `types` or `initial`/`terminal`, not both: the declared types already "
                "say which events are initial and terminal."
            )

    @classmethod
    def concursus(cls, **overrides: Any) -> Mapping:
        """Concursus's own layout: the canonical columns by their own names, Concursus's
        identity (type, id, event time, stream id). ``overrides`` change any field.

        >>> Mapping.concursus().identity
        'concursus'
        """
        fields: dict[str, Any] = {column: column for column in _CANONICAL_FIELDS}
        fields.update(
            aggregate_type=pl.col("aggregate_type"),
            event_time="event_timestamp",
            processing_time="processing_timestamp",
            parameters="parameters",
            identity="concursus",
        )
        return cls(**{**fields, **overrides})

    # -- what it says -------------------------------------------------------------------------

    def kinds(self) -> dict[str, int]:
        """Event name -> characteristics (1 initial, 2 terminal), for the names that have one."""
        if self.types is not None:
            return {t.name: t.characteristics for t in self.types if t.characteristics}
        return {**dict.fromkeys(self.initial, 1), **dict.fromkeys(self.terminal, 2)}

    @property
    def maps_processing_time(self) -> bool:
        """Whether the data says when each event was captured."""
        return self.processing_time is not None

    def __repr__(self) -> str:
        parts = [f"{f}={_shown(getattr(self, f))}" for f in FIELDS if getattr(self, f) is not None]
        if self.parameters is None:
            parts.append("parameters=every other column")
        else:
            parts.append(f"parameters={_shown(self.parameters)}")
        for option in ("time_unit", "time_zone"):
            if getattr(self, option) is not None:
                parts.append(f"{option}={getattr(self, option)!r}")
        if self.types is not None:
            parts.append(f"types=EventTypes({self.types.aggregate_type!r})")
        for option in ("initial", "terminal"):
            if getattr(self, option):
                parts.append(f"{option}={list(getattr(self, option))!r}")
        if self.identity != "own":
            parts.append(f"identity={self.identity!r}")
        return "Mapping(" + ", ".join(parts) + ")"

    # -- as a URL's query string -------------------------------------------------------------

    @classmethod
    def from_query(cls, query: str | MappingType[str, str]) -> Mapping:
        """A mapping from a URL's query string, so that a mapped source has a URL that
        ``$CONCURSUS_LAB_SOURCE``, ``concursus-lab copy`` and ``check --source`` can take.

        Fields are column names; ``aggregate_type`` is the type's name (``@kind``: the column
        ``kind``); lists (``parameters``, ``initial``, ``terminal``) are comma-separated.

        >>> Mapping.from_query("aggregate_type=order&aggregate_id=order_id&name=type"
        ...                    "&event_time=at&time_unit=ms&initial=created")  # doctest: +ELLIPSIS
        Mapping(aggregate_type='order', aggregate_id='order_id', name='type', event_time='at', ...)
        """
        pairs = parse_qsl(query, keep_blank_values=True) if isinstance(query, str) else query
        options: dict[str, Any] = dict(pairs.items() if isinstance(pairs, MappingType) else pairs)
        unknown = sorted(set(options) - {*FIELDS, *_URL_OPTIONS})
        if unknown:
            raise SchemaError(
                f"unknown mapping option(s) {unknown} in the URL; a URL may name "
                f"{', '.join(FIELDS + _URL_OPTIONS)}."
            )
        kind = options.get("aggregate_type", "")
        if kind.startswith("@"):
            options["aggregate_type"] = pl.col(kind[1:])
        for option in ("initial", "terminal"):
            if option in options:
                options[option] = [v for v in options[option].split(",") if v]
        if "," in options.get("parameters", ""):  # a list; one name alone is a whole object
            options["parameters"] = [v for v in options["parameters"].split(",") if v]
        missing = [
            f for f in ("aggregate_type", "aggregate_id", "name", "event_time") if f not in options
        ]
        if missing:
            raise SchemaError(
                f"the URL's mapping names no {', '.join(missing)}: add "
                + "&".join(f"{f}=<column>" for f in missing)
                + " to its query string."
            )
        return cls(**options)

    def to_query(self) -> str:
        """This mapping as a URL query string (only column names and constants can be; declared
        ``types`` travel as the names of their initial and terminal events).

        >>> Mapping(aggregate_type="order", aggregate_id="id", name="type", event_time="at",
        ...         time_unit="ms").to_query()
        'aggregate_type=order&aggregate_id=id&name=type&event_time=at&time_unit=ms'
        """
        pairs: list[tuple[str, str]] = []
        for field in FIELDS:
            value = getattr(self, field)
            if value is None:
                continue
            if field == "aggregate_type" and isinstance(value, pl.Expr):
                value = "@" + value.meta.output_name()
            if isinstance(value, pl.Expr):
                raise SchemaError(
                    f"`{field}` is a polars expression, which a URL cannot carry; name a "
                    "column instead, or open the source in Python with mapping=."
                )
            pairs.append((field, value))
        if self.parameters is not None:
            values = [self.parameters] if isinstance(self.parameters, str) else self.parameters
            pairs.append(("parameters", ",".join(values) + ("" if len(values) != 1 else ",")))
        for option in ("time_unit", "time_zone"):
            if getattr(self, option) is not None:
                pairs.append((option, getattr(self, option)))
        kinds = self.kinds()  # declared types travel as the names they make initial/terminal
        for option, kind in (("initial", 1), ("terminal", 2)):
            names = [name for name, k in kinds.items() if k == kind]
            if names:
                pairs.append((option, ",".join(names)))
        if self.identity != "own":
            pairs.append(("identity", self.identity))
        return urlencode(pairs, safe=",@/")


def _check_zone(zone: str) -> None:
    try:
        zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        raise SchemaError(
            f"`time_zone` {zone!r} is not a time zone; use a name such as 'UTC' or 'Europe/London'."
        ) from None


def _parameters(value: Any) -> str | tuple[str, ...] | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, pl.Expr):
        raise SchemaError("`parameters` must name columns, not an expression.")
    columns = tuple(value)
    bad = [c for c in columns if not isinstance(c, str)]
    if bad:
        raise SchemaError(f"`parameters` must be column names, got {bad[0]!r}.")
    return columns


def _names(value: Iterable[str], option: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    names = tuple(value)
    bad = [n for n in names if not isinstance(n, str) or not n]
    if bad:
        raise SchemaError(f"`{option}` must be event names, got {bad[0]!r}.")
    return names


def _shown(value: Any) -> str:
    if isinstance(value, pl.Expr):
        return str(value)
    if isinstance(value, tuple):
        return repr(list(value))
    return repr(value)
