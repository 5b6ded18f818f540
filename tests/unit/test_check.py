"""`concursus-lab check`: notebooks that pass, change, raise, and follow the source."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

import concursus_lab as cl

pytestmark = pytest.mark.slow


#: The environment of a shell: without the variable pytest sets for the test running, which
#: ipykernel reads (under it, a kernel leaves file descriptors alone).
SHELL = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "concursus_lab", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=SHELL,
    )


def within(seconds: float, *args: str) -> subprocess.CompletedProcess:
    """``concursus-lab ARGS``, failed (and its whole process group killed, kernels included)
    when it has not finished after ``seconds``."""
    process = subprocess.Popen(
        [sys.executable, "-m", "concursus_lab", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env=SHELL,
    )
    try:
        out, err = process.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        pytest.fail(f"still running after {seconds} s:\n{out}\n{err}")
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


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
    with_title = nbformat.read(nb, as_version=4)  # a markdown cell first: code cell 0 is cell 1
    with_title.cells.insert(0, nbformat.v4.new_markdown_cell("# Parcels"))
    nbformat.write(with_title, nb)
    assert cli("check", "--update", str(nb)).returncode == 0
    edited = nbformat.read(nb, as_version=4)
    edited.cells[1].outputs[0]["text"] = "parcels: 4\n"
    nbformat.write(edited, nb)
    artifacts = tmp_path / "artifacts"
    result = cli("check", str(nb), "--artifacts", str(artifacts))
    assert result.returncode == 1
    assert "\x1b[" not in result.stdout + result.stderr  # no colour codes in a redirected log
    # the console and the page agree: - is what was stored, + what the notebook shows now
    assert "- parcels: 4" in result.stdout and "+ parcels: 3" in result.stdout
    assert "Cell 0" in result.stdout
    assert f"artifacts of 1 failing notebook(s) in {artifacts}/" in result.stdout
    assert f"generated xml file: {artifacts / 'junit.xml'}" in result.stdout  # the kept copy
    page = (artifacts / "changed.diff.html").read_text()
    assert "<span class='del'>- parcels: 4</span>" in page  # what was stored
    assert "<span class='add'>+ parcels: 3</span>" in page  # what it shows now
    assert "Cell 0" in page and "cells/1" not in page  # numbered as on the console
    assert "print(&#x27;parcels: 3&#x27;)" in page  # the cell's source beside its outputs
    executed = nbformat.read(artifacts / "changed.executed.ipynb", as_version=4)
    assert executed.cells[1].outputs[0]["text"] == "parcels: 3\n"
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
    assert "<span class='del'>-   type: &quot;bar&quot;</span>" in page
    assert "<span class='add'>+   type: &quot;line&quot;</span>" in page


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
    assert "output 0 (text/plain)" in result.stdout  # the widget's summary of its state
    assert "- Timeline: 4 events of 3 aggregates" in result.stdout  # stored: 'delivered'
    assert "+ Timeline: 5 events of 5 aggregates" in result.stdout  # now: 'receivedAtDepot'


def test_a_notebook_that_does_not_exist_is_named(tmp_path):
    result = cli("check", str(tmp_path / "nonexistent.ipynb"))
    assert result.returncode == 2
    assert f"{str(tmp_path / 'nonexistent.ipynb')!r} does not exist" in result.stderr


DIES = (
    "print('before')",
    "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)",
    "print('after')",
)


def test_a_kernel_that_dies_fails_at_once_and_leaves_its_artifacts(tmp_path):
    nb = notebook(tmp_path / "dies.ipynb", *DIES)
    artifacts = tmp_path / "artifacts"
    # a cell timeout of 10 minutes, and 2 minutes to finish: the death is noticed at once
    result = within(
        120, "check", str(nb), "--artifacts", str(artifacts), "--", "--nbval-cell-timeout=600"
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "the kernel died while it ran this cell" in result.stdout
    assert "did not run: the kernel died in Cell 1" in result.stdout
    executed = nbformat.read(artifacts / "dies.executed.ipynb", as_version=4)
    assert executed.cells[0].outputs[0]["text"] == "before\n"  # from the run already made
    assert executed.cells[2].outputs == []
    page = (artifacts / "dies.diff.html").read_text()
    assert "the kernel died while it ran this cell" in page
    assert "os.kill(os.getpid(), signal.SIGKILL)" in page
    assert (artifacts / "junit.xml").exists()


def test_a_cell_that_hangs_fails_at_its_timeout_and_is_not_run_again(tmp_path):
    nb = notebook(tmp_path / "hangs.ipynb", "print('start')", "import time\ntime.sleep(3600)")
    artifacts = tmp_path / "artifacts"
    # a second run, for the artifacts, would wait 15 minutes
    result = within(
        120, "check", str(nb), "--artifacts", str(artifacts), "--", "--nbval-cell-timeout=5"
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Timeout of 5 seconds exceeded" in result.stdout
    executed = nbformat.read(artifacts / "hangs.executed.ipynb", as_version=4)
    assert executed.cells[0].outputs[0]["text"] == "start\n"
    assert "Timeout of 5 seconds exceeded" in (artifacts / "hangs.diff.html").read_text()


def test_the_timeout_option_bounds_each_cell(tmp_path):
    nb = notebook(tmp_path / "slow.ipynb", "import time\ntime.sleep(3600)")
    result = cli("check", str(nb), "--timeout", "3", "--no-artifacts")
    assert result.returncode == 1
    assert "Timeout of 3 seconds exceeded" in result.stdout


def test_an_artifacts_folder_that_cannot_be_made_is_said_before_anything_runs(tmp_path):
    nb = notebook(tmp_path / "raises.ipynb", "raise ValueError('boom')")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = cli("check", str(nb), "--artifacts", str(blocker / "artifacts"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"cannot create the artifacts folder {str(blocker / 'artifacts')!r}" in result.stderr
    assert "--no-artifacts" in result.stderr
    assert "boom" not in result.stdout  # nothing ran


def test_output_written_straight_to_file_descriptor_1_is_stored_as_check_sees_it(tmp_path):
    # --update runs the notebook as check does: fd 1 is not part of a cell's output in
    # either (ipykernel would interleave it with print's at random), so what is stored passes
    nb = notebook(
        tmp_path / "fd.ipynb",
        "import os\nos.write(1, b'straight to fd 1\\n')\nprint('and by print')",
    )
    assert cli("check", "--update", str(nb)).returncode == 0
    stored = nbformat.read(nb, as_version=4).cells[0].outputs
    assert [output["text"] for output in stored] == ["and by print\n"]
    for _ in range(3):
        result = cli("check", str(nb), "--no-artifacts")
        assert result.returncode == 0, result.stdout


def test_a_changed_table_is_shown_once_as_text(tmp_path):
    table = "import polars as pl\npl.DataFrame({'parcel': ['p1', 'p2'], 'loads': [1, 2]})"
    nb = notebook(tmp_path / "table.ipynb", table)
    assert cli("check", "--update", str(nb)).returncode == 0
    edited = nbformat.read(nb, as_version=4)
    edited.cells[0].source = table.replace("[1, 2]", "[1, 3]")
    nbformat.write(edited, nb)
    artifacts = tmp_path / "artifacts"
    result = cli("check", str(nb), "--artifacts", str(artifacts))
    assert result.returncode == 1
    assert "output 0 (text/plain)" in result.stdout
    assert "<td>" not in result.stdout and "text/html" not in result.stdout
    page = (artifacts / "table.diff.html").read_text()
    assert page.count("output 0 (") == 1
    assert "&lt;td&gt;" not in page  # the HTML markup is not diffed a second time
