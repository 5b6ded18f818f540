"""altair's private API, all of it in one place: a chart's selections, its data replaced in
the browser (:func:`replace_data`), and Vega offline.

``JupyterChart`` (an anywidget) keeps what the browser selected in a synced traitlet,
``_vl_selections``, that lives as long as the widget; its public ``selections`` object is
made afresh each time the chart is replaced, so watching it means watching it again after
every change of filters. The widgets therefore watch the private traitlet
(:func:`watch_selection`) on the altair versions in :data:`VERIFIED`, when it is where it
should be; otherwise they watch the public ``selections`` and hook again whenever ``chart``
changes, which gives the same values.

Drawing with no internet (:func:`~concursus_lab.plot.offline.enable_offline`) reads and sets
``JupyterChart._esm`` (the widget's script) and ``_is_offline``, and keys its cache on
``altair.jupyter.jupyter_chart.load_js_src()``; each falls back to altair's own public
``JupyterChart.enable_offline()`` when missing.

``tests/unit/test_altair_private.py`` fails when an installed altair moves any of it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from concursus_lab.plot.libraries import lab

#: altair versions the private selection traitlet was checked on, oldest and newest (both
#: included): the widget tests pass on 6.3.0, and 5.4.0's ``JupyterChart`` declares the same
#: ``_vl_selections = traitlets.Dict().tag(sync=True)``.
VERIFIED = ((5, 4, 0), (6, 3, 0))
#: The traitlet the browser writes a chart's selections into: ``{name: {"value", "store"}}``.
SELECTIONS = "_vl_selections"
#: The traitlet the kernel sends a chart's signal and data updates to the browser through.
UPDATES = "_py_to_js_updates"


def version() -> tuple[int, ...] | None:
    """The installed altair's version as numbers; None when it is not plain numbers."""
    try:
        return tuple(int(part) for part in lab("altair").__version__.split("."))
    except ValueError:
        return None


def problems() -> list[str]:
    """What of the private API this module reads is missing from the installed altair."""
    chart = lab("altair").JupyterChart
    found = []
    if SELECTIONS not in chart.class_traits():
        found.append(f"`JupyterChart.{SELECTIONS}` is not a traitlet")
    if UPDATES not in chart.class_traits():
        found.append(f"`JupyterChart.{UPDATES}` is not a traitlet")
    if not hasattr(chart, "_is_offline"):
        found.append("`JupyterChart._is_offline` is gone")
    if not isinstance(getattr(chart, "_esm", None), str):
        found.append("`JupyterChart._esm` is not the widget's script")
    if widget_script() is None:
        found.append("`altair.jupyter.jupyter_chart.load_js_src()` is gone")
    return found


@functools.cache
def private_selections() -> bool:
    """Whether :func:`watch_selection` reads the private traitlet (else the public path)."""
    low, high = VERIFIED
    installed = version()
    return (
        installed is not None
        and low <= installed <= high
        and SELECTIONS in (lab("altair").JupyterChart.class_traits())
    )


def watch_selection(chart: Any, name: str, callback: Callable[[dict[str, Any]], None]) -> None:
    """Call ``callback(value)`` each time the browser changes ``chart``'s selection ``name``.

    ``value`` is the selection's Vega signal (an interval's ``{field: [low, high]}``), ``{}``
    when nothing is selected. It keeps working when ``chart.chart`` is replaced.
    """

    def value(selection: Any) -> dict[str, Any]:
        return dict(selection or {})

    if private_selections():
        chart.observe(
            lambda change: callback(value(((change["new"] or {}).get(name) or {}).get("value"))),
            names=SELECTIONS,
        )
        return

    def hook(_change: Any = None) -> None:  # altair made a new `selections`: watch it
        selections = chart.selections
        if name in selections.trait_names():
            selections.observe(lambda change: callback(value(change["new"].value)), names=name)

    hook()
    chart.observe(hook, names="chart")


def private_updates() -> bool:
    """Whether :func:`replace_data` can send rows through the private traitlet (an altair
    in the verified range that still has it); else the caller draws the chart again."""
    low, high = VERIFIED
    installed = version()
    return (
        installed is not None
        and low <= installed <= high
        and UPDATES in lab("altair").JupyterChart.class_traits()
    )


def replace_data(chart: Any, name: str, values: list[dict[str, Any]]) -> bool:
    """Replace the rows of ``chart``'s named dataset ``name`` in the browser, without
    drawing the chart again: ``JupyterChart._py_to_js_updates`` (what altair's VegaFusion
    path sends data by), which the widget's script applies as a Vega changeset of the
    dataset (every row out, ``values`` in) and runs the view. Returns False, sending
    nothing, when that path is not there (:func:`private_updates`): the caller then draws
    the chart again, so a moved API costs a redraw, never a chart that stops changing."""
    if not private_updates():
        return False
    setattr(chart, UPDATES, [{"namespace": "data", "name": name, "scope": [], "value": values}])
    return True


def offline_enabled() -> bool:
    """Whether ``JupyterChart`` already loads Vega from vl-convert's bundle."""
    return getattr(lab("altair").JupyterChart, "_is_offline", None) is True


def set_offline_script(script: str) -> bool:
    """Have every ``JupyterChart`` use ``script`` (a bundle kept from an earlier kernel);
    False when altair has no such switch, and nothing was changed."""
    chart = lab("altair").JupyterChart
    if not hasattr(chart, "_is_offline") or not isinstance(getattr(chart, "_esm", None), str):
        return False
    chart._esm = script
    chart._is_offline = True
    return True


def offline_script() -> str | None:
    """The script ``JupyterChart`` loads now (after ``enable_offline``: the bundle), if any."""
    script = getattr(lab("altair").JupyterChart, "_esm", None)
    return script if isinstance(script, str) else None


def widget_script() -> str | None:
    """altair's own script of ``JupyterChart`` (what the offline bundle is made from)."""
    try:
        return lab("altair.jupyter.jupyter_chart").load_js_src()
    except (AttributeError, OSError):
        return None
