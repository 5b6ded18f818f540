"""A chart's stable text form (plot/text_form.py): the same chart gives the same text, and a
changed mark, encoding or datum changes it."""

from __future__ import annotations

import altair as alt
import polars as pl

import concursus_lab as cl
from concursus_lab.plot.text_form import text_form, with_text_form


def _chart(mark: str = "bar", counts=(3, 5)) -> alt.Chart:
    data = pl.DataFrame({"name": ["delivered", "received"], "events": list(counts)})
    brush = alt.selection_interval()
    chart = getattr(alt.Chart(data), f"mark_{mark}")()
    return chart.encode(x="name:N", y="events:Q").add_params(brush)


def test_the_same_chart_gives_the_same_text_every_time():
    first, second = _chart().to_dict(), _chart().to_dict()
    assert text_form(first) == text_form(second)
    assert first["params"][0]["name"] in text_form(first)  # a selection's name is its content's


def test_a_changed_mark_or_datum_changes_the_text_on_the_line_that_changed():
    base = text_form(_chart().to_dict()).splitlines()
    line = text_form(_chart("line").to_dict()).splitlines()
    assert [b for b, c in zip(base, line, strict=True) if b != c] == ['  type: "bar"']
    recount = text_form(_chart(counts=(3, 6)).to_dict())
    assert recount != "\n".join(base)
    assert '{"events": 6, "name": "received"}' in recount
    assert "data 1: 2 rows, columns [events, name], digest" in recount


def test_the_workbench_s_charts_carry_their_text_form_beside_the_widget():
    chart = cl.plot.lateness(cl.sample.parcels(30, seed=2))
    drawn = with_text_form(lambda spec, **_: ({"application/x-widget": spec["mark"]}, {"m": 1}))
    data, metadata = drawn(chart.to_dict())
    assert metadata == {"m": 1} and data["application/x-widget"] == {"type": "bar"}
    assert data["text/plain"] == text_form(chart.to_dict())
    assert 'title: "Lateness: processing time − event time"' in data["text/plain"]
