"""Saving a chart, or a widget's chart, to a file: PNG, SVG, or an HTML page that needs no
network.

vl-convert draws the PNG and the SVG in the kernel (no browser). The HTML page holds the
chart's spec, its data and the Vega scripts inline (bundled by vl-convert, cached like
:func:`concursus_lab.plot.offline`'s), so it opens from a file, a mail or a CI artifact on a
machine without the internet, and stays interactive (tooltips, the brush).

>>> import tempfile
>>> from pathlib import Path
>>> import concursus_lab as cl
>>> folder = Path(tempfile.mkdtemp())
>>> messy = cl.sample.fixture("messy")
>>> cl.plot.save(cl.plot.lateness(messy), folder / "lateness.png").name
'lateness.png'
>>> timeline = cl.timeline(messy)
>>> cl.plot.save(timeline, folder / "timeline.html").read_text()[:15]
'<!DOCTYPE html>'
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any

from concursus_lab.exceptions import SchemaError
from concursus_lab.plot.libraries import lab
from concursus_lab.plot.offline import EMBED_OPTIONS, _vl_version, vega_embed_script

#: The file suffixes :func:`save` writes.
FORMATS = (".png", ".svg", ".html")

_PAGE = """<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>body {{ margin: 16px; font-family: system-ui, sans-serif; }}</style>
<script type="text/javascript">
{script}
</script>
</head>
<body>
<div id="chart"></div>
<script type="text/javascript">
const spec = {spec};
const embedOpt = {options};
vegaEmbed("#chart", spec, embedOpt).catch((error) => {{
  document.getElementById("chart").textContent = "The chart could not be drawn: " + error;
}});
</script>
</body>
</html>
"""


def save(chart: Any, path: str | os.PathLike, *, scale: float = 2.0) -> Path:
    """Write ``chart`` to ``path``, in the format its suffix names; returns the path.

    Parameters
    ----------
    chart
        An altair chart (what ``cl.plot`` returns, changed or not), an altair
        ``JupyterChart``, or a widget that shows one (``cl.timeline``, ``cl.explore``,
        ``cl.lateness_view``): its chart as it is now, after the widget's filters and
        sliders.
    path
        A file ending in ``.png``, ``.svg`` or ``.html`` (a standalone page that loads
        nothing from the network), in a folder that exists. An existing file is replaced.
    scale
        PNG only: pixels per chart unit. The default 2 is sharp on high-density screens and
        in slides; 1 gives the chart's own width and height.

    Raises
    ------
    SchemaError
        When ``chart`` is not a chart, the suffix is not one of :data:`FORMATS`, or the
        folder does not exist. Nothing is written.
    """
    path = Path(path)
    spec = _spec(chart)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise SchemaError(
            f"`path` {str(path)!r} ends in {suffix!r}; a chart is saved as "
            f"{', '.join(FORMATS[:-1])} or {FORMATS[-1]}."
        )
    if not path.parent.is_dir():
        raise SchemaError(
            f"`path` {str(path)!r}: there is no folder {str(path.parent)!r}; create it first "
            "(Path(...).mkdir(parents=True)) or save elsewhere."
        )
    vl_convert = lab("vl_convert")

    if suffix == ".png":
        content: bytes = vl_convert.vegalite_to_png(spec, vl_version=_vl_version(), scale=scale)
    elif suffix == ".svg":
        content = vl_convert.vegalite_to_svg(spec, vl_version=_vl_version()).encode()
    else:
        content = _page(spec, title=path.stem).encode()
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_bytes(content)
    partial.replace(path)
    return path


def _spec(chart: Any) -> dict[str, Any]:
    """The Vega-Lite spec of an altair chart, of a ``JupyterChart``, or of a widget's one."""
    alt = lab("altair")

    inner = getattr(chart, "chart", None)
    if isinstance(inner, alt.JupyterChart):
        chart = inner
    if isinstance(chart, alt.JupyterChart):
        return _as_now(chart)
    if not isinstance(chart, alt.TopLevelMixin):
        raise SchemaError(
            f"`chart` is a {type(chart).__name__}, not a chart: pass an altair chart (what "
            "cl.plot returns), a JupyterChart, or a widget with a chart (cl.timeline, "
            "cl.explore, cl.lateness_view)."
        )
    return chart.to_dict()


def _as_now(widget: Any) -> dict[str, Any]:
    """A ``JupyterChart``'s spec with its parameters where they are now (a widget moves
    them, e.g. the explorer's cut, without drawing the chart again)."""
    spec = _spec(widget.chart)
    for param in spec.get("params", []):
        if "select" not in param and param["name"] in widget.params.trait_names():
            param["value"] = getattr(widget.params, param["name"])
    return spec


def _page(spec: dict[str, Any], *, title: str) -> str:
    """A whole HTML page that draws ``spec`` with the inlined Vega scripts."""

    def script_safe(value: Any) -> str:  # JSON inside <script>: no "</" can end it early
        return json.dumps(value).replace("</", "<\\/")

    return _PAGE.format(
        title=html.escape(title),
        script=vega_embed_script(),
        spec=script_safe(spec),
        options=script_safe(EMBED_OPTIONS),
    )
