"""nbval as ``--nbval-concursus-lab`` runs it: notebooks run once, failures read plainly.

The plugin puts these in place of nbval's own notebook and cell (subclasses: nbval's
execution and comparison are unchanged):
- **A kernel that dies is noticed at once.** nbval waits for a cell's reply as long as the
  cell timeout (2000 s by default) even when the kernel process is gone; here every wait looks
  at the process twice a second. The cell fails with how the kernel ended, and the cells after
  it are skipped ("did not run: the kernel died in Cell 2"), not run against a dead kernel.
- **Output written straight to file descriptor 1** (a C library, ``os.write(1, ...)``, a
  subprocess) is not part of a cell's output, in ``check --update`` as in ``check`` (both run
  here): ipykernel, which leaves descriptors alone under pytest, would otherwise mix it into
  ``print``'s output in an order that changes from run to run. pytest shows it as the
  cell's captured output when the cell fails.
- **A failing cell's report** shows each changed output once, ``-`` stored and ``+`` now
  (:mod:`concursus_lab.testing._output_diff`, as the artifacts' page does), and carries no
  colour codes when pytest's output is not a terminal.
- **With** ``--nbval-concursus-lab-record DIR`` each notebook as it ran, and what happened in
  each cell, is written to DIR (:mod:`concursus_lab.testing._notebook_record`), for
  ``concursus-lab check``'s artifacts and ``--update``.
"""

from __future__ import annotations

import copy
import re
import signal
import time
from pathlib import Path
from queue import Empty
from typing import Any

from concursus_lab.common.optional import require
from concursus_lab.testing import _notebook_record as record
from concursus_lab.testing._output_diff import diff_outputs, render

_NEEDED_BY = "Notebook checks (concursus-lab check)"
pytest = require("pytest", needed_by=_NEEDED_BY)
nbval = require("nbval.plugin", needed_by=_NEEDED_BY)
RunningKernel = require("nbval.kernel", needed_by=_NEEDED_BY).RunningKernel
IPyNbCell, IPyNbFile, NbCellError = nbval.IPyNbCell, nbval.IPyNbFile, nbval.NbCellError

#: Seconds between two looks at the kernel process while waiting for a message.
POLL = 0.5
#: Messages of nbval's cell errors that mean "the outputs are not the stored ones".
_DIFFERS = ("Cell outputs differ", "Unrun reference cell has outputs")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class KernelDied(RuntimeError):
    """The kernel process ended while a cell ran."""


class _WatchedKernel(RunningKernel):
    """nbval's kernel, whose waits for a message end as soon as the kernel process has."""

    def get_message(self, stream: str, timeout: float | None = None) -> Any:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = POLL if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                return super().get_message(stream, timeout=min(POLL, left))
            except Empty:
                if not self.is_alive():
                    raise KernelDied(
                        f"the kernel died while it ran this cell ({self.ending()})"
                    ) from None
                if deadline is not None and time.monotonic() >= deadline:
                    raise

    def ending(self) -> str:
        """How the kernel process ended: its exit code or the signal that killed it."""
        process = getattr(getattr(getattr(self, "km", None), "provisioner", None), "process", None)
        code = process.poll() if process is not None else None
        if code is None:
            return "it is gone"
        if code < 0:
            try:
                return f"killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"killed by signal {-code}"
        return f"exit code {code}"


def upgrade(node: Any) -> Any:
    """``node`` as this module runs it, when it is nbval's notebook; anything else as is."""
    if type(node) is IPyNbFile:
        return Notebook.from_parent(node.parent, path=node.path)
    return node


