"""Coercing the times people type into UTC, microsecond datetimes.

Arguments such as ``at=``, ``known_at=`` and ``event_time=`` accept an aware ``datetime``, a
``date`` (midnight UTC), an ISO 8601 string (``"2026-03-01 12:00"``, ``"2026-03-01T12:00Z"``),
a pandas ``Timestamp`` or ``numpy.datetime64``, or epoch milliseconds as an ``int``. A naive
value is read as UTC, since every time in a frame is UTC.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from concursus_lab.exceptions import SchemaError

UTC = dt.UTC

TimeLike = dt.datetime | dt.date | str | int | Any


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
    elif isinstance(value, int):
        out = dt.datetime.fromtimestamp(value / 1000, tz=UTC)
    elif hasattr(value, "to_pydatetime"):  # pandas Timestamp
        out = value.to_pydatetime()
    elif type(value).__name__ == "datetime64":  # numpy
        import numpy as np

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
