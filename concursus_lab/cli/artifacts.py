"""What a failed ``concursus-lab check`` leaves for the people who read CI: an artifacts folder.

For every notebook with a cell whose outputs changed, or that raised, timed out or lost its
kernel, the folder gets, from the run that was checked (nothing runs twice):
- ``<name>.executed.ipynb``, the notebook as it ran;
- ``<name>.diff.html``, a page with each such cell: its source beside its outputs' diffs,
  ``-`` what was stored and ``+`` what it shows now, numbered ``Cell 0``, ``Cell 1`` (code cells,
  as nbval and the console number them), with the error of a cell that raised. The lines
  are those the console showed (:mod:`concursus_lab.testing._output_diff`), after the same
  sanitisers. The page needs no script and no network;
- ``junit.xml``, the JUnit report of the run.

Nothing is written when every notebook passes.
"""

from __future__ import annotations

import html
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path

from concursus_lab.testing._notebook_record import CellRun, NotebookRun
from concursus_lab.testing._output_diff import LEGEND

_STYLE = """
body { font: 13px/1.45 system-ui, sans-serif; margin: 1.5em; max-width: 1400px; }
h1 { font-size: 16px; } h2 { font-size: 14px; margin: 1.6em 0 .4em; }
pre { font: 12px/1.45 ui-monospace, SFMono-Regular, Menlo, monospace; background: #f6f8fa;
  padding: .8em 1em; border-radius: 6px; overflow-x: auto; margin: 0 0 .6em; }
.cell { display: grid; grid-template-columns: minmax(0, 2fr) minmax(0, 3fr); gap: 1em; }
.kind { color: #0550ae; font-weight: 600; margin: 0 0 .2em; }
.del { background: #ffebe9; color: #82071e; } .add { background: #dafbe1; color: #116329; }
.note { color: #57606a; }
"""


def write(folder: Path, failed: Sequence[NotebookRun], junit: Path | None) -> list[Path]:
    """Store the artifacts of ``failed`` in ``folder`` (which exists); returns what was
    written. ``junit`` is copied in unless it is already there."""
    written = []
    if junit is not None and junit.exists():
        target = folder / "junit.xml"
        if junit.resolve() != target.resolve():
            shutil.copyfile(junit, target)
        written.append(target)
    for run in failed:
        stem = run.notebook.stem
        executed = folder / f"{stem}.executed.ipynb"
        shutil.copyfile(run.executed, executed)
        page = folder / f"{stem}.diff.html"
        page.write_text(diff_page(run))
        written += [executed, page]
    return written


def diff_page(run: NotebookRun) -> str:
    """A self-contained HTML page of the cells of ``run`` that changed or raised."""
    parts = [
        f"<h1>{html.escape(str(run.notebook))}</h1>",
        f"<p>{html.escape(LEGEND)} "
        "(<code>concursus-lab check --update</code> stores the new ones).</p>",
    ]
    if run.error is not None:
        parts.append(
            f"<p><b>The notebook did not run:</b></p><pre class='del'>"
            f"{html.escape(run.error)}</pre>"
        )
    raised = [f"Cell {cell.cell}" for cell in run.cells if cell.outcome == "raised"]
    if raised:
        parts.append(f"<p><b>The notebook raised</b> in {', '.join(raised)} (below).</p>")
    for cell in run.cells:
        if cell.outcome in ("differs", "raised"):
            parts.append(_cell(cell))
    parts += _not_run(run.cells)
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>"
        f"{html.escape(run.notebook.name)}</title><style>{_STYLE}</style></head><body>"
        + "\n".join(parts)
        + "</body></html>\n"
    )


def _cell(cell: CellRun) -> str:
    what = "failed" if cell.outcome == "raised" else "outputs differ"
    outputs = []
    for diff in cell.diffs:
        lines = "\n".join(_line(line) for line in diff.lines)
        outputs.append(f"<p class='kind'>{html.escape(diff.title)}</p><pre>{lines}</pre>")
    if cell.outcome == "raised":
        outputs.append(f"<pre class='del'>{html.escape(cell.message)}</pre>")
    elif not cell.diffs:
        outputs.append(f"<pre>{html.escape(cell.message)}</pre>")
    return (
        f"<h2>Cell {cell.cell} <span class='note'>({what})</span></h2><div class='cell'>"
        f"<pre>{html.escape(cell.source)}</pre><div>{''.join(outputs)}</div></div>"
    )


def _not_run(cells: Iterable[CellRun]) -> list[str]:
    skipped = [cell for cell in cells if cell.outcome == "not run"]
    if not skipped:
        return []
    names = ", ".join(f"Cell {cell.cell}" for cell in skipped)
    why = skipped[0].message or "pytest stopped or deselected them"
    return [f"<p class='note'>Did not run: {names} ({html.escape(why)}).</p>"]


def _line(line: str) -> str:
    escaped = html.escape(line)
    if line.startswith("- "):
        return f"<span class='del'>{escaped}</span>"
    if line.startswith("+ "):
        return f"<span class='add'>{escaped}</span>"
    return escaped
