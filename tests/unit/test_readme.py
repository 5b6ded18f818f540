"""The README's Python blocks run, so the documentation cannot lie."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_python_blocks():
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_block_runs(index, capsys):
    namespace: dict = {}
    for block in BLOCKS[: index + 1]:  # later blocks use names from earlier ones
        exec(compile(block, f"README.md block {index}", "exec"), namespace)
