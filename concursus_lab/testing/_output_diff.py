"""What changed in a cell's outputs, one diff per output, in one direction everywhere.

``concursus-lab check`` shows the same lines on the console (the failing cell's report) and
on the HTML page of its artifacts: ``-`` the stored output, ``+`` what the notebook shows now,
as ``git diff`` shows an edit. An output with several representations (a polars table has
``text/html`` and ``text/plain``, a chart its spec and its text form) is shown once, by the
first of :data:`PREFERENCE` that changed, so a table is read as text, not as markup.
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import json
from collections.abc import Callable, Collection, Sequence
from typing import Any

#: Which representation of an output is shown, when several changed.
PREFERENCE = ("text/plain", "stdout", "stderr", "error", "text/markdown", "text/latex")

#: The legend both the console and the HTML page give.
LEGEND = "- what the notebook stored, + what it shows now"


@dataclasses.dataclass(frozen=True)
class OutputDiff:
    """How one output of a cell changed.

    Attributes
    ----------
    output : int
        Its position among the cell's outputs (streams of one name merged), from 0.
    kind : str
        What is compared: a MIME type (``text/plain``), a stream (``stdout``) or ``error``.
    lines : tuple of str
        ``- `` stored, ``+ `` now, two spaces for context, ``…`` between distant changes.
    """

    output: int
    kind: str
    lines: tuple[str, ...]

    @property
    def title(self) -> str:
        return f"output {self.output} ({self.kind})"

    def to_dict(self) -> dict[str, Any]:
        return {"output": self.output, "kind": self.kind, "lines": list(self.lines)}

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> OutputDiff:
        return cls(int(value["output"]), str(value["kind"]), tuple(value["lines"]))


def diff_outputs(
    stored: Sequence[Any],
    now: Sequence[Any],
    *,
    sanitize: Callable[[str], str] = lambda text: text,
    skip: Collection[str] = (),
) -> list[OutputDiff]:
    """The outputs that differ between ``stored`` and ``now`` (nbformat outputs, paired by
    position), after ``sanitize``; representations named in ``skip`` are not compared."""
    found = []
    for index, (before, after) in enumerate(itertools.zip_longest(stored, now)):
        old, new = _views(before, sanitize, skip), _views(after, sanitize, skip)
        if old == new:
            continue
        kinds = [*PREFERENCE, *sorted(set(old) | set(new))]
        kind = next(k for k in kinds if old.get(k) != new.get(k))
        found.append(OutputDiff(index, kind, _lines(old.get(kind, ""), new.get(kind, ""))))
    return found


def render(diffs: Sequence[OutputDiff]) -> list[str]:
    """The console's lines for ``diffs``: each output's title, then its lines, indented."""
    lines = [LEGEND]
    for diff in diffs:
        lines.append(f"{diff.title}:")
        lines.extend(f"  {line}" for line in diff.lines)
    return lines


def _views(output: Any, sanitize: Callable[[str], str], skip: Collection[str]) -> dict[str, str]:
    """Each representation of one output as sanitised text: ``{kind: text}``."""
    if output is None:
        return {}
    kind = output.get("output_type")
    if kind == "stream":
        return {output.get("name", "stdout"): sanitize(_text(output.get("text", "")))}
    if kind == "error":
        return {"error": sanitize(f"{output.get('ename', '')}: {output.get('evalue', '')}")}
    data = output.get("data", {})
    return {mime: sanitize(_text(value)) for mime, value in data.items() if mime not in skip}


def _text(value: Any) -> str:
    """Text as one string; a JSON value (a chart's spec, a widget's state) as indented JSON
    with sorted keys, so that its diff shows the lines that changed."""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "".join(value)
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=1, sort_keys=True, default=str)


def _lines(before: str, after: str) -> tuple[str, ...]:
    """A unified diff of two texts without its file headers: ``- ``, ``+ ``, ``  ``, ``…``."""
    diff = list(difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=3))
    lines: list[str] = []
    for line in diff[2:]:  # the first two are the ---/+++ headers
        if line.startswith("@@"):
            if lines:
                lines.append("…")
            continue
        lines.append(f"{line[:1]} {line[1:]}")
    return tuple(lines)
