"""`concursus-lab check`: notebooks that pass, change, raise, and follow the source."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

import concursus_lab as cl

pytestmark = pytest.mark.slow


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "concursus_lab", *args],
        capture_output=True,
        text=True,
        timeout=600,
    )


def notebook(path: Path, *cells: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nbformat.write(nb, path)
    return path


COUNTS = ("import concursus_lab as cl\nstore = cl.open()\nprint(store)\nstore.events().height",)


def test_update_then_check_passes_and_outputs_follow_the_source(tmp_path):
    nb = notebook(tmp_path / "counts.ipynb", *COUNTS)
    updated = cli("check", "--update", str(nb), "--source", "fixture:messy")
    assert updated.returncode == 0, updated.stdout + updated.stderr
    stored = nbformat.read(nb, as_version=4).cells[0].outputs
    assert "MemorySource('fixture:messy': 15 events" in stored[0]["text"]
    assert stored[1]["data"]["text/plain"] == "15"

    same = cli("check", str(nb), "--source", "fixture:messy")
    assert same.returncode == 0, same.stdout
    assert "1 passed" in same.stdout

    other = cli("check", str(nb), "--source", "fixture:parcels", "--artifacts", str(tmp_path))
    assert other.returncode == 1
    assert "Cell outputs differ" in other.stdout
    assert "128" in other.stdout  # the other source's count is shown in the difference

    cli("check", "--update", str(nb), "--source", "fixture:parcels")
    assert cli("check", str(nb), "--source", "fixture:parcels").returncode == 0


def test_a_changed_output_fails_and_shows_the_difference(tmp_path):
    nb = notebook(tmp_path / "changed.ipynb", "print('parcels: 3')")
    assert cli("check", "--update", str(nb)).returncode == 0
    edited = nbformat.read(nb, as_version=4)
    edited.cells[0].outputs[0]["text"] = "parcels: 4\n"
    nbformat.write(edited, nb)
    artifacts = tmp_path / "artifacts"
    result = cli("check", str(nb), "--artifacts", str(artifacts))
    assert result.returncode == 1
    assert "parcels: 4" in result.stdout and "parcels: 3" in result.stdout
    assert f"artifacts of 1 failing notebook(s) in {artifacts}/" in result.stdout
    page = (artifacts / "changed.diff.html").read_text()
    assert "<span class='del'>-  parcels: 4</span>" in page  # what was stored
    assert "<span class='add'>+  parcels: 3</span>" in page  # what it shows now
    executed = nbformat.read(artifacts / "changed.executed.ipynb", as_version=4)
    assert executed.cells[0].outputs[0]["text"] == "parcels: 3\n"
    assert 'failures="1"' in (artifacts / "junit.xml").read_text()
    assert cli("check", "--lax", str(nb)).returncode == 0  # lax only asks that cells run


def test_artifacts_are_written_on_failure_only(tmp_path):
    nb = notebook(tmp_path / "fine.ipynb", "import tempfile\nprint(tempfile.mkdtemp())")
    assert cli("check", "--update", str(nb)).returncode == 0
    artifacts = tmp_path / "artifacts"
    assert cli("check", str(nb), "--artifacts", str(artifacts)).returncode == 0
    assert not artifacts.exists()
    stale = nbformat.read(nb, as_version=4)
    stale.cells[0].source = "import tempfile\nprint(tempfile.mkdtemp(), 'and more')"
    nbformat.write(stale, nb)
    assert cli("check", str(nb), "--artifacts", str(artifacts)).returncode == 1
    page = (artifacts / "fine.diff.html").read_text()
    assert "TMPPATH" in page and "/tmp/" not in page.split("<pre>", 1)[1]  # sanitised
    assert cli("check", str(nb), "--no-artifacts").returncode == 1


def test_a_notebook_that_raises_fails(tmp_path):
    nb = notebook(tmp_path / "raises.ipynb", "raise ValueError('boom')")
    result = cli("check", str(nb), "--artifacts", str(tmp_path / "artifacts"))
    assert result.returncode == 1
    assert "boom" in result.stdout
    assert "The notebook raised" in (tmp_path / "artifacts" / "raises.diff.html").read_text()


def test_update_never_stores_a_notebook_that_raised(tmp_path):
    good = notebook(tmp_path / "good.ipynb", "print('fine')")
    bad = notebook(tmp_path / "bad.ipynb", "print('before')", "raise ValueError('boom')")
    before = bad.read_bytes()
    result = cli("check", "--update", str(good), str(bad))
    assert result.returncode == 1
    assert bad.read_bytes() == before  # no traceback stored as the expected output
    assert nbformat.read(good, as_version=4).cells[0].outputs[0]["text"] == "fine\n"
    assert f"skipped 1 that raised: {bad}" in result.stdout


def test_shipped_sanitisers_hide_what_varies(tmp_path):
    nb = notebook(
        tmp_path / "varies.ipynb",
        "import tempfile, time\n"
        "print(object())\n"
        "print(tempfile.mkdtemp())\n"
        "print(f'took {time.perf_counter() % 7:.2f} s')",
    )
    assert cli("check", "--update", str(nb)).returncode == 0
    result = cli("check", str(nb))
    assert result.returncode == 0, result.stdout


def test_no_notebooks_is_not_a_silent_pass(tmp_path):
    result = cli("check", str(tmp_path))
    assert result.returncode == 5
    assert "no notebooks" in result.stdout


def test_a_bad_source_fails_before_any_notebook_runs(tmp_path):
    nb = notebook(tmp_path / "x.ipynb", "1")
    result = cli("check", str(nb), "--source", str(tmp_path / "nowhere"))
    assert result.returncode == 2
    assert "create=True" in result.stderr


def test_default_source_reads_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("CONCURSUS_LAB_SOURCE", "fixture:messy")
    assert cl.sources.default_source() == "fixture:messy"
    assert cl.open().events().height == 15


CHART = (
    "import altair as alt, polars as pl, concursus_lab as cl\n"
    "cl.plot.offline()\n"
    "data = pl.DataFrame({'name': ['delivered', 'received'], 'events': [3, 5]})\n"
    "alt.Chart(data).mark_bar().encode(x='name:N', y='events:Q')"
)


def test_a_changed_chart_fails_with_the_line_that_changed(tmp_path):
    nb = notebook(tmp_path / "chart.ipynb", CHART)
    assert cli("check", "--update", str(nb)).returncode == 0
    assert cli("check", str(nb)).returncode == 0  # its text form is the same in every run
    edited = nbformat.read(nb, as_version=4)
    edited.cells[0].source = CHART.replace("mark_bar", "mark_line")
    nbformat.write(edited, nb)
    result = cli("check", str(nb), "--artifacts", str(tmp_path / "artifacts"))
    assert result.returncode == 1
    assert 'type: "bar"' in result.stdout and 'type: "line"' in result.stdout
    page = (tmp_path / "artifacts" / "chart.diff.html").read_text()
    assert "<span class='del'>-    type: &quot;bar&quot;</span>" in page


WIDGET = (
    "import concursus_lab as cl\n"
    "timeline = cl.timeline(cl.sample.fixture('messy'))\n"
    "timeline.name_picker.value = 'delivered'\n"
    "timeline"
)


def test_a_changed_widget_state_fails(tmp_path):
    nb = notebook(tmp_path / "widget.ipynb", WIDGET)
    assert cli("check", "--update", str(nb)).returncode == 0
    assert cli("check", str(nb)).returncode == 0
    edited = nbformat.read(nb, as_version=4)
    edited.cells[0].source = WIDGET.replace("'delivered'", "'receivedAtDepot'")
    nbformat.write(edited, nb)
    result = cli("check", str(nb), "--no-artifacts")
    assert result.returncode == 1
    assert "mismatch 'text/plain'" in result.stdout  # the widget's summary of its state
    assert "- Timeline: 5 events of 5 aggregates" in result.stdout
    assert "+ Timeline: 4 events of 3 aggregates" in result.stdout
