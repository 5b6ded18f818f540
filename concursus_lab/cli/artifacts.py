"""What a failed ``concursus-lab check`` leaves for the people who read CI: an artifacts folder.

For every notebook whose outputs no longer match, :func:`write` stores in the folder:
- ``<name>.executed.ipynb``, the notebook as it runs now;
- ``<name>.diff.html``, a page that shows what changed against the stored notebook, cell by
  cell. nbdime computes the diff, after the same sanitisers ``check`` applies (so addresses,
  temporary paths and progress bars never show as changes), and the page needs no script and
  no network;
- ``junit.xml``, the JUnit report of the run.

Nothing is written when every notebook passes. Which notebooks failed is read from the JUnit
report that nbval writes: one ``testcase`` per cell, its ``classname`` the notebook.
"""

from __future__ import annotations

import configparser
import html
import io
import json
import re
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from concursus_lab.testing import SANITIZE_FILE

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_STYLE = """
body { font: 13px/1.45 ui-monospace, SFMono-Regular, Menlo, monospace; margin: 1.5em; }
h1 { font: 600 16px system-ui, sans-serif; } p { font: 13px system-ui, sans-serif; }
pre { background: #f6f8fa; padding: 1em; border-radius: 6px; overflow-x: auto; }
.h { color: #0550ae; font-weight: 600; } .at { color: #8250df; }
.del { background: #ffebe9; color: #82071e; } .add { background: #dafbe1; color: #116329; }
"""


def failing(junit: Path, notebooks: Sequence[Path]) -> list[Path]:
    """The notebooks with at least one failing or erroring cell in the JUnit report."""
    try:
        root = ET.parse(junit).getroot()
    except (OSError, ET.ParseError):
        return []
    bad = {
        case.get("classname", "")
        for case in root.iter("testcase")
        if case.find("failure") is not None or case.find("error") is not None
    }
    return [nb for nb in notebooks if any(_names(nb, name) for name in bad)]


def _names(notebook: Path, classname: str) -> bool:
    """Whether nbval's ``classname`` (a path, with ``.`` or ``/`` between parts) is ``notebook``."""
    for candidate in (str(notebook), notebook.as_posix(), str(notebook.resolve())):
        if classname in (candidate, candidate.replace("/", ".")):
            return True
    return classname.endswith(notebook.name)


def write(folder: Path, failed: Sequence[Path], junit: Path, execute: Any) -> list[Path]:
    """Store the artifacts of ``failed`` in ``folder``; returns what was written.

    ``execute(path)`` runs one notebook and returns ``(notebook, error)``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    if junit.exists():
        shutil.copyfile(junit, folder / "junit.xml")
        written.append(folder / "junit.xml")
    import nbformat

    for path in failed:
        executed, error = execute(path)
        target = folder / f"{path.stem}.executed.ipynb"
        nbformat.write(executed, target)
        page = folder / f"{path.stem}.diff.html"
        page.write_text(diff_page(path, nbformat.read(path, as_version=4), executed, error))
        written += [target, page]
    return written


def diff_page(path: Path, stored: Any, executed: Any, error: BaseException | None) -> str:
    """A self-contained HTML page of what changed from ``stored`` to ``executed``."""
    from nbdime.diffing.notebooks import diff_notebooks
    from nbdime.prettyprint import PrettyPrintConfig, pretty_print_diff

    before, after = sanitised(stored), sanitised(executed)
    out = io.StringIO()
    changes = diff_notebooks(before, after)
    config = PrettyPrintConfig(out=out, use_git=False, use_diff=False)  # no git, no diff(1)
    pretty_print_diff(before, changes, "", config)
    lines = [_line(text) for text in _ANSI.sub("", out.getvalue()).splitlines()]
    raised = (
        f"<p><b>The notebook raised:</b></p><pre class='del'>{html.escape(str(error))}</pre>"
        if error is not None
        else ""
    )
    body = "\n".join(lines) if changes else "(no difference after sanitising)"
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(path.name)}"
        f"</title><style>{_STYLE}</style></head><body><h1>{html.escape(str(path))}</h1>"
        "<p>Lines marked − are the stored outputs, + what the notebook shows now "
        "(<code>concursus-lab check --update</code> stores the new ones).</p>"
        f"{raised}<pre>{body}</pre></body></html>\n"
    )


def _line(text: str) -> str:
    escaped = html.escape(text)
    stripped = text.lstrip()
    if stripped.startswith("##"):
        return f"<span class='h'>{escaped}</span>"
    if stripped.startswith("@@"):
        return f"<span class='at'>{escaped}</span>"
    if stripped.startswith("-"):
        return f"<span class='del'>{escaped}</span>"
    if stripped.startswith("+"):
        return f"<span class='add'>{escaped}</span>"
    return escaped


def sanitised(notebook: Any) -> Any:
    """A copy of ``notebook`` with check's sanitisers applied to every output's text, and
    the metadata that changes at every run (execution counts and times) left out."""
    import copy

    rules = _rules()
    clean = copy.deepcopy(notebook)
    clean.metadata.pop("widgets", None)
    for cell in clean.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            continue
        cell.execution_count = None
        for output in cell.get("outputs", []):
            output.pop("execution_count", None)
            if "text" in output:
                output["text"] = _apply(rules, _text(output["text"]))
            for kind, value in output.get("data", {}).items():
                output["data"][kind] = _apply(rules, _text(value))
    return clean


def _text(value: Any) -> str:
    """Text as one string; a JSON output (a chart's spec, a widget's state) as indented JSON
    with sorted keys, so that its diff shows the lines that changed."""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "".join(value)
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=1, sort_keys=True, default=str)


def _rules() -> list[tuple[re.Pattern[str], str]]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(SANITIZE_FILE)
    return [(re.compile(parser[s]["regex"]), parser[s]["replace"]) for s in parser.sections()]


def _apply(rules: list[tuple[re.Pattern[str], str]], text: str) -> str:
    for pattern, replacement in rules:
        text = pattern.sub(replacement, text)
    return text
