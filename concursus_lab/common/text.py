"""Small text helpers for messages and summaries: counts with their noun, clipped values."""

from __future__ import annotations


def plural(count: int, noun: str, plural: str | None = None) -> str:
    """``1 event``, ``2,000 events``, ``3 replies`` (``plural`` for irregular nouns).

    >>> plural(1, "event"), plural(2000, "event"), plural(3, "reply", "replies")
    ('1 event', '2,000 events', '3 replies')
    """
    return f"{count:,} {noun if count == 1 else plural or noun + 's'}"


def clip(text: str, width: int = 40) -> str:
    """``text`` cut to ``width`` characters, with ``…`` where it was cut.

    >>> clip("a" * 50, 10)
    'aaaaaaaaa…'
    """
    return text if len(text) <= width else text[: width - 1] + "…"


def shown(value: object, width: int = 30) -> str:
    """A value as an error message shows it: its repr, clipped to ``width``.

    >>> shown("Lewisham"), shown(list(range(20)), 12)
    ("'Lewisham'", '[0, 1, 2, 3…')
    """
    return clip(repr(value), width)
