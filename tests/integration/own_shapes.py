"""What the tests of tables and topics of your own shape share: the command line run on a
mapped URL (``concursus-lab copy`` into a store, ``concursus-lab check --source``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "concursus_lab", *args], capture_output=True, text=True, timeout=600
    )


def copy_and_check(url: str, folder: Path) -> tuple[str, int]:
    """Copy ``url`` into a new store under ``folder``, then run a notebook that counts the
    events of ``cl.open()`` under ``check --update`` and ``check`` with ``--source url``.

    Returns what ``copy`` printed and the count the notebook stored (both commands must pass).
    """
    copied = cli("copy", url, str(folder / "store"), "--create", "--no-progress")
    assert copied.returncode == 0, copied.stderr
    nb = nbformat.v4.new_notebook()
    count = "import concursus_lab as cl\ncl.open().events(duplicates='keep').height"
    nb.cells = [nbformat.v4.new_code_cell(count)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    path = folder / "count.ipynb"
    nbformat.write(nb, path)
    updated = cli("check", "--update", str(path), "--source", url)
    assert updated.returncode == 0, updated.stdout + updated.stderr
    stored = nbformat.read(path, as_version=4).cells[0].outputs[0]["data"]["text/plain"]
    checked = cli("check", str(path), "--source", url)
    assert checked.returncode == 0, checked.stdout
    return copied.stdout, int(stored)
