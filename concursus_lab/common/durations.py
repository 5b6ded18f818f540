"""How results print times and durations: short, human, and the same everywhere."""

from __future__ import annotations

import datetime as dt


def duration(value: dt.timedelta | None) -> str:
    """A short human duration: ``850ms``, ``12.5s``, ``3.2min``, ``4.0h``, ``2.5d``, ``-90.0s``.

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
