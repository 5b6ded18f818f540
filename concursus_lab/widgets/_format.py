"""Small, deterministic text and HTML for the widgets: tables of events.

Pure functions of their arguments (no widget library is imported), so the text a widget
prints, and the HTML table it shows, can be tested without a kernel or a browser.

"""

from __future__ import annotations

import datetime as dt
import html

import polars as pl

from concursus_lab.common.time import duration, when

#: Columns of an event frame worth showing in a table, in order.
TABLE_COLUMNS = (
    "aggregate_id",
    "name",
    "event_timestamp",
    "processing_timestamp",
    "lateness",
    "stream_id",
    "parameters",
)


#: How a table marks its current row.
CURRENT = "outline: 2px solid #000; background: #fff3b0;"


def with_lateness(events: pl.DataFrame) -> pl.DataFrame:
    """``events`` with a ``lateness`` Duration column (processing − event time) added."""
    return events.with_columns(
        (pl.col("processing_timestamp") - pl.col("event_timestamp")).alias("lateness")
    )


def html_table(
    frame: pl.DataFrame,
    *,
    columns: tuple[str, ...] = TABLE_COLUMNS,
    limit: int = 20,
    rest: str = "",
    current: int | None = None,
) -> str:
    """A plain, escaped HTML table of the first ``limit`` rows of ``frame``.

    Times are written in UTC to the second (or millisecond), durations shortly; a last line
    says how many rows were left out (and ``rest``: where to find them). No scripts and no
    styles but the one on row ``current`` (0-based; the explorer's step), if given: it
    renders the same anywhere.

    >>> import polars as pl
    >>> html_table(pl.DataFrame({"name": ["a<b"]}), columns=("name",)).split("<tbody>")[1]
    '<tr><td>a&lt;b</td></tr></tbody></table>'
    """
    shown = [c for c in columns if c in frame.columns]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in shown)
    rows = []
    for i, row in enumerate(frame.head(limit).select(shown).iter_rows()):
        cells = "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row)
        mark = f' class="cl-current" style="{CURRENT}"' if i == current else ""
        rows.append(f"<tr{mark}>{cells}</tr>")
    table = (
        f'<table class="cl-table"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
    if frame.height > limit:
        table += f"<p>… and {frame.height - limit:,} more rows{html.escape(rest)}</p>"
    return table


def text_table(
    frame: pl.DataFrame, *, columns: tuple[str, ...] = TABLE_COLUMNS, limit: int = 20
) -> str:
    """The same table as :func:`html_table`, as aligned plain text (for ``print``)."""
    shown = [c for c in columns if c in frame.columns]
    body = [[_cell(v) for v in row] for row in frame.head(limit).select(shown).iter_rows()]
    widths = [max([len(c), *(len(r[i]) for r in body)]) for i, c in enumerate(shown)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(shown, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in body]
    if frame.height > limit:
        lines.append(f"… and {frame.height - limit:,} more rows")
    return "\n".join(lines)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return when(value)
    if isinstance(value, dt.timedelta):
        return duration(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)
