"""A trace in a notebook: its log as an HTML table, the fields each step changed in bold.

Plain HTML and a few styles scoped to the table (no scripts, nothing fetched), so it
renders the same in JupyterLab, VS Code and a static export; the text form stays
``Trace.summary()``.
"""

from __future__ import annotations

import html
from typing import Any

from concursus_lab.common.text import clip
from concursus_lab.common.time import when

#: Statuses drawn dim: the reducer did not see the delivery.
_DIM = {"skipped", "duplicate", "conflicting", "after_at", "not_known_yet", "undecodable"}
_STYLE = (
    "<style>.cl-trace { border-collapse: collapse; font-size: 12px; }"
    " .cl-trace td, .cl-trace th { padding: 1px 8px; text-align: left; white-space: nowrap;"
    " vertical-align: top; } .cl-trace tr.cl-dim td { color: #999; }"
    " .cl-trace tr.cl-raised td { color: #b00020; font-weight: 600; }</style>"
)


def trace_html(trace: Any, shown: int) -> str:
    """The first ``shown`` steps of ``trace`` as a table, under its first line and above
    its outcome (the same words as its summary)."""
    lines = trace.summary().splitlines()
    head = ["step", "status", "name", "event time", "known at", "changed"]
    rows = ["<tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    for step in trace.steps[:shown]:
        kind = "cl-raised" if step.status == "raised" else "cl-dim" if step.status in _DIM else ""
        what = ", ".join(
            f"<b>{html.escape(c.field)}</b> {html.escape(clip(repr(c.before), 30))} → "
            f"{html.escape(clip(repr(c.after), 30))}"
            for c in step.changes
        ) or html.escape(step.reason or "")
        cells = [
            str(step.number),
            html.escape(step.status),
            html.escape(step.name),
            when(step.event_timestamp),
            when(step.processing_timestamp),
            what,
        ]
        rows.append(f'<tr class="{kind}">' + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    more = len(trace.steps) - shown
    tail = [f"… and {more:,} more steps (see .steps, .frame)"] if more > 0 else []
    outcome = lines[1 + min(shown, len(trace.steps)) + (1 if more > 0 else 0) :]
    notes = "<br>".join(html.escape(line) for line in [*tail, *outcome])
    return (
        f"{_STYLE}<p>{html.escape(lines[0])}</p>"
        f'<table class="cl-trace">{"".join(rows)}</table><p>{notes}</p>'
    )
