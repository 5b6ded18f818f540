"""``cl.projection_lab``: versions of a view side by side, their diff, and a chaos verdict.

Each projection is run by :func:`cl.project <concursus_lab.project>` at the time bounds
set by the explorer's two sliders (``at``: event time, exclusive; ``known_at``: processing
time, inclusive; they stop where something changes, thinned to a few hundred stops on a
long history). A tab per projection shows its view; under them, each later version is
diffed against the first (:func:`cl.diff <concursus_lab.diff>`), and each projection's
:func:`cl.chaos <concursus_lab.chaos>` verdict over the whole history is shown (computed
once, when the lab is made).
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from concursus_lab.common.text import plural
from concursus_lab.common.time import when
from concursus_lab.exceptions import SchemaError
from concursus_lab.frame.schema import validate
from concursus_lab.plot.libraries import lab
from concursus_lab.projections.chaos import Chaos, chaos
from concursus_lab.projections.diff import Diff, diff
from concursus_lab.projections.projection import AnyProjection, as_projection, project, view_key
from concursus_lab.widgets._base import SummaryWidget
from concursus_lab.widgets._format import html_table, text_table
from concursus_lab.widgets._time_sliders import TimeSliders, at_stops, known_stops, time_slider

ipywidgets = lab("ipywidgets")

#: Most stops on each slider: a long history's are thinned to this many, evenly.
MAX_STOPS = 300
#: Rows of each view (and of each diff) shown.
ROWS_SHOWN = 12


def thin(stops: list[dt.datetime], limit: int = MAX_STOPS) -> list[dt.datetime]:
    """At most ``limit`` of ``stops``, evenly spread, the first and the last always kept.

    >>> import datetime as dt
    >>> days = [dt.datetime(2026, 3, d, tzinfo=dt.UTC) for d in range(1, 11)]
    >>> [d.day for d in thin(days, 4)]
    [1, 4, 7, 10]
    """
    if len(stops) <= limit:
        return stops
    picked = np.unique(np.linspace(0, len(stops) - 1, max(limit, 2)).round().astype(int))
    return [stops[i] for i in picked]


class ProjectionLab(SummaryWidget, TimeSliders):
    """The projection lab; build it with :func:`projection_lab`.

    Attributes
    ----------
    at_slider, known_at_slider
        ``ipywidgets.SelectionSlider`` of datetimes: event time (exclusive) and processing
        time (inclusive), as in :func:`cl.explore <concursus_lab.explore>`.
    tabs
        One tab per projection, showing its view.
    diff_view, chaos_view, caption
        The diffs against the first projection, the chaos verdicts, and a one-line caption.
    """

    def __init__(
        self,
        events: pl.DataFrame,
        projections: Mapping[str, AnyProjection],
        *,
        key: str | Sequence[str] | None = None,
        chaos_runs: int = 20,
        seed: int = 0,
    ) -> None:
        self._events = validate(events, check_parameters=False)
        if self._events.height == 0:
            raise SchemaError("`events` is empty: there is nothing to project.")
        self._projections = _projections(projections)
        self._key = _key(key, list(self._projections.values()))
        if not isinstance(chaos_runs, int) or chaos_runs < 0:
            raise SchemaError(
                f"`chaos_runs` must be an int >= 0 (0: no chaos verdict), got {chaos_runs!r}."
            )
        self._verdicts: dict[str, Chaos] = (
            {
                name: chaos(self._events, p, runs=chaos_runs, seed=seed, key=self._key)
                for name, p in self._projections.items()
            }
            if chaos_runs
            else {}
        )
        at = thin(at_stops(self._events))
        known = thin(known_stops(self._events))
        self.at_slider = time_slider(at, "at (event time)", value=at[-1])
        self.known_at_slider = time_slider(known, "known at (processed)", value=known[-1])
        self.caption = ipywidgets.HTML()
        self.caption.add_class("cl-caption")
        self._tables = {name: ipywidgets.HTML() for name in self._projections}
        self.tabs = ipywidgets.Tab(children=list(self._tables.values()))
        self.tabs.titles = tuple(self._projections)
        self.diff_view = ipywidgets.HTML()
        self.chaos_view = ipywidgets.HTML()
        self._views: dict[str, pl.DataFrame] = {}
        self._diffs: dict[str, Diff] = {}
        self._error = ""
        self._compute()
        self.at_slider.observe(self._on_slide, names="value")
        self.known_at_slider.observe(self._on_slide, names="value")
        super().__init__(
            [
                self.at_slider,
                self.known_at_slider,
                self.caption,
                self.tabs,
                self.diff_view,
                self.chaos_view,
            ]
        )
        self.add_class("cl-projection-lab")
        self._show()

    # ----------------------------------------------------------------- what it shows

    @property
    def views(self) -> dict[str, pl.DataFrame]:
        """Each projection's view at the sliders' bounds."""
        return dict(self._views)

    @property
    def diffs(self) -> dict[str, Diff]:
        """Each later projection diffed against the first: ``{"v1 -> v2": Diff}``."""
        return dict(self._diffs)

    @property
    def verdicts(self) -> dict[str, Chaos]:
        """Each projection's :func:`cl.chaos <concursus_lab.chaos>` result (empty when
        ``chaos_runs=0``)."""
        return dict(self._verdicts)

    def summary(self) -> str:
        """The bounds, each view's size, the diffs and the chaos verdicts."""
        lines = [
            f"Projection lab: {plural(len(self._projections), 'projection')} over "
            f"{self._events.height:,} deliveries",
            f"at {when(self.at)} UTC (event time, exclusive), known at "
            f"{when(self.known_at)} UTC (processing time)",
            *([f"could not project at these bounds: {self._error}"] if self._error else []),
            "; ".join(f"{name}: {plural(v.height, 'row')}" for name, v in self._views.items()),
            *(str(d) for d in self._diffs.values()),
        ]
        for name, verdict in self._verdicts.items():
            lines.append(f"chaos {name}: {_verdict(verdict)}")
        first = next(iter(self._views))
        lines.append(f"{first}:")
        lines.append(
            text_table(self._views[first], columns=tuple(self._views[first].columns), limit=5)
        )
        return "\n".join(lines)

    # --------------------------------------------------------------------- plumbing

    def _compute(self) -> None:
        bounds = {"at": self.at, "known_at": self.known_at}
        self._views = {
            name: project(self._events, p, **bounds) for name, p in self._projections.items()
        }
        names = list(self._views)
        first = names[0]
        self._diffs = {
            f"{first} -> {name}": diff(
                self._views[first], self._views[name], key=self._key, names=(first, name)
            )
            for name in names[1:]
        }

    def _on_slide(self, _change: dict[str, Any]) -> None:
        try:
            self._compute()
        except Exception as exc:  # a callback must not raise: the browser would hide it
            self._error = f"{type(exc).__name__}: {exc}"
        else:
            self._error = ""
        self._show()

    def _show(self) -> None:
        self.caption.value = html.escape(
            f"Views at {when(self.at)} UTC (event time, exclusive), as known at "
            f"{when(self.known_at)} UTC"
        ) + (
            f"<br><b>Could not project at these bounds</b> ({html.escape(self._error)}); "
            "still showing the last views."
            if self._error
            else ""
        )
        for name, view in self._views.items():
            self._tables[name].value = (
                f"<p>{html.escape(plural(view.height, 'row'))}</p>"
                + html_table(view, columns=tuple(view.columns), limit=ROWS_SHOWN)
            )
        parts = []
        for found in self._diffs.values():
            parts.append(f"<p><b>diff</b> {html.escape(str(found))}</p>")
            if found.changed.height:
                parts.append(
                    html_table(
                        found.changed, columns=tuple(found.changed.columns), limit=ROWS_SHOWN
                    )
                )
        self.diff_view.value = "".join(parts)
        verdicts = []
        for name, verdict in self._verdicts.items():
            verdicts.append(
                f"<p><b>chaos {html.escape(name)}</b>: {html.escape(_verdict(verdict))}</p>"
            )
            if not verdict.stable and verdict.redeliveries is not None:
                for caption, delivery in zip(
                    ("the counterexample as delivered", "as redelivered"),
                    verdict.redeliveries,
                    strict=True,
                ):
                    verdicts.append(f"<p>{caption}</p>" + html_table(delivery, limit=ROWS_SHOWN))
        self.chaos_view.value = "".join(verdicts)


