"""What one run of a notebook under ``--nbval-concursus-lab`` left: the notebook as it ran,
and what happened in each code cell. Written by the pytest plugin, read by
``concursus-lab check`` for its artifacts and by ``check --update`` to store new outputs, so
neither runs a notebook a second time.

A record folder holds, for each notebook, ``<key>.ipynb`` (the notebook with the outputs of
this run) and ``<key>.json``::

    {"notebook": "/abs/path.ipynb", "error": null,
     "cells": [{"cell": 0, "index": 1, "source": "...", "outcome": "differs",
                "message": "Cell outputs differ", "diffs": [{"output": 0, ...}]}]}

``cell`` counts code cells from 0, as nbval names them (``Cell 0``); ``index`` counts every
cell. An outcome is one of :data:`OUTCOMES`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

from concursus_lab.common.optional import require
from concursus_lab.testing._output_diff import OutputDiff

#: What can happen to a code cell: it ran and matched; its outputs differ from the stored
#: ones; it raised, timed out or its kernel died; nbval was told to skip it; it did not run
#: (the kernel was gone, or pytest stopped or deselected it).
OUTCOMES = ("passed", "differs", "raised", "skipped", "not run")


@dataclasses.dataclass(frozen=True)
class CellRun:
    """What happened to one code cell."""

    cell: int
    index: int
    source: str
    outcome: str
    message: str = ""
    diffs: tuple[OutputDiff, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        value = dataclasses.asdict(self)
        value["diffs"] = [diff.to_dict() for diff in self.diffs]
        return value

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> CellRun:
        diffs = tuple(OutputDiff.from_dict(d) for d in value.get("diffs", []))
        return cls(**{**value, "diffs": diffs})


@dataclasses.dataclass(frozen=True)
class NotebookRun:
    """One notebook's run: its path, its cells, the executed notebook's file, and the error
    that kept it from running at all (a kernel that would not start), if any."""

    notebook: Path
    executed: Path
    cells: tuple[CellRun, ...]
    error: str | None = None

    @property
    def failed(self) -> bool:
        """Whether a cell differs or raised, or the notebook could not run."""
        return self.error is not None or any(c.outcome in ("differs", "raised") for c in self.cells)

    @property
    def raised(self) -> bool:
        """Whether a cell raised (or the notebook could not run): its outputs are not kept."""
        return self.error is not None or any(c.outcome == "raised" for c in self.cells)


def key(notebook: Path) -> str:
    """The file name, without suffix, of ``notebook``'s record: its name and a digest of its
    absolute path, so that two notebooks of one name in two folders stay apart."""
    path = str(notebook.resolve())
    return f"{notebook.stem}-{hashlib.sha256(path.encode()).hexdigest()[:10]}"


def write(folder: Path, run: NotebookRun, executed: Any) -> None:
    """Store ``run`` and the executed notebook in ``folder`` (created if need be)."""
    nbformat = require("nbformat", needed_by="Notebook checks (concursus-lab check)")

    folder.mkdir(parents=True, exist_ok=True)
    name = key(run.notebook)
    nbformat.write(executed, folder / f"{name}.ipynb")
    record = {
        "notebook": str(run.notebook.resolve()),
        "error": run.error,
        "cells": [cell.to_dict() for cell in run.cells],
    }
    (folder / f"{name}.json").write_text(json.dumps(record, indent=1))


def read(folder: Path) -> dict[Path, NotebookRun]:
    """Every run recorded in ``folder``, by the notebook's absolute path."""
    runs = {}
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        record = json.loads(path.read_text())
        notebook = Path(record["notebook"])
        runs[notebook] = NotebookRun(
            notebook=notebook,
            executed=path.with_suffix(".ipynb"),
            cells=tuple(CellRun.from_dict(cell) for cell in record["cells"]),
            error=record.get("error"),
        )
    return runs
