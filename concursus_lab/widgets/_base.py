"""What every concursus-lab widget shares: a text summary, safe display, offline charts.

A widget is an ``ipywidgets.VBox`` of standard controls and altair ``JupyterChart``s. It
prints (and shows as ``text/plain``, which nbval compares) its ``summary()``, a short
deterministic text, and its display hook never raises: a failure is shown as text.
"""

from __future__ import annotations

from typing import Any

from concursus_lab.plot.libraries import lab
from concursus_lab.plot.offline import EMBED_OPTIONS, enable_offline

ipywidgets = lab("ipywidgets")

_CSS = """
<style>
.cl-widget .cl-table { border-collapse: collapse; font-size: 12px; margin: 4px 0; }
.cl-widget .cl-table th, .cl-widget .cl-table td {
  border-bottom: 1px solid #ddd; padding: 2px 8px; text-align: left; white-space: nowrap; }
.cl-widget .cl-table th { font-weight: 600; }
.cl-widget .cl-caption { font-size: 13px; color: #333; }
.cl-widget .cl-state { font-family: monospace; white-space: pre; font-size: 12px;
  line-height: 1.4; background: #f6f6f6; padding: 6px 10px; margin: 4px 8px 4px 0; }
.cl-widget .widget-inline-hbox .widget-readout,
.cl-widget .jupyter-widget-inline-hbox .jupyter-widget-readout {
  max-width: none; min-width: 190px; text-align: left; }
.cl-widget .cl-status-applied { color: #1b7837; }
.cl-widget .cl-status-dim { color: #999; }
.cl-widget .cl-status-warn { color: #b35806; }
</style>
"""


def offline_chart(chart: Any) -> Any:
    """A ``JupyterChart`` of ``chart`` that loads Vega from vl-convert, not from a CDN."""
    JupyterChart = lab("altair").JupyterChart

    enable_offline()
    return JupyterChart(chart, embed_options=EMBED_OPTIONS)


def style() -> ipywidgets.HTML:
    """The few styles the widgets' tables and captions use (inline: nothing is fetched)."""
    return ipywidgets.HTML(_CSS)


class SummaryWidget(ipywidgets.VBox):
    """A VBox whose text form is ``summary()``: a short deterministic text of what the
    widget shows, which every subclass defines (checked when the subclass is made)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not callable(getattr(cls, "summary", None)):
            raise TypeError(f"{cls.__name__} must define summary() -> str, its text form.")

    def __init__(self, children: list[ipywidgets.Widget], **kwargs: Any) -> None:
        super().__init__([style(), *children], **kwargs)
        self.add_class("cl-widget")

    def __str__(self) -> str:
        try:
            return self.summary()
        except Exception as exc:  # a display hook must never raise
            return f"{type(self).__name__}: could not summarise ({type(exc).__name__}: {exc})"

    def __repr__(self) -> str:
        return str(self)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        text = str(self)
        try:
            bundle = super()._repr_mimebundle_(**kwargs) or {}
        except Exception:  # a closed widget, or no kernel: the text is all we have
            bundle = {}
        bundle["text/plain"] = text
        return bundle
