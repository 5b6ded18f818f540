"""A time column of the user's data as UTC microseconds: units and zones said, never guessed.

Four shapes of time reach a mapping, and each needs one fact the data may not carry:

* **aware times** (a datetime column with a zone, or text with an offset such as
  ``2026-03-01T10:00:00Z``): converted to UTC;
* **naive times** (a datetime column without a zone, text without an offset, a date): read in
  the mapping's ``time_zone``, refused when it names none;
* **epoch numbers** (``1714730000``, as numbers or digits in text): read in the mapping's
  ``time_unit``, refused when it names none; a magnitude never decides the unit;
* anything else is not a time: that row goes to the quarantine with its value.

:func:`time_expr` gives the expression and the checks that depend on values (rows that are
naive or numbers without what they need), which :mod:`~concursus_lab.mapping.plan` counts once
the data is read, so the refusal can show the values.

>>> import polars as pl, datetime as dt
>>> data = pl.DataFrame({"at": ["2026-03-01T10:00:00Z", "2026-03-01T11:00:00+01:00", "soon"]})
>>> t = time_expr(pl.col("at"), pl.String, role="event_time", column="at", unit=None, zone=None)
>>> t.over(data.lazy()).select(t.expr.dt.to_string()).collect()["at"].to_list()
['2026-03-01 10:00:00.000000+00:00', '2026-03-01 10:00:00.000000+00:00', None]
>>> unread = t.expr.is_null() & pl.col("at").is_not_null()
>>> t.over(data.lazy()).select(unread).collect()["at"].to_list()
[False, False, True]
"""

from __future__ import annotations

import dataclasses

import polars as pl

from concursus_lab.exceptions import SchemaError

UTC_US = pl.Datetime("us", "UTC")

#: Text that is an epoch number (digits, maybe a fraction).
_NUMBER = r"^\s*-?\d+(?:\.\d*)?\s*$"
#: Text that ends in a UTC offset after a time of day (``10:00Z``, ``10:00:00.5+01:00``).
_OFFSET = r"\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:[zZ]|[+-]\d{2}(?::?\d{2})?)\s*$"

#: ISO 8601 with an offset (``Z``, ``+01:00``, ``+0100``), and without: what a sample may
#: choose to read with first (:func:`chosen_format`).
_AWARE = ("%Y-%m-%dT%H:%M:%S%.f%#z", "%Y-%m-%d %H:%M:%S%.f%#z")
_NAIVE = ("%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f")

_PER_US = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": 0.001}


@dataclasses.dataclass(frozen=True)
class TimeExpr:
    """A time field as UTC microseconds (null where the value is not a time), and the rows that
    need a fact the mapping did not give: naive times without a zone, numbers without a unit.

    ``steps`` are columns to add one after the other before ``expr`` can be evaluated (each
    reads the ones before it, so nothing is worked out twice): see :meth:`over`.
    """

    expr: pl.Expr
    naive: pl.Expr | None = None
    numbers: pl.Expr | None = None
    steps: tuple[tuple[str, pl.Expr], ...] = ()

    def over(self, data: pl.LazyFrame) -> pl.LazyFrame:
        """``data`` with the columns ``expr`` reads added, step by step."""
        for name, step in self.steps:
            data = data.with_columns(step.alias(name))
        return data


def time_expr(
    source: pl.Expr,
    dtype: pl.DataType,
    *,
    role: str,
    column: str | None,
    unit: str | None,
    zone: str | None,
    sample: list[str] | None = None,
    fmt: str | None = None,
) -> TimeExpr:
    """``source`` (of ``dtype``) as a UTC microsecond time; see the module docstring.

    ``sample`` (some of a text column's values) chooses the format tried first; or ``fmt``
    names it (:func:`chosen_format` of a sample).
    """
    label = repr(column) if column else f"`{role}`"
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is not None:
            return TimeExpr(source.dt.convert_time_zone("UTC").dt.cast_time_unit("us"))
        if zone is None:
            raise SchemaError(
                f"{label} (`{role}`) holds naive times ({dtype}): say which zone they are in, "
                f"cl.Mapping(..., time_zone='UTC') (or 'Europe/London', ...); it is never assumed."
            )
        return TimeExpr(_localised(source.dt.cast_time_unit("us"), zone))
    if dtype == pl.Date:
        if zone is None:
            raise SchemaError(
                f"{label} (`{role}`) holds dates: say which zone their midnight is in, "
                f"cl.Mapping(..., time_zone='UTC'); it is never assumed."
            )
        return TimeExpr(_localised(source.cast(pl.Datetime("us")), zone))
    if dtype.is_numeric():
        if unit is None:
            raise SchemaError(
                f"{label} (`{role}`) holds numbers ({dtype}): say their unit, "
                f"cl.Mapping(..., time_unit='s') for epoch seconds, or 'ms', 'us', 'ns'; a "
                "unit is never guessed from the size of a number."
            )
        return TimeExpr(_epoch(source, unit, integer=dtype.is_integer()))
    if dtype == pl.String:
        chosen = fmt if sample is None else chosen_format(sample)
        return _text(source, unit, zone, f"__{role}", chosen)
    raise SchemaError(
        f"{label} (`{role}`) is {dtype}, which is not a time: map a column of datetimes, "
        "dates, ISO 8601 text or epoch numbers."
    )