class Notebook(IPyNbFile):
    """nbval's notebook file, with a watched kernel and a record of what each cell did."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cell_runs: dict[int, record.CellRun] = {}
        self.cell_outputs: dict[int, list[Any]] = {}
        self.kernel_lost: str | None = None
        self.error: str | None = None

    def collect(self) -> Any:
        for item in super().collect():
            yield Cell.from_parent(
                self, name=item.name, cell_num=item.cell_num, cell=item.cell, options=item.options
            )

    def setup(self) -> None:
        try:
            super().setup()
        except Exception as exc:
            self.error = f"the kernel could not be started: {type(exc).__name__}: {exc}"
            raise
        self.kernel.__class__ = _WatchedKernel

    def teardown(self) -> None:
        try:
            folder = self.config.getoption("nbval_concursus_lab_record", default=None)
            if folder:
                self._write(Path(folder))
        finally:
            kernel = self.kernel
            super().teardown()  # stops a kernel that is still alive
            if kernel is not None and hasattr(kernel, "km") and not kernel.is_alive():
                kernel.kc.stop_channels()  # a dead kernel's sockets and files
                kernel.km.cleanup_resources()

    def _write(self, folder: Path) -> None:
        nb = getattr(self, "nb", None)
        if nb is None:  # never collected
            return
        code = [cell for cell in nb.cells if cell.cell_type == "code"]
        indices = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"]
        runs = tuple(
            self.cell_runs.get(num)
            or record.CellRun(num, indices[num], cell.source, "not run", self.kernel_lost or "")
            for num, cell in enumerate(code)
        )
        run = record.NotebookRun(Path(str(self.path)), Path(), runs, self.error)
        record.write(folder, run, self._executed(nb))

    def _executed(self, nb: Any) -> Any:
        """The stored notebook with this run's outputs: cells that did not run have none,
        cells nbval skipped keep theirs; execution counts from 1 over the cells that ran."""
        nbformat = require("nbformat", needed_by=_NEEDED_BY)
        executed = copy.deepcopy(nb)
        executed.metadata.pop("widgets", None)
        count = 0
        code = [cell for cell in executed.cells if cell.cell_type == "code"]
        for num, cell in enumerate(code):
            cell.metadata.pop("execution", None)
            run = self.cell_runs.get(num)
            if run is not None and run.outcome == "skipped":
                continue
            if run is None or run.outcome == "not run":
                cell.outputs, cell.execution_count = [], None
                continue
            count += 1
            cell.execution_count = count
            cell.outputs = nbval.coalesce_streams(
                [nbformat.from_dict(output) for output in self.cell_outputs.get(num, [])]
            )
            for output in cell.outputs:
                if output.output_type == "execute_result":
                    output.execution_count = count
        return executed


class Cell(IPyNbCell):
    """nbval's cell, whose failures read plainly and whose outcome is recorded."""

    parent: Notebook

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.markup = self.config.get_terminal_writer().hasmarkup
        if not self.markup:
            self.colors = nbval.nocolors
        self.diffs: list[Any] = []

    def runtest(self) -> None:
        notebook = self.parent
        kernel = notebook.kernel
        if notebook.kernel_lost is not None and (kernel is None or not kernel.is_alive()):
            self._record("not run", notebook.kernel_lost)
            # reported at the cell (nbval's name for it), as a skip mark's reason is
            raise pytest.skip.Exception(
                f"did not run: {notebook.kernel_lost}", _use_item_location=True
            )
        try:
            super().runtest()
        except pytest.skip.Exception:
            self._record("skipped", "nbval was told to skip it")
            raise
        except NbCellError as exc:
            differs = str(exc) in _DIFFERS
            self._record("differs" if differs else "raised", self._plain(exc, traceback=True))
            self._lost(exc)
            raise
        except Exception as exc:
            self._record("raised", str(exc))
            self._lost(exc)
            raise
        else:
            self._record("passed", "")

    def _lost(self, exc: BaseException) -> None:
        kernel = self.parent.kernel
        if kernel is None or not hasattr(kernel, "km") or not kernel.is_alive():
            verb = "died" if isinstance(exc, KernelDied) else "was stopped"
            self.parent.kernel_lost = f"the kernel {verb} in Cell {self.cell_num}"

    def _record(self, outcome: str, message: str) -> None:
        notebook = self.parent
        index = [i for i, c in enumerate(notebook.nb.cells) if c.cell_type == "code"]
        notebook.cell_runs[self.cell_num] = record.CellRun(
            self.cell_num,
            index[self.cell_num],
            self.cell.source,
            outcome,
            message,
            tuple(self.diffs),
        )
        notebook.cell_outputs[self.cell_num] = copy.deepcopy(self.test_outputs or [])

    def compare_outputs(self, test: Any, ref: Any, skip_compare: Any = None) -> bool:
        same = super().compare_outputs(test, ref, skip_compare)
        if not same:
            skip = skip_compare or self.parent.skip_compare
            self.diffs = diff_outputs(ref, test, sanitize=self.sanitize, skip=skip)
        return same

    def repr_failure(self, excinfo: Any, style: Any = None) -> str:
        exc = excinfo.value
        if isinstance(exc, (NbCellError, KernelDied)):
            head = [f"Cell {self.cell_num}: {self._plain(exc)}", "", "Input:", self.cell.source]
            text = "\n".join([*head, "", *self._details(exc)])
        else:
            text = super().repr_failure(excinfo)
        return text if self.markup else _ANSI.sub("", text)

    def _details(self, exc: BaseException) -> list[str]:
        if self.diffs:
            return render(self.diffs)
        inner = getattr(exc, "inner_traceback", None)
        return ["Traceback:", inner] if inner else []

    def _plain(self, exc: BaseException, *, traceback: bool = False) -> str:
        """The error's message (and the kernel's traceback), without colour codes."""
        text = str(exc)
        inner = getattr(exc, "inner_traceback", None)
        if traceback and inner and not self.diffs:
            text += "\n" + inner.strip("\n")
        return _ANSI.sub("", text)
