"""Saving charts and the widgets' charts: PNG, SVG and standalone HTML that needs no network."""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import pytest

import concursus_lab as cl
from concursus_lab.exceptions import SchemaError

pytestmark = pytest.mark.slow

MESSY = cl.sample.fixture("messy")


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk
    return width, height


def saved_spec(page: str) -> dict:
    """The Vega-Lite spec a saved page draws."""
    found = re.search(r"const spec = (\{.*?\});\n", page, flags=re.S)
    assert found, "no spec in the page"
    return json.loads(found.group(1))


def test_a_chart_saves_as_png_svg_and_html_that_loads_nothing(tmp_path):
    chart = cl.plot.lateness(MESSY)

    png = cl.plot.save(chart, tmp_path / "lateness.png")
    assert png == tmp_path / "lateness.png"
    width, height = png_size(png)
    small = png_size(cl.plot.save(chart, tmp_path / "small.png", scale=1))
    assert (width, height) == (small[0] * 2, small[1] * 2)  # scale=2 by default, for screens

    svg = cl.plot.save(chart, tmp_path / "lateness.svg").read_text()
    assert svg.startswith("<svg") and "</svg>" in svg

    page = cl.plot.save(chart, tmp_path / "lateness.html").read_text()
    assert page.startswith("<!DOCTYPE html>")
    markup = re.sub(r"(<script[^>]*>).*?</script>", r"\1", page, flags=re.S)  # no script text
    assert not re.search(r"(src|href)=", markup)  # nothing fetched (tests/browser draws it)
    assert "vegaEmbed" in page
    assert saved_spec(page) == json.loads(chart.to_json())


def test_the_widgets_charts_save_as_they_are_now(tmp_path):
    timeline = cl.timeline(MESSY)
    timeline.name_picker.value = "delivered"
    page = cl.plot.save(timeline, tmp_path / "timeline.html").read_text()
    assert saved_spec(page) == json.loads(timeline.chart.chart.to_json())  # the filter shows
    assert png_size(cl.plot.save(timeline, tmp_path / "timeline.png"))[0] > 300
    # the JupyterChart itself, as the widget's .chart
    assert cl.plot.save(timeline.chart, tmp_path / "chart.svg").read_text().startswith("<svg")

    view = cl.lateness_view(MESSY)
    assert png_size(cl.plot.save(view, tmp_path / "view.png"))[0] > 300

    explorer = cl.explore(
        MESSY.filter(MESSY["aggregate_type"] == "parcel"),
        cl.sample.parcel_state,
        types=cl.sample.parcel_types,
    )
    explorer.at_slider.value = explorer.at_slider.options[1][1]  # moves the chart's cut only
    saved = saved_spec(cl.plot.save(explorer, tmp_path / "explorer.html").read_text())
    cut = {p["name"]: p["value"] for p in saved["params"]}
    assert cut["at_us"] == explorer.chart.params.at_us != explorer.chart.spec["params"][0]["value"]


def test_what_cannot_be_saved_is_refused_and_nothing_written(tmp_path):
    chart = cl.plot.lateness(MESSY)
    with pytest.raises(SchemaError, match=r"'\.pdf'.*\.png, \.svg or \.html"):
        cl.plot.save(chart, tmp_path / "lateness.pdf")
    with pytest.raises(SchemaError, match="not a chart"):
        cl.plot.save(MESSY, tmp_path / "frame.png")
    with pytest.raises(SchemaError, match="no folder"):
        cl.plot.save(chart, tmp_path / "missing" / "lateness.png")
    assert list(tmp_path.iterdir()) == []
