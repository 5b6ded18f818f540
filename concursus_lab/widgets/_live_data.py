"""What the live view sends to the browser: table rows and timeline points, from a batch.

Pure functions of a batch's :class:`~concursus_lab.live.changes.Changes` and its deliveries
(no widget library is imported), so what the view shows can be tested without a kernel or a
browser. Rows are keyed by aggregate id and points by a running number: the front end
(``_live_view.js``) updates the rows and points it already drew, adds the new ones and drops
the ones that left, so nothing is drawn again from scratch.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from concursus_lab.live.changes import Changes

#: How long a state's text may be in the table before it is cut.
STATE_TEXT = 120
_WHEN = ("event_timestamp", "processing_timestamp")


def state_text(state: Any) -> str:
    """A state as one short line (``repr``, cut at :data:`STATE_TEXT` characters)."""
    text = "(no state)" if state is None else repr(state)
    return text if len(text) <= STATE_TEXT else text[: STATE_TEXT - 1] + "…"


def batch_rows(changes: Changes) -> list[dict[str, Any]]:
    """One table row per aggregate the batch changed: its id, the kind of change, its state
    after, events applied, the batch, and whether a late delivery restated its past."""
    return [
        {
            "aggregate_id": row["aggregate_id"],
            "change": row["change"],
            "state": state_text(changes.after.get(row["aggregate_id"])),
            "events_applied": row["events_applied"],
            "batch": changes.batch,
            "restated": row["change"] == "past",
        }
        for row in changes.frame.iter_rows(named=True)
    ]


def merged_rows(
    shown: list[dict[str, Any]], new: list[dict[str, Any]], limit: int
) -> list[dict[str, Any]]:
    """The table after a batch: its rows first (restated ones on top), then the rows shown
    before of other aggregates; at most ``limit`` rows."""
    new = sorted(new, key=lambda row: not row["restated"])  # stable: id order otherwise
    ids = {row["aggregate_id"] for row in new}
    return [*new, *(row for row in shown if row["aggregate_id"] not in ids)][:limit]


def batch_points(deliveries: pl.DataFrame, changes: Changes, first: int) -> list[list[Any]]:
    """One point per delivery of the batch, numbered from ``first``: ``[number, event time
    (epoch ms), processing time (epoch ms), aggregate id, name, restated]``; restated is
    True for the delivery that caused a ``past`` change (it landed before events already
    folded)."""
    causes = (
        changes.restated.select("aggregate_id", *_WHEN).unique().with_columns(restated=pl.lit(True))
    )
    marked = (
        deliveries.select("aggregate_id", "name", *_WHEN)
        .with_row_index("order")
        .join(causes, on=["aggregate_id", *_WHEN], how="left")
        .sort("order")
    )
    return [
        [first + k, event, processing, aggregate, name, bool(restated)]
        for k, (aggregate, name, event, processing, restated) in enumerate(
            marked.select(
                "aggregate_id",
                "name",
                pl.col("event_timestamp").dt.epoch("ms"),
                pl.col("processing_timestamp").dt.epoch("ms"),
                pl.col("restated").fill_null(False),
            ).iter_rows()
        )
    ]
