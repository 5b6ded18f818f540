"""The install a user makes: ``pip install concursus-lab`` with no extra answers questions on a
local store, and ``[check]`` runs ``concursus-lab check``, each in a fresh virtualenv.

One virtualenv for the session (the core install, then ``[check]`` on top), from PyPI through
pip's own cache, so a second run installs from disk. No server is needed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from concursus_lab.common.optional import EXTRAS

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def _run(command: list[str], *, cwd: Path, env: dict[str, str], timeout: float = 900):
    done = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="session")
def venv(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A fresh virtualenv with ``pip install <this checkout>`` and no extra."""
    root = tmp_path_factory.mktemp("install")
    source = root / "source"  # a copy, so that building leaves nothing in the checkout
    source.mkdir()
    shutil.copytree(
        ROOT / "concursus_lab", source / "concursus_lab",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.pop("CONCURSUS_LAB_SOURCE", None)
    path = root / "venv"
    _run([sys.executable, "-m", "venv", str(path)], cwd=root, env=env)
    env["PATH"] = f"{path / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    pip = [str(path / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    if Path("/opt/wheels").is_dir():
        pip += ["--find-links", "/opt/wheels"]
    _run([*pip, str(source)], cwd=root, env=env)
    found = {"CONCURSUS_LAB_TEST_PIP": " ".join(pip), "CONCURSUS_LAB_TEST_SRC": str(source)}
    return path, {**env, **found}


CORE_SCRIPT = textwrap.dedent(
    """
    import importlib.util, json, sys
    import concursus_lab as cl
    from concursus_lab.exceptions import MissingDependency
    from concursus_lab.sample import parcel_state, parcel_types

    store = cl.open(sys.argv[1], create=True)
    store.append(cl.sample.parcels(60, seed=4))
    deliveries = cl.open(sys.argv[1]).events(duplicates="keep")
    states = cl.state_at(deliveries, parcel_state, types=parcel_types, at="2026-03-09")
    errors = {}
    for name, call in {
        "plot": lambda: cl.plot.lateness(deliveries),
        "timeline": lambda: cl.timeline(deliveries),
        "kafka": lambda: cl.open("kafka://127.0.0.1:9/topic").events(),
    }.items():
        try:
            call()
        except MissingDependency as exc:
            errors[name] = str(exc)
    print(json.dumps({
        "file": cl.__file__,
        "deliveries": deliveries.height,
        "states": states.frame.height,
        "statuses": sorted(set(states.frame["status"].to_list())),
        "installed": sorted(m for m in sys.argv[2].split(",") if importlib.util.find_spec(m)),
        "errors": errors,
    }))
    """
)


def test_the_core_install_answers_state_at_on_a_local_store(venv, tmp_path):
    path, env = venv
    script = tmp_path / "core.py"
    script.write_text(CORE_SCRIPT)
    optional = ",".join(sorted(EXTRAS))
    out = _run(
        [str(path / "bin" / "python"), str(script), str(tmp_path / "store"), optional],
        cwd=tmp_path, env=env,
    )
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["file"].startswith(str(path))  # the installed package, not this checkout
    assert found["installed"] == []  # no optional package came with the core install
    assert found["deliveries"] > 60
    assert 0 < found["states"] <= 60
    assert "delivered" in found["statuses"]
    assert found["errors"].keys() == {"plot", "timeline", "kafka"}
    assert "pip install 'concursus-lab[lab]'" in found["errors"]["plot"]
    assert "pip install 'concursus-lab[lab]'" in found["errors"]["timeline"]
    assert "pip install 'concursus-lab[kafka]'" in found["errors"]["kafka"]


NOTEBOOK = {
    "cells": [
        {
            "cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
            "source": "import concursus_lab as cl\n"
            "from concursus_lab.sample import parcel_state, parcel_types\n"
            "states = cl.state_at(cl.open().events(), parcel_state, types=parcel_types, "
            "at='2026-03-09')\n"
            "print(states.frame.height, sorted(set(states.frame['status'])))",
        }
    ],
    "metadata": {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
    },
    "nbformat": 4,
    "nbformat_minor": 5,
}


def test_the_check_extra_runs_concursus_lab_check_on_a_notebook(venv, tmp_path):
    path, env = venv
    command = [str(path / "bin" / "concursus-lab"), "check"]
    notebook = tmp_path / "states.ipynb"
    notebook.write_text(json.dumps(NOTEBOOK))
    store = tmp_path / "store"
    _run(
        [str(path / "bin" / "python"), "-c",
         "import sys, concursus_lab as cl; "
         "cl.open(sys.argv[1], create=True).append(cl.sample.parcels(40, seed=2))", str(store)],
        cwd=tmp_path, env=env,
    )
    missing = subprocess.run(
        [*command, str(notebook), "--source", str(store)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert missing.returncode == 2
    assert "pip install 'concursus-lab[check]'" in missing.stderr

    pip = env["CONCURSUS_LAB_TEST_PIP"].split()
    _run([*pip, f"{env['CONCURSUS_LAB_TEST_SRC']}[check]"], cwd=tmp_path, env=env)
    _run([*command, "--update", str(notebook), "--source", str(store)], cwd=tmp_path, env=env)
    stored = json.loads(notebook.read_text())["cells"][0]["outputs"][0]["text"]
    assert "delivered" in "".join(stored)
    passed = _run([*command, str(notebook), "--source", str(store)], cwd=tmp_path, env=env)
    assert "1 passed" in passed.stdout

    # the check compares: an output that differs from the stored one fails it
    changed = json.loads(notebook.read_text())
    changed["cells"][0]["outputs"][0]["text"] = ["0 []\n"]
    notebook.write_text(json.dumps(changed))
    failed = subprocess.run(
        [*command, str(notebook), "--source", str(store), "--no-artifacts"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "- 0 []" in failed.stdout
