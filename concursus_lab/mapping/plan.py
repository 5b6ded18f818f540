"""A mapping applied to data: one lazy query that gives the canonical frame and the quarantine.

:class:`Plan` works out, from the mapping and the data's schema (no rows read yet), one
polars expression per canonical column and one that gives each row's reason for not mapping
(no aggregate id, a time that is not a time, ...). :meth:`Plan.run` runs them over a
LazyFrame (a scan of files, a frame, a decoded batch of records) in one pass, then:

* refuses, naming the values, what needs a fact the mapping did not give (naive times
  without ``time_zone``, epoch numbers without ``time_unit``): never guessed;
* puts every row that does not map in the quarantine with its reason and the row as JSON;
* fills the identity columns (a content identity when the data names no sequence or id).

>>> import polars as pl, concursus_lab as cl
>>> orders = pl.DataFrame({
...     "order_id": [7, 7, None], "event_type": ["created", "paid", "paid"],
...     "occurred_at": ["2026-03-01T10:00Z", "2026-03-01T10:00Z", "2026-03-01T11:00Z"],
...     "amount": [12.5, 12.5, 3.0],
... })
>>> mapping = cl.Mapping(aggregate_type="order", aggregate_id="order_id",
...                      name="event_type", event_time="occurred_at", initial=["created"])
>>> mapped = Plan(mapping, orders.schema).run(orders.lazy())
>>> mapped.events.select("aggregate_id", "name", "parameters", "characteristics").rows()
[('7', 'created', '{"amount":12.5}', 1), ('7', 'paid', '{"amount":12.5}', 0)]
>>> mapped.quarantine.select("row", "reason").rows()
[(2, 'no aggregate id: order_id is null')]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import polars as pl

from concursus_lab.common.text import plural
from concursus_lab.exceptions import SchemaError
from concursus_lab.frame import canonical_json
from concursus_lab.frame.identity import content_ids
from concursus_lab.frame.schema import COLUMNS, FIRST_TIME, LAST_TIME
from concursus_lab.mapping.fields import Resolved, resolve
from concursus_lab.mapping.quarantine import quarantine
from concursus_lab.mapping.spec import Mapping
from concursus_lab.mapping.times import TimeExpr, chosen_format, time_expr

_ROW, _REASON, _FAILED = "__row", "__reason", "__failed"
#: Values of a text time column read first, to choose the format the rest is read with.
_SAMPLE = 1_000
_ID_DTYPES = (pl.String, pl.Categorical, pl.Enum)


@dataclasses.dataclass(frozen=True)
class Mapped:
    """What a mapped read gives: the canonical events and the rows that did not map."""

    events: pl.DataFrame
    quarantine: pl.DataFrame


class Plan:
    """``mapping`` over data of ``schema``; see the module docstring.

    Parameters
    ----------
    processing
        The source's own processing time (a UTC microsecond expression, e.g. a Kafka record's
        timestamp), used when the mapping does not map one; None: the event time.
    reserved
        Columns that are the source's, not the data's (never parameters).
    extra
        Columns the source adds after the canonical ones (a Kafka partition and offset).
    canonical
        Whether a whole-text ``parameters`` column holds canonical JSON already (a source
        that wrote it so, such as a journal reader): it is then taken as it is.
    """

    def __init__(
        self,
        mapping: Mapping,
        schema: pl.Schema,
        *,
        processing: pl.Expr | None = None,
        reserved: Iterable[str] = (),
        extra: dict[str, pl.Expr] | None = None,
        canonical: bool = False,
    ) -> None:
        self.mapping, self.schema = mapping, schema
        self._reserved = set(reserved)
        self._extra = dict(extra or {})
        self._fields: dict[str, Resolved] = {}
        for field in (
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
        ):
            value = getattr(mapping, field)
            if value is not None:
                self._fields[field] = resolve(value, schema, field)
        if isinstance(mapping.aggregate_type, pl.Expr):
            self._fields["aggregate_type"] = resolve(
                mapping.aggregate_type, schema, "aggregate_type"
            )
        self._check_kinds()
        self._formats: dict[str, str | None] = {}
        self._made: dict[tuple[str, str | None], TimeExpr] = {}
        self._selected: tuple[list[pl.Expr], list[pl.Expr]] | None = None
        self._time_fields = [r for r in ("event_time", "processing_time") if r in self._fields]
        for role in self._time_fields:  # what the schema alone can refuse, refused now
            self._time(role, None)
        self._times: dict[str, TimeExpr] = {}
        self._processing = processing
        self.parameter_columns = self._parameter_columns()
        self._whole_text = (
            isinstance(mapping.parameters, str)
            and self._fields_of_parameters().dtype == pl.String
            and not canonical
        )

    # -- the expressions ----------------------------------------------------------------------

    def _check_kinds(self) -> None:
        for role in ("aggregate_type", "aggregate_id", "name", "stream_id", "version", "event_id"):
            r = self._fields.get(role)
            if r is None:
                continue
            ok = r.dtype in _ID_DTYPES or r.dtype.is_integer() or r.dtype == pl.Null
            if role in ("version", "stream_id"):
                ok = ok or r.dtype.is_numeric()
            if not ok:
                raise SchemaError(
                    f"`{role}` reads {r.column or 'an expression'!r}, which is {r.dtype}: map "
                    "a column of text (or integers), or an expression that gives one."
                )
        sequence = self._fields.get("sequence")
        if sequence is not None and not (
            sequence.dtype.is_integer() or sequence.dtype == pl.String
        ):
            raise SchemaError(
                f"`sequence` reads {sequence.column!r}, which is {sequence.dtype}: a sequence is "
                "an integer per event, counting up within its aggregate."
            )

    def _fields_of_parameters(self) -> Resolved:
        return resolve(self.mapping.parameters, self.schema, "parameters")

    def _parameter_columns(self) -> tuple[str, ...]:
        chosen = self.mapping.parameters
        if isinstance(chosen, str):
            whole = self._fields_of_parameters()
            if not (isinstance(whole.dtype, pl.Struct) or whole.dtype == pl.String):
                raise SchemaError(
                    f"`parameters={chosen!r}` is {whole.dtype}: one column of parameters must be "
                    "a struct or JSON object text; for several columns give a list."
                )
            return ()
        if chosen is None:
            used = {r.column for r in self._fields.values()} | self._reserved
            columns = tuple(sorted(c for c in self.schema if c not in used))
        else:
            missing = [c for c in chosen if c not in self.schema]
            if missing:
                raise SchemaError(
                    f"`parameters` names {missing[0]!r}, which the data does not have; its "
                    f"columns: {', '.join(self.schema)}."
                )
            columns = tuple(sorted(dict.fromkeys(chosen)))
        for column in columns:
            dtype = self.schema[column]
            if dtype in (pl.Binary, pl.Object) or isinstance(dtype, pl.Duration):
                raise SchemaError(
                    f"column {column!r} ({dtype}) cannot be a parameter: JSON has no such value. "
                    "Leave it out (parameters=[...]) or convert it to text first."
                )
        return columns

    def _parameters(self) -> pl.Expr:
        if isinstance(self.mapping.parameters, str):
            whole = self._fields_of_parameters()
            if whole.dtype == pl.String:
                return whole.expr  # JSON text: made canonical once read (exact numbers)
            # a struct read from JSON has every field any row has: null is no parameter
            fields = sorted(f.name for f in whole.dtype.fields)
            return _object({name: whole.expr.struct.field(name) for name in fields})
        # a wide table has a column for every field of every event type: a column that is null
        # in a row is no parameter of that row's event (an Optional field reads it as None)
        return _object({c: pl.col(c) for c in self.parameter_columns})

    def _nested(self) -> bool:
        """Whether parameter values nest structs, whose keys the encoder leaves unsorted."""
        dtypes = (
            [self._fields_of_parameters().dtype]
            if isinstance(self.mapping.parameters, str)
            else [self.schema[c] for c in self.parameter_columns]
        )
        if isinstance(self.mapping.parameters, str) and isinstance(dtypes[0], pl.Struct):
            dtypes = [f.dtype for f in dtypes[0].fields]
        return any(_has_struct(d) for d in dtypes)

    def _text(self, role: str, default: pl.Expr) -> pl.Expr:
        """A text field, its default where it is not mapped or null in a row (a record
        without the header that names its stream is of the default stream)."""
        r = self._fields.get(role)
        return default if r is None else r.expr.cast(pl.String).fill_null(default)

    def columns(self) -> list[pl.Expr]:
        """The canonical columns, the identity columns the mapping names, and the extras."""
        m = self.mapping
        kind = (
            pl.lit(m.aggregate_type, pl.String)
            if isinstance(m.aggregate_type, str)
            else self._fields["aggregate_type"].expr.cast(pl.String)
        )
        event_time = _parsed("event_time")
        if "processing_time" in self._time_fields:
            processing = _parsed("processing_time")
        else:
            processing = event_time if self._processing is None else self._processing
        name = self._fields["name"].expr.cast(pl.String)
        if "characteristics" in self._fields:
            kinds = self._fields["characteristics"].expr.cast(pl.Int32, strict=False)
        else:
            kinds = name.replace_strict(m.kinds(), default=0, return_dtype=pl.Int32)
        exprs = [
            kind.alias("aggregate_type"),
            self._fields["aggregate_id"].expr.cast(pl.String).alias("aggregate_id"),
            event_time.alias("event_timestamp"),
            self._text("stream_id", pl.lit("")).alias("stream_id"),
            self._text("processing_id", pl.lit(None, pl.String)).alias("processing_id"),
            processing.alias("processing_timestamp"),
            name.alias("name"),
            self._text("version", pl.lit("0")).alias("version"),
            self._parameters().alias("parameters"),
            kinds.alias("characteristics"),
        ]
        if "sequence" in self._fields:
            exprs.append(
                self._fields["sequence"].expr.cast(pl.Int64, strict=False).alias("sequence")
            )
        if "event_id" in self._fields:
            exprs.append(self._fields["event_id"].expr.cast(pl.String).alias("event_id"))
        exprs.extend(e.alias(n) for n, e in self._extra.items())
        return exprs

    def reason(self) -> pl.Expr:
        """Why a row does not map (null when it does): the first problem, with its value."""
        checks = self.checks()
        if not checks:
            return pl.lit(None, pl.String)
        return pl.coalesce([pl.when(c.fill_null(False)).then(why) for c, why in checks])

    def checks(self) -> list[tuple[pl.Expr, pl.Expr]]:
        """Each way a row may fail to map: whether it does (null: it does not), and why."""
        checks: list[tuple[pl.Expr, pl.Expr]] = []
        for role in ("aggregate_type", "aggregate_id", "name", "event_id"):
            r = self._fields.get(role)
            if r is not None:
                text = r.expr.cast(pl.String)
                label = r.column or "the expression"
                checks.append((text.is_null(), pl.lit(f"no {_words(role)}: {label} is null")))
                checks.append((text == "", pl.lit(f"no {_words(role)}: {label} is empty")))
        for role in self._time_fields:
            r, parsed = self._fields[role], _parsed(role)
            shown = r.expr.cast(pl.String)
            checks.append((r.expr.is_null(), pl.lit(f"no {_words(role)}: {r.column} is null")))
            checks.append(
                (parsed.is_null(), pl.format(f"{_words(role)} {{}} is not a time", _quoted(shown)))
            )
            outside = ~parsed.is_between(FIRST_TIME, LAST_TIME)
            checks.append(
                (outside, pl.format(f"{_words(role)} {{}} is outside years 1 to 9999", shown))
            )
        sequence = self._fields.get("sequence")
        if sequence is not None:
            raw = sequence.expr
            checks.append((raw.is_null(), pl.lit(f"no sequence: {sequence.column} is null")))
            checks.append(
                (
                    raw.cast(pl.Int64, strict=False).is_null(),
                    pl.format("sequence {} is not an integer", _quoted(raw.cast(pl.String))),
                )
            )
        kinds = self._fields.get("characteristics")
        if kinds is not None:
            value = kinds.expr.cast(pl.Int32, strict=False)
            checks.append(
                (
                    ~value.is_in([0, 1, 2]).fill_null(False),
                    pl.format("characteristics {} is not 0, 1 or 2", kinds.expr.cast(pl.String)),
                )
            )
        for column in self.parameter_columns:
            if self.schema[column].is_float():
                bad = pl.col(column).is_nan() | pl.col(column).is_infinite()
                checks.append(
                    (
                        bad,
                        pl.format(
                            f"parameter {column!r} is {{}}, which JSON cannot hold", pl.col(column)
                        ),
                    )
                )
        return checks

    def _time(self, role: str, data: pl.LazyFrame | None) -> TimeExpr:
        """The time field ``role`` as an expression, for the format ``data``'s first values
        choose (a run after the first tries the last run's format first: one parse of the
        sample, not four); made once per format, for every chunk of a read."""
        r, m = self._fields[role], self.mapping
        fmt = None
        if data is not None and r.dtype == pl.String:  # the first values choose a format
            sample = data.select(r.expr).drop_nulls().head(_SAMPLE).collect().to_series()
            fmt = chosen_format(sample.to_list(), prefer=self._formats.get(role))
            self._formats[role] = fmt
        made = self._made.get((role, fmt))
        if made is None:
            made = self._made[role, fmt] = time_expr(
                r.expr,
                r.dtype,
                role=role,
                column=r.column,
                unit=m.time_unit,
                zone=m.time_zone,
                fmt=fmt,
            )
        return made

    def parsed(self, data: pl.LazyFrame) -> pl.LazyFrame:
        """``data`` with each time field parsed once, for :meth:`columns` and :meth:`reason`."""
        self._times = {role: self._time(role, data) for role in self._time_fields}
        for t in self._times.values():
            data = t.over(data)
        return data.with_columns(t.expr.alias(_time(role)) for role, t in self._times.items())

    def canonical(self, data: pl.LazyFrame) -> pl.LazyFrame:
        """The canonical columns of ``data``, unchecked: what a read computes, without the
        checks that find the rows that do not map (for measuring those checks' cost)."""
        return self.parsed(data).select(self.columns())

    # -- running it ---------------------------------------------------------------------------

    def run(self, data: pl.LazyFrame, *, prefilter: pl.Expr | None = None) -> Mapped:
        """Map ``data`` (lazily read; ``prefilter`` on its own columns narrows the read)."""
        if prefilter is not None:
            data = data.filter(prefilter)
        data = data.with_row_index(_ROW)
        parsed = self.parsed(data)
        flags = self._flags()
        if self._selected is None:  # the same for every run: made once
            self._selected = (self.columns(), [c.fill_null(False) for c, _ in self.checks()])
        columns, failed = self._selected
        out = parsed.select(
            *columns,
            (pl.any_horizontal(failed) if failed else pl.lit(False)).alias(_FAILED),
            pl.col(_ROW).cast(pl.Int64),
            *(f.alias(n) for n, f in flags.items()),
        ).collect()
        self._refuse_unsaid(out, parsed, flags)
        out = out.drop(list(flags))
        bad = self._reasons(parsed, out.filter(pl.col(_FAILED))[_ROW])
        events = out.filter(~pl.col(_FAILED)).drop(_FAILED)
        if self._whole_text or self._nested():
            events, more = _canonical_parameters(events)
            bad = pl.concat([bad.select(_REASON, _ROW), more]) if more.height else bad
        if (
            self.mapping.identity == "own"
            and "sequence" not in self._fields
            and "event_id" not in self._fields
        ):
            events = events.with_columns(content_ids(events).alias("event_id"))
        ordered = [*COLUMNS, *(c for c in ("sequence", "event_id") if c in events.columns)]
        return Mapped(
            events.select(*ordered, *self._extra), quarantine(bad, data, reason=_REASON, row=_ROW)
        )

    def _reasons(self, parsed: pl.LazyFrame, rows: pl.Series) -> pl.DataFrame:
        """The reason of each of ``rows`` (rows a check failed for), worked out for those rows
        only: writing a reason's text costs more than all the checks."""
        if rows.is_empty():
            return pl.DataFrame(schema={_REASON: pl.String, _ROW: pl.Int64})
        return (
            parsed.filter(pl.col(_ROW).is_in(rows.implode()))
            .select(self.reason().alias(_REASON), pl.col(_ROW).cast(pl.Int64))
            .collect()
        )

    def _flags(self) -> dict[str, pl.Expr]:
        flags = {}
        for role, t in self._times.items():
            if t.naive is not None:
                flags[f"__naive {role}"] = t.naive
            if t.numbers is not None:
                flags[f"__numbers {role}"] = t.numbers
        return flags

    def _refuse_unsaid(self, out: pl.DataFrame, data: pl.LazyFrame, flags: dict) -> None:
        for flag, expr in flags.items():
            count = int(out[flag].sum())
            if not count:
                continue
            kind, role = flag.removeprefix("__").split(" ", 1)
            r = self._fields[role]
            shown = data.filter(expr.fill_null(False)).select(r.expr).head(2).collect()
            values = ", ".join(repr(v) for v in shown.to_series().to_list())
            if kind == "naive":
                raise SchemaError(
                    f"{plural(count, 'value')} of {r.column!r} (`{role}`) have no time zone "
                    f"({values}) and the mapping names none: say which zone they are in, "
                    "cl.Mapping(..., time_zone='UTC') (or 'Europe/London', ...); it is never "
                    "assumed."
                )
            raise SchemaError(
                f"{plural(count, 'value')} of {r.column!r} (`{role}`) are numbers ({values}): "
                "say their unit, cl.Mapping(..., time_unit='s') for epoch seconds, or 'ms', "
                "'us', 'ns'; a unit is never guessed from the size of a number."
            )


def _time(role: str) -> str:
    return f"__time {role}"


def _parsed(role: str) -> pl.Expr:
    """A time field, parsed once by :meth:`Plan.parsed`."""
    return pl.col(_time(role))


_WORDS = {
    "aggregate_type": "aggregate type",
    "aggregate_id": "aggregate id",
    "name": "event name",
    "event_id": "event id",
    "event_time": "event time",
    "processing_time": "processing time",
}


def _words(role: str) -> str:
    return _WORDS[role]


def _object(members: dict[str, pl.Expr]) -> pl.Expr:
    """A JSON object of the members that are not null, in the order given."""
    parts = [
        pl.when(value.is_not_null()).then(
            pl.struct(value.alias(name)).struct.json_encode().str.slice(1).str.strip_suffix("}")
        )
        for name, value in members.items()
    ]
    if not parts:
        return pl.lit("{}")
    inner = pl.concat_str(parts, separator=",", ignore_nulls=True)
    return pl.concat_str(pl.lit("{"), inner, pl.lit("}"))


def _quoted(text: pl.Expr) -> pl.Expr:
    return pl.concat_str([pl.lit("'"), text, pl.lit("'")])


def _has_struct(dtype: pl.DataType) -> bool:
    if isinstance(dtype, pl.Struct):
        return True
    if isinstance(dtype, pl.List | pl.Array):
        return _has_struct(dtype.inner)
    return False


def _canonical_parameters(events: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Parameters written canonically (keys sorted at every depth, numbers exact); rows whose
    text is not a JSON object are moved out, with the reason."""
    texts, why = canonical_json.canonical_column(events["parameters"])
    why = (
        pl.when(texts.is_null())
        .then(pl.lit("no parameters: the column is null"))
        .otherwise(pl.format("parameters {} are {}", _quoted(texts.str.slice(0, 40)), why))
    )
    events = events.with_columns(texts, why.alias(_REASON))
    moved = events.filter(pl.col(_REASON).is_not_null()).select(_REASON, _ROW)
    return events.filter(pl.col(_REASON).is_null()).drop(_REASON), moved
