"""Times and durations: reading what people type, and writing them the same everywhere.

Reading. Arguments such as ``at=``, ``known_at=`` and ``event_time=`` accept an aware
``datetime``, a ``date`` (midnight UTC), an ISO 8601 string (``"2026-03-01 12:00"``,
``"2026-03-01T12:00Z"``), a pandas ``Timestamp`` or ``numpy.datetime64``, or epoch
milliseconds as an ``int``; a naive value is read as UTC, since every time in a frame is
UTC (:func:`to_utc`). An epoch number's unit is never guessed: an ``int`` that is not a
millisecond time of this century (epoch seconds, say) is an error that names the unit it
was taken in and what it would be in the others (:func:`epoch_readings`). Durations
(``max_out_of_orderness=``, ``idle=``) accept a ``timedelta``, ``numpy.timedelta64`` or a text
such as ``"90s"``, ``"1h30m"``, ``"500ms"`` (:func:`to_timedelta`).

Writing. :func:`when` writes a time in UTC to the second, with its fraction only when it has
one; :func:`duration` writes a short human duration (``3.2min``); :func:`exact` writes one
to the microsecond (``2min 13.456s``).

>>> import datetime as dt
>>> when(to_utc("2026-03-02 10:30", "at")), when(to_utc("2026-03-02 10:30:00.25", "at"))
('2026-03-02 10:30:00', '2026-03-02 10:30:00.250')
>>> duration(dt.timedelta(seconds=95)), exact(to_timedelta("1h30m2.5s", "bound"))
('1.6min', '1h 30min 2.5s')
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import numpy as np

from concursus_lab.exceptions import SchemaError

UTC = dt.UTC

TimeLike = dt.datetime | dt.date | str | int | Any

EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)


def to_utc(value: TimeLike, name: str) -> dt.datetime:
    """Return ``value`` as an aware UTC datetime, or raise naming ``name``."""
    if isinstance(value, dt.datetime):
        out = value
    elif isinstance(value, dt.date):
        out = dt.datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            out = dt.datetime.fromisoformat(text)
        except ValueError:
            raise SchemaError(
                f"`{name}` must be a time; {value!r} is not ISO 8601. "
                'Write it like "2026-03-01 12:00" or "2026-03-01T12:00:00Z".'
            ) from None
    elif isinstance(value, bool):
        raise SchemaError(f"`{name}` must be a time, got the boolean {value!r}.")
    elif isinstance(value, (int, np.integer)):
        out = _epoch_milliseconds(int(value), name)
    elif hasattr(value, "to_pydatetime"):  # pandas Timestamp
        out = value.to_pydatetime()
    elif type(value).__name__ == "datetime64":  # numpy
        out = dt.datetime(1970, 1, 1) + dt.timedelta(
            microseconds=int(value.astype("datetime64[us]").astype(np.int64))
        )
    else:
        raise SchemaError(
            f"`{name}` must be a datetime, date, ISO string or epoch milliseconds; "
            f"got {value!r} of type {type(value).__name__}."
        )
    if out.tzinfo is None:
        out = out.replace(tzinfo=UTC)
    return out.astimezone(UTC)


#: Epoch milliseconds of this century, [2000-01-01, 2100-01-01): what an ``int`` time may be.
_THIS_CENTURY_MS = (946_684_800_000, 4_102_444_800_000)

#: The units epoch numbers come in: their names, and microseconds per unit as a fraction.
EPOCH_UNITS = {
    "s": ("seconds", 1_000_000, 1),
    "ms": ("milliseconds", 1_000, 1),
    "us": ("microseconds", 1, 1),
    "ns": ("nanoseconds", 1, 1_000),
}


def epoch_readings(value: int) -> dict[str, dt.datetime]:
    """The units (``"s"``, ``"ms"``, ``"us"``, ``"ns"``) in which epoch number ``value`` is a
    time of this century, with that time: what to suggest, never what to assume.

    >>> epoch_readings(1714730000)
    {'s': datetime.datetime(2024, 5, 3, 9, 53, 20, tzinfo=datetime.timezone.utc)}
    """
    lo, hi = _THIS_CENTURY_MS
    out = {}
    for unit, (_, times, per) in EPOCH_UNITS.items():
        us = value * times // per
        if lo * 1000 <= us < hi * 1000:
            out[unit] = EPOCH + dt.timedelta(microseconds=us)
    return out


def _epoch_milliseconds(value: int, name: str) -> dt.datetime:
    """``value`` epoch milliseconds as a datetime, if that is a time of this century; else
    an error naming the unit it was taken in, what it is in other units, and how to say it."""
    lo, hi = _THIS_CENTURY_MS
    if lo <= value < hi:
        return EPOCH + dt.timedelta(milliseconds=value)
    try:
        taken = f"{when(EPOCH + dt.timedelta(milliseconds=value))} UTC"
    except OverflowError:
        taken = "beyond the years a datetime holds"
    readings = epoch_readings(value)
    others = "".join(
        f"; as epoch {EPOCH_UNITS[unit][0]} it is {when(time)} UTC"
        for unit, time in readings.items()
    )
    example = when(next(iter(readings.values()), dt.datetime(2026, 3, 1, 12, tzinfo=UTC)))
    in_ms = next((f" ({name}={epoch_us(t) // 1000})" for t in readings.values()), "")
    raise SchemaError(
        f"`{name}` is the integer {value!r}, taken as epoch milliseconds: {taken}, not a time "
        f"of this century{others}. Say the time without a unit to guess: pass a datetime or "
        f"a string such as {name}={example!r} (UTC), or epoch milliseconds{in_ms}."
    )


def optional_utc(value: TimeLike | None, name: str) -> dt.datetime | None:
    """Like :func:`to_utc`, passing ``None`` through."""
    return None if value is None else to_utc(value, name)


def time_range(
    value: tuple[TimeLike | None, TimeLike | None] | None, name: str = "event_time"
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """Coerce a ``(start, end)`` pair (end exclusive; either may be None)."""
    if value is None:
        return None, None
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
        raise SchemaError(
            f"`{name}` must be a (start, end) pair with end exclusive, got {value!r}. "
            f"Use None for an open side, e.g. {name}=(None, '2026-03-01')."
        )
    start = optional_utc(value[0], f"{name}[0]")
    end = optional_utc(value[1], f"{name}[1]")
    if start is not None and end is not None and end < start:
        raise SchemaError(f"`{name}` ends before it starts: {start} > {end}.")
    return start, end


def epoch_us(value: dt.datetime) -> int:
    """An aware datetime as integer microseconds since the epoch (exact, no float)."""
    delta = value - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def when(value: dt.datetime | None, *, none: str = "-") -> str:
    """A time in UTC to the second, its fraction shown only when it has one (milliseconds,
    or microseconds when finer); ``none`` for None.

    >>> when(dt.datetime(2026, 3, 2, 10, 30, 0, 1500, tzinfo=UTC))
    '2026-03-02 10:30:00.001500'
    """
    if value is None:
        return none
    value = value.astimezone(UTC)
    text = f"{value:%Y-%m-%d %H:%M:%S}"
    if value.microsecond % 1000:
        return f"{text}.{value.microsecond:06d}"
    if value.microsecond:
        return f"{text}.{value.microsecond // 1000:03d}"
    return text


# ------------------------------------------------------------------------------ durations

DurationLike = dt.timedelta | str | Any

_UNITS = {
    "us": 1,
    "µs": 1,
    "microsecond": 1,
    "ms": 1_000,
    "millisecond": 1_000,
    "s": 1_000_000,
    "sec": 1_000_000,
    "second": 1_000_000,
    "m": 60_000_000,
    "min": 60_000_000,
    "minute": 60_000_000,
    "h": 3_600_000_000,
    "hour": 3_600_000_000,
    "d": 86_400_000_000,
    "day": 86_400_000_000,
    "w": 604_800_000_000,
    "week": 604_800_000_000,
}
_TOKEN = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-zµ]+)\s*", re.IGNORECASE)
_US = dt.timedelta(microseconds=1)


def to_timedelta(value: DurationLike, name: str) -> dt.timedelta:
    """``value`` as a non-negative timedelta (microseconds), or raise naming ``name``.

    >>> to_timedelta("2 minutes", "idle")
    datetime.timedelta(seconds=120)
    """
    out: dt.timedelta | None = None
    if isinstance(value, dt.timedelta):  # pandas Timedelta is one too
        out = dt.timedelta(microseconds=value // _US)
    elif isinstance(value, str):
        out = _parse_duration(value)
    elif type(value).__name__ == "timedelta64":
        out = dt.timedelta(microseconds=int(value.astype("timedelta64[us]").astype(np.int64)))
    if out is None:
        raise SchemaError(
            f"`{name}` must be a duration: a datetime.timedelta or a text such as '90s', "
            f"'2m', '1h30m' or '500ms'; got {value!r}."
        )
    if out < dt.timedelta(0):
        raise SchemaError(f"`{name}` must not be negative, got {exact(out)} ({value!r}).")
    return out


def _parse_duration(text: str) -> dt.timedelta | None:
    body = text.strip()
    if not body:
        return None
    total = 0.0
    position = 0
    while position < len(body):
        match = _TOKEN.match(body, position)
        if match is None:
            return None
        unit = match.group(2).lower()
        if unit not in _UNITS and unit.endswith("s") and unit[:-1] in _UNITS:
            unit = unit[:-1]  # "minutes", "secs"
        if unit not in _UNITS:
            return None
        total += float(match.group(1)) * _UNITS[unit]
        position = match.end()
    return dt.timedelta(microseconds=round(total))


def duration(value: dt.timedelta | None) -> str:
    """A short human duration: ``850ms``, ``12.5s``, ``3.2min``, ``4.0h``, ``2.5d``; ``-`` for None.

    >>> duration(dt.timedelta(seconds=-90))
    '-1.5min'
    """
    if value is None:
        return "-"
    seconds = value.total_seconds()
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    if seconds < 1:
        return f"{sign}{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{sign}{seconds:.1f}s"
    if seconds < 3600:
        return f"{sign}{seconds / 60:.1f}min"
    if seconds < 86_400 * 2:
        return f"{sign}{seconds / 3600:.1f}h"
    return f"{sign}{seconds / 86_400:.1f}d"


def exact(value: dt.timedelta | None) -> str:
    """A duration to the microsecond, read the way one writes it: ``2min 13.456s``.

    >>> exact(dt.timedelta(milliseconds=-100)), exact(dt.timedelta(days=1))
    ('-100ms', '1d')
    """
    if value is None:
        return "-"
    us = value // _US
    if us == 0:
        return "0s"
    sign, us = ("-", -us) if us < 0 else ("", us)
    if us < 1_000_000:
        text = f"{us / 1000:.3f}".rstrip("0").rstrip(".") + "ms"
        return sign + text
    parts = []
    for unit, size in (("d", 86_400_000_000), ("h", 3_600_000_000), ("min", 60_000_000)):
        whole, us = divmod(us, size)
        if whole:
            parts.append(f"{whole}{unit}")
    if us:
        parts.append(f"{us / 1e6:.6f}".rstrip("0").rstrip(".") + "s")
    return sign + " ".join(parts)