def _verdict(found: Chaos) -> str:
    if found.stable:
        runs = "1 redelivery" if found.runs == 1 else f"{found.runs:,} redeliveries"
        return f"stable in {runs}"
    aggregates = found.counterexample.select(
        pl.struct("aggregate_type", "aggregate_id").n_unique()
    ).item()
    return (
        f"unstable at redelivery {found.failed_run} of {found.runs}: "
        f"{plural(found.counterexample.height, 'event')} of "
        f"{plural(aggregates, 'aggregate')} give different views ({found.diff})"
    )


def _projections(projections: Any) -> dict[str, Any]:
    if not isinstance(projections, Mapping) or not projections:
        raise SchemaError(
            "`projections` must be a dict of names to projections, such as "
            f"{{'v1': rate_v1, 'v2': rate_v2}}; got {projections!r}."
        )
    out = {}
    for name, p in projections.items():
        if not isinstance(name, str) or not name:
            raise SchemaError(f"projection names must be non-empty strings, got {name!r}.")
        out[name] = as_projection(p, f"projections[{name!r}]")
    return out


def _key(key: Any, projections: list[Any]) -> tuple[str, ...] | None:
    if key is not None:
        return (key,) if isinstance(key, str) else tuple(key)
    keys = {view_key(p) for p in projections}
    return keys.pop() if len(keys) == 1 else None


