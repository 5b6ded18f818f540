"""Progress bars: one policy for every long piece of work.

``progress=True`` shows a bar at once and leaves it; ``None`` (the default everywhere) shows
one only if the work is still going after two seconds, and clears it at the end; ``False``
never shows one. Bars are tqdm's ``auto`` flavour: a widget in a notebook, text elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

#: Seconds of work before a bar appears when ``progress`` is None.
DELAY = 2.0


def bar(
    progress: bool | None,
    *,
    total: int | None = None,
    what: str,
    unit: str,
    iterable: Iterable[Any] | None = None,
) -> Any:
    """A tqdm bar (or one that shows nothing), used as a context manager or iterated.

    >>> with bar(False, total=3, what="reading", unit="rows") as b:
    ...     b.update(3)
    """
    from tqdm.auto import tqdm

    return tqdm(
        iterable,
        total=total,
        desc=what,
        unit=f" {unit}",
        unit_scale=True,
        disable=progress is False,
        delay=0 if progress else DELAY,
        leave=bool(progress),
    )