def _localised(naive: pl.Expr, zone: str) -> pl.Expr:
    # a time that does not exist in the zone (a spring-forward gap) is not a time: null
    return naive.dt.replace_time_zone(
        zone, ambiguous="earliest", non_existent="null"
    ).dt.convert_time_zone("UTC")


def _epoch(numbers: pl.Expr, unit: str, *, integer: bool | pl.Expr) -> pl.Expr:
    """Epoch numbers in ``unit`` as UTC microseconds: integers exactly, fractions rounded."""
    whole = numbers.cast(pl.Int64, strict=False)
    exact = whole // 1000 if unit == "ns" else whole * int(_PER_US[unit])
    rounded = (numbers.cast(pl.Float64, strict=False) * _PER_US[unit]).round(0).cast(pl.Int64)
    if isinstance(integer, bool):
        micros = exact if integer else rounded
    else:
        micros = pl.when(integer).then(exact).otherwise(rounded)
    return pl.from_epoch(micros, time_unit="us").dt.replace_time_zone("UTC")


def chosen_format(sample: list[str], prefer: str | None = None) -> str | None:
    """The common ISO 8601 format that reads the most of ``sample`` (None: none reads any);
    ``prefer`` when it reads all of it (a format read before: one parse instead of four).

    Reading with a format is about seven times faster than polars working one out per
    value, so a read tries the sample's format first and infers only for what it misses.

    >>> chosen_format(["2026-03-01T10:00:00.123Z", "2026-03-01T10:00:01Z"])
    '%Y-%m-%dT%H:%M:%S%.f%#z'
    >>> chosen_format(["2026-03-01 10:00"]) is None
    True
    """
    values = pl.Series(sample, dtype=pl.String).drop_nulls()
    if (
        prefer is not None
        and values.len()
        and values.str.to_datetime(prefer, time_unit="us", strict=False).is_not_null().all()
    ):
        return prefer
    best, read = None, 0
    for fmt in _AWARE + _NAIVE:
        count = values.str.to_datetime(fmt, time_unit="us", strict=False).is_not_null().sum()
        if count > read:
            best, read = fmt, count
    return best


def _text(
    text: pl.Expr, unit: str | None, zone: str | None, prefix: str, fmt: str | None
) -> TimeExpr:
    steps: list[tuple[str, pl.Expr]] = []

    def step(name: str, expr: pl.Expr) -> pl.Expr:
        steps.append((f"{prefix} {name}", expr))
        return pl.col(f"{prefix} {name}")

    aware_format = fmt is not None and fmt.endswith("%#z")
    if fmt is not None:
        fast = step("fast", text.str.to_datetime(fmt, time_unit="us", strict=False))
        rest = step("rest", pl.when(fast.is_null()).then(text))
    else:
        rest = text
    # what the format missed: each shape parsed from its own rows only
    number = step("number", rest.str.contains(_NUMBER).fill_null(False))
    offset = step("offset", rest.str.contains(_OFFSET).fill_null(False) & ~number)
    plain = rest.is_not_null() & ~offset & ~number
    aware = [
        pl.when(offset).then(rest).str.to_datetime(time_unit="us", time_zone="UTC", strict=False)
    ]
    naive_parsed = step(
        "naive", pl.when(plain).then(rest).str.to_datetime(time_unit="us", strict=False)
    )
    naive_rows = plain & naive_parsed.is_not_null()
    if fmt is not None and aware_format:
        aware.insert(0, fast)
    elif fmt is not None:  # a naive format: its rows are naive too
        naive_parsed = pl.coalesce(fast, naive_parsed)
        naive_rows = naive_rows | fast.is_not_null()
    candidates = aware
    naive = numbers = None
    if zone is not None:
        candidates.append(_localised(naive_parsed, zone))
    else:
        naive = naive_rows
    if unit is not None:
        digits = pl.when(number).then(rest).str.strip_chars()
        candidates.append(_epoch(digits, unit, integer=~digits.str.contains(".", literal=True)))
    else:
        numbers = number
    return TimeExpr(pl.coalesce(candidates), naive, numbers, tuple(steps))
