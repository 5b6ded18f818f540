"""Durations written the way each engine's configuration reads them, exactly."""

from __future__ import annotations

import datetime as dt

_UNITS = (
    ("Days", "days", 86_400_000),
    ("Hours", "hours", 3_600_000),
    ("Minutes", "minutes", 60_000),
    ("Seconds", "seconds", 1_000),
    ("Millis", "milliseconds", 1),
)


def millis(value: dt.timedelta) -> int:
    """A duration in whole milliseconds (the engines' resolution), rounded down."""
    return value // dt.timedelta(milliseconds=1)


def java_duration(value: dt.timedelta) -> str:
    """``Duration.ofMinutes(10)``: the largest unit that writes ``value`` exactly (to the ms).

    >>> java_duration(dt.timedelta(minutes=10)), java_duration(dt.timedelta(seconds=1.5))
    ('Duration.ofMinutes(10)', 'Duration.ofMillis(1500)')
    """
    ms = millis(value)
    if ms == 0:
        return "Duration.ZERO"
    java, _, count = _largest(ms)
    return f"Duration.of{java}({count})"


def spark_interval(value: dt.timedelta) -> str:
    """``"10 minutes"``: an interval string as ``withWatermark`` and ``window`` read it.

    >>> spark_interval(dt.timedelta(hours=2)), spark_interval(dt.timedelta(seconds=1))
    ('2 hours', '1 second')
    """
    ms = millis(value)
    if ms == 0:
        return "0 seconds"
    _, word, count = _largest(ms)
    return f"{count} {word[:-1] if count == 1 else word}"


def _largest(ms: int) -> tuple[str, str, int]:
    """The largest unit that divides ``ms``: its Java name, its word, and how many."""
    java, word, size = next(u for u in _UNITS if ms % u[2] == 0)
    return java, word, ms // size
