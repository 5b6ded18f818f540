"""The canonical event frame: one table shape that every source returns and every function takes.

>>> import concursus_lab as cl
>>> list(cl.SCHEMA)[:4]
['aggregate_type', 'aggregate_id', 'event_timestamp', 'stream_id']
>>> cl.IDENTITY
('aggregate_type', 'aggregate_id', 'event_timestamp', 'stream_id')
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl

from concursus_lab.common.text import clip
from concursus_lab.common.time import EPOCH_UNITS, epoch_readings, when
from concursus_lab.exceptions import SchemaError
from concursus_lab.frame import canonical_json
from concursus_lab.frame.suggest import fitting

TIME = pl.Datetime("us", "UTC")

#: Column name -> polars dtype of the canonical event frame, in order.
SCHEMA: pl.Schema = pl.Schema(
    {
        "aggregate_type": pl.String,
        "aggregate_id": pl.String,
        "event_timestamp": TIME,
        "stream_id": pl.String,
        "processing_id": pl.String,
        "processing_timestamp": TIME,
        "name": pl.String,
        "version": pl.String,
        "parameters": pl.String,
        "characteristics": pl.Int32,
    }
)
COLUMNS: tuple[str, ...] = tuple(SCHEMA)

#: The optional identity columns, recognised by name after the ten when a frame has them:
#: an event's position within its aggregate, and an id the data names for each event
#: (``identity.py`` says how they identify events; neither may hold nulls).
OPTIONAL: pl.Schema = pl.Schema({"sequence": pl.Int64, "event_id": pl.String})

#: Columns that may hold nulls (an event not yet logged has no processing id).
NULLABLE = frozenset({"processing_id"})

#: ``characteristics`` values, as Concursus sets them.
INITIAL, TERMINAL, NEITHER = 1, 2, 0

#: The times a frame may hold: what Python's datetime (and so every reader) can represent.
FIRST_TIME = dt.datetime(1, 1, 1, tzinfo=dt.UTC)
LAST_TIME = dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC)

_MAX_SHOWN = 3


def columns_of(frame: pl.DataFrame | pl.LazyFrame) -> tuple[str, ...]:
    """The canonical columns, then the optional identity columns the frame has.

    >>> import concursus_lab as cl
    >>> columns_of(cl.sample.parcels(1, seed=1)) == tuple(cl.SCHEMA)
    True
    """
    names = frame.collect_schema().names() if isinstance(frame, pl.LazyFrame) else frame.columns
    return (*COLUMNS, *(c for c in OPTIONAL if c in names))


def empty() -> pl.DataFrame:
    """An event frame with no rows and the canonical schema."""
    return pl.DataFrame(schema=SCHEMA)


def validate(frame: pl.DataFrame, *, check_parameters: bool = True) -> pl.DataFrame:
    """Check that ``frame`` is a canonical event frame; raise :class:`SchemaError` if not.

    Every problem is named in one message: missing columns, wrong dtypes (naive timestamps
    included), nulls where none may be, empty ids or names, ``characteristics`` other than
    0/1/2, and ``parameters`` values that are not a JSON object or that a source could not
    read back once written (nested too deeply, a number beyond what a double holds). The
    optional identity columns (:data:`OPTIONAL`: ``sequence``, Int64, and ``event_id``, a
    non-empty String, neither null) are checked when present. Extra columns are allowed and
    kept after the canonical ones.

    Returns the frame with the canonical columns first, then the optional identity columns
    it has (the same frame when already so).

    >>> import concursus_lab as cl
    >>> cl.frame.validate(cl.sample.parcels(3, seed=1)).columns == list(cl.SCHEMA)
    True
    >>> cl.frame.validate(cl.sample.parcels(3, seed=1).drop("name"))
    Traceback (most recent call last):
    ...
    concursus_lab.exceptions.SchemaError: not a canonical event frame:
      - column `name` is missing (expected String)
    """
    if isinstance(frame, pl.LazyFrame):
        raise SchemaError("`frame` is a LazyFrame; call `.collect()` first, then validate.")
    if not isinstance(frame, pl.DataFrame):
        hint = (
            " Convert it with `cl.from_pandas(df)`."
            if type(frame).__module__.startswith("pandas")
            else ""
        )
        raise SchemaError(f"`frame` must be a polars DataFrame, got {type(frame).__name__}.{hint}")
    problems = _dtype_problems(frame)
    if not problems:
        problems = _value_problems(frame, check_parameters=check_parameters)
    if problems:
        raise SchemaError(
            "not a canonical event frame:\n" + "\n".join(f"  - {p}" for p in problems)
        )
    first = columns_of(frame)
    if tuple(frame.columns[: len(first)]) == first:
        return frame
    extra = [c for c in frame.columns if c not in first]
    return frame.select(*first, *extra)


def for_writing(
    frame: pl.DataFrame, *, milliseconds: str | None = None, keeps_identity: bool = False
) -> pl.DataFrame:
    """What every source's ``append`` writes: validated, canonical columns only (and the
    optional identity columns where the destination keeps them), parameters canonical
    (compact, keys sorted). Raises :class:`SchemaError` before anything is written.

    ``milliseconds`` names a store that keeps event times to the millisecond (Cassandra,
    Concursus JSON); finer event times are refused, since event time is part of identity.
    ``keeps_identity``: the destination keeps ``sequence`` and ``event_id`` (the local store,
    a memory source); elsewhere a frame that has them is refused, since read back its events
    would be identified another way (Concursus's identity), not as they were written.
    """
    frame = validate(frame, check_parameters=False)
    optional = [c for c in OPTIONAL if c in frame.columns]
    if optional and not keeps_identity:
        raise SchemaError(
            f"{milliseconds or 'this source'} has no place for the identity column(s) "
            f"{optional}: read back, these events would be identified by Concursus's identity "
            "(aggregate type, id, event time, stream id) instead, and different events that "
            "share one would conflict. Append them to a local store, which keeps the "
            f"columns; or, if Concursus's identity tells them apart, drop them first: "
            f"frame.drop({optional})."
        )
    frame = frame.select(*COLUMNS, *optional)
    parameters, n_bad, _ = normalise_parameters(frame["parameters"])
    if n_bad:
        validate(frame)  # raises, naming the rows
    if milliseconds is not None:
        finer = frame.select((pl.col("event_timestamp").dt.epoch("us") % 1000 != 0).sum()).item()
        if finer:
            raise SchemaError(
                f"{milliseconds} keeps event times to the millisecond and `event_timestamp` is "
                f"part of an event's identity; {finer} event(s) have finer times. Truncate "
                "them first: pl.col('event_timestamp').dt.truncate('1ms')."
            )
    return frame.with_columns(parameters)


def _dtype_problems(frame: pl.DataFrame) -> list[str]:
    problems = []
    schema = frame.schema
    others = pl.Schema({c: t for c, t in schema.items() if c not in SCHEMA})
    expected_types = {**SCHEMA, **{c: t for c, t in OPTIONAL.items() if c in schema}}
    for column, expected in expected_types.items():
        if column not in schema:
            near = fitting(column, others)
            hint = f"; did you mean to rename {near[0]!r}?" if near else ""
            problems.append(f"column `{column}` is missing (expected {expected}){hint}")
            continue
        actual = schema[column]
        if actual == expected:
            continue
        if isinstance(expected, pl.Datetime) and isinstance(actual, pl.Datetime):
            if actual.time_zone is None:
                problems.append(
                    f"column `{column}` holds naive timestamps ({actual}); times must be UTC: "
                    f"use pl.col({column!r}).dt.replace_time_zone('UTC') if they are UTC"
                )
            else:
                problems.append(
                    f"column `{column}` is {actual}; expected {expected}: "
                    f"use pl.col({column!r}).dt.convert_time_zone('UTC')"
                    f".dt.cast_time_unit('us')"
                )
        elif isinstance(expected, pl.Datetime) and actual.is_integer():
            problems.append(_epoch_problem(frame, column, actual))
        else:
            problems.append(
                f"column `{column}` is {actual}; expected {expected}: "
                f"use pl.col({column!r}).cast({_dtype_code(expected)})"
            )
    return problems


def _epoch_problem(frame: pl.DataFrame, column: str, actual: Any) -> str:
    """The fix for a time column of epoch numbers: say their unit (``pl.from_epoch``), with
    what the first of them is in the unit where it is a time of this century."""
    first = frame[column].drop_nulls().head(1).to_list()
    readings = epoch_readings(int(first[0])) if first else {}
    unit = next(iter(readings), "ms")
    seen = (
        f" ({first[0]} read as epoch {EPOCH_UNITS[unit][0]} is {when(readings[unit])} UTC)"
        if readings
        else ""
    )
    return (
        f"column `{column}` is {actual}; expected {SCHEMA[column]}: if it holds epoch numbers, "
        f"say their unit ('s', 'ms', 'us' or 'ns'): pl.from_epoch({column!r}, "
        f"time_unit={unit!r}).dt.replace_time_zone('UTC').dt.cast_time_unit('us'){seen}"
    )


def _value_problems(frame: pl.DataFrame, *, check_parameters: bool) -> list[str]:
    problems: list[str] = []
    if frame.height == 0:
        return problems
    required = [c for c in columns_of(frame) if c not in NULLABLE]
    keyed = (
        "aggregate_type",
        "aggregate_id",
        "name",
        *(["event_id"] * ("event_id" in frame.columns)),
    )
    bad_char = ~pl.col("characteristics").is_in([INITIAL, TERMINAL, NEITHER])
    timed = ("event_timestamp", "processing_timestamp")

    def outside(column: str) -> pl.Expr:
        return ~pl.col(column).is_between(FIRST_TIME, LAST_TIME)

    # every count in one pass over the frame (one select runs them side by side)
    counts = frame.select(
        *(pl.col(c).null_count().alias(f"null {c}") for c in required),
        *((pl.col(c) == "").sum().alias(f"empty {c}") for c in keyed),
        bad_char.sum().alias("characteristics"),
        *(outside(c).sum().alias(f"outside {c}") for c in timed),
    ).row(0, named=True)
    for column in required:
        if count := counts[f"null {column}"]:
            row = _first_row(frame, pl.col(column).is_null())
            problems.append(f"column `{column}` has {count} null(s), first at row {row}")
    for column in keyed:
        if bad := counts[f"empty {column}"]:
            row = _first_row(frame, pl.col(column) == "")
            problems.append(
                f"column `{column}` has {bad} empty value(s), first at row {row}; "
                + (
                    "an empty id cannot tell events apart: drop the column to identify "
                    "events by their content"
                    if column == "event_id"
                    else "Cassandra cannot key an event on an empty string"
                )
            )
    if count := counts["characteristics"]:
        row = _first_row(frame, bad_char)
        value = frame["characteristics"][row]
        problems.append(
            f"column `characteristics` must be 0 (neither), 1 (initial) or 2 (terminal); "
            f"{count} row(s) are not, first at row {row}: {value!r}"
        )
    for column in timed:
        if count := counts[f"outside {column}"]:
            row = _first_row(frame, outside(column))
            value = frame[column].slice(row, 1).cast(pl.String).item()  # no Python datetime
            problems.append(
                f"column `{column}` has {count} time(s) outside years 1 to 9999, first at row "
                f"{row}: {value}; no source reads those back (Python's datetime, "
                "Java's Instant as Concursus writes it). Fix or drop those rows"
            )
    if check_parameters:
        problems.extend(_parameter_problems(frame["parameters"]))
    return problems


def _parameter_problems(parameters: pl.Series) -> list[str]:
    _, n_bad, bad_rows = normalise_parameters(parameters)
    if not n_bad:
        return []
    shown = "; ".join(f"row {r}: {clip(t)!r} ({why})" for r, t, why in bad_rows)
    wrap = any("not an object" in why for _, _, why in bad_rows)
    return [
        f"column `parameters` must hold one JSON object per row that every source writes "
        f"and reads back (nested at most {canonical_json.MAX_DEPTH} levels, numbers within "
        f"what a double holds); {n_bad} row(s) do not, {shown}"
        + (". Wrap other values in an object, e.g. '{\"value\": 42}'" if wrap else "")
    ]


def normalise_parameters(
    parameters: pl.Series,
) -> tuple[pl.Series, int, list[tuple[int, str, str]]]:
    """Parse every ``parameters`` text once and write it canonically
    (:mod:`concursus_lab.frame.canonical_json`: compact, keys sorted, numbers exact).

    Returns the canonical texts, the number of rows that have no canonical form (not a
    JSON object, or nested too deeply), and the first few of those as ``(row, text,
    reason)``; those rows are passed through unchanged.
    """
    out, reasons = canonical_json.canonical_column(parameters)
    bad = reasons.is_not_null()
    shown = pl.DataFrame({"text": parameters, "reason": reasons}).with_row_index("row").filter(bad)
    bad_rows = [(r, t, why) for r, t, why in shown.head(_MAX_SHOWN).rows()]
    return out, int(bad.sum()), bad_rows


def _first_row(frame: pl.DataFrame, predicate: pl.Expr) -> int:
    return int(frame.select(predicate.fill_null(False).arg_true().first()).item())


def _dtype_code(dtype: Any) -> str:
    return f"pl.{dtype}"


def to_pandas(frame: pl.DataFrame) -> Any:
    """The event frame as a pandas DataFrame, times as ``datetime64[us, UTC]``.

    >>> import concursus_lab as cl
    >>> str(cl.frame.to_pandas(cl.sample.parcels(2, seed=1))["event_timestamp"].dtype)
    'datetime64[us, UTC]'
    """
    if not isinstance(frame, pl.DataFrame):
        raise SchemaError(f"`frame` must be a polars DataFrame, got {type(frame).__name__}.")
    return frame.to_pandas()


def from_pandas(df: Any) -> pl.DataFrame:
    """A pandas event table as a validated canonical polars frame.

    Datetime columns in any unit are brought to microseconds; aware times in other zones are
    converted to UTC; naive ones are refused (say what zone they are in with
    ``df[col].dt.tz_localize(...)`` first). Integer ``characteristics`` become Int32.
    """
    try:
        frame = pl.from_pandas(df)
    except (TypeError, ValueError) as exc:
        raise SchemaError(f"`df` could not be read as a table: {exc}") from exc
    found = (_pandas_fix(frame, c, t) for c, t in SCHEMA.items() if c in frame.columns)
    fixes = [fix for fix in found if fix is not None]
    if fixes:
        frame = frame.with_columns(fixes)
    if len([c for c in SCHEMA if c not in frame.columns]) > 2:
        raise SchemaError(
            f"`df` is not a canonical event frame (it has {', '.join(frame.columns[:8])}): map "
            "its own columns onto events with cl.from_pandas(df, cl.Mapping(aggregate_type=..., "
            "aggregate_id=..., name=..., event_time=...)); see docs/own-events.md."
        )
    return validate(frame)


def _pandas_fix(frame: pl.DataFrame, column: str, expected: Any) -> pl.Expr | None:
    """The conversion a pandas column needs to be canonical, or a pandas-worded error."""
    actual = frame.schema[column]
    if isinstance(expected, pl.Datetime) and isinstance(actual, pl.Datetime):
        if actual.time_zone is None:
            raise SchemaError(
                f"column `{column}` holds naive times ({actual}); times must be UTC: say which "
                f"zone they are in first, df[{column!r}] = df[{column!r}].dt.tz_localize('UTC') "
                "(or the zone they were written in)."
            )
        return pl.col(column).dt.convert_time_zone("UTC").dt.cast_time_unit("us")
    if column == "characteristics" and actual.is_integer():
        bad = frame.filter(~pl.col(column).is_in([INITIAL, TERMINAL, NEITHER]))
        if bad.height:
            raise SchemaError(
                f"column `characteristics` must be 0 (neither), 1 (initial) or 2 (terminal); "
                f"{bad.height} row(s) are not, e.g. {bad[column][0]!r}."
            )
        return pl.col(column).cast(pl.Int32)
    if expected == pl.String and actual == pl.Null:
        return pl.col(column).cast(pl.String)
    return None
