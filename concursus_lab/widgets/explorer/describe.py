"""What the explorer says in words: the status names it shows, the history table's columns,
and a state as aligned ``field: value`` lines."""

from __future__ import annotations

import dataclasses
from typing import Any

#: ``cl.history`` statuses, as the explorer names them, in table order.
STATUS_LABELS = {
    "applied": "applied",
    "after_at": "not happened yet",
    "not_known_yet": "not known yet",
    "duplicate": "duplicate",
    "conflicting": "conflicting",
    "skipped": "skipped",
    "undecodable": "undecodable",
}
HISTORY_COLUMNS = (
    "status",
    "name",
    "event_timestamp",
    "processing_timestamp",
    "stream_id",
    "parameters",
)


def describe_state(state: Any) -> str:
    """A state as aligned ``field: value`` lines (dataclasses, dicts), else its repr."""
    if state is None:
        return "(no state yet)"
    if dataclasses.is_dataclass(state) and not isinstance(state, type):
        items = [(f.name, getattr(state, f.name)) for f in dataclasses.fields(state)]
        title = type(state).__name__
    elif isinstance(state, dict):
        items, title = list(state.items()), "dict"
    else:
        return repr(state)
    width = max((len(str(k)) for k, _ in items), default=0)
    return "\n".join([title, *(f"  {str(k).ljust(width)}  {v!r}" for k, v in items)])