def projection_lab(
    events: pl.DataFrame,
    projections: Mapping[str, AnyProjection],
    *,
    key: str | Sequence[str] | None = None,
    chaos_runs: int = 20,
    seed: int = 0,
) -> ProjectionLab:
    """Versions of a view side by side, with their diff, a chaos verdict and two time sliders.

    Parameters
    ----------
    events
        A canonical event frame (every delivery).
    projections
        Names to projections (functions, :func:`cl.projection <concursus_lab.projection>`,
        :func:`cl.fold <concursus_lab.fold>`), e.g. ``{"v1": rate_v1, "v2": rate_v2}``;
        each later one is diffed against the first.
    key
        The columns identifying a view row (default: the projections' own when they all
        declare the same; else whole rows are compared).
    chaos_runs
        Redeliveries :func:`cl.chaos <concursus_lab.chaos>` tries per projection, once, over
        the whole history (0: no chaos verdict).
    seed
        The chaos seed.

    Examples
    --------
    >>> import polars as pl
    >>> import concursus_lab as cl
    >>> count = lambda f: f.group_by("name").len("events")
    >>> lab = cl.projection_lab(cl.sample.fixture("messy"), {
    ...     "v1": cl.projection(count, duplicates="keep", key="name"),
    ...     "v2": cl.projection(count, key="name")}, chaos_runs=5)
    >>> print("\\n".join(str(lab).splitlines()[:6]))  # doctest: +NORMALIZE_WHITESPACE
    Projection lab: 2 projections over 17 deliveries
    at 2026-03-03 17:00:00.000001 UTC (event time, exclusive), known at 2026-03-03 17:00:01
    UTC (processing time)
    v1: 4 rows; v2: 4 rows
    v1 -> v2: 2 changed (events 2), 0 added, 0 removed, 2 unchanged
    chaos v1: unstable at redelivery 1 of 5: 1 event of 1 aggregate give different views
    (original -> redelivery: 1 changed (events 1), 0 added, 0 removed, 0 unchanged)
    chaos v2: stable in 5 redeliveries
    >>> lab.known_at_slider.value = lab.known_at_slider.options[10][1]
    >>> lab.diffs["v1 -> v2"].equal
    True
    """
    return ProjectionLab(events, projections, key=key, chaos_runs=chaos_runs, seed=seed)
