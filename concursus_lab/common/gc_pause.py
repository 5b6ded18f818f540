"""Pausing Python's cyclic garbage collector around bulk work."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while many long-lived objects are made.

    Decoding a million rows or building a million event instances makes objects that all
    stay alive (and hold no cycles); the collector would rescan them every few hundred
    allocations and free nothing, which costs as much as the work itself. It is re-enabled
    on the way out (if it was enabled), and collects then whatever cycles were made.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
