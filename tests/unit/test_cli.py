"""The command line, run as a user runs it."""

from __future__ import annotations

import subprocess
import sys

import concursus_lab as cl


def run(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "concursus_lab", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def test_sample_then_info(tmp_path):
    out = run("sample", str(tmp_path / "s"), "--parcels", "300", "--seed", "2")
    assert out.returncode == 0, out.stderr
    assert "parcels to" in out.stdout
    store = cl.open(tmp_path / "s")
    assert store.events().select("aggregate_id").n_unique() == 300
    info = run("info", str(tmp_path / "s"))
    assert info.returncode == 0, info.stderr
    text = info.stdout
    assert "aggregates" in text and "receivedAtDepot" in text
    messiness = next(line for line in text.splitlines() if line.startswith("messiness"))
    numbers = [int(w.replace(",", "")) for w in messiness.split() if w.replace(",", "").isdigit()]
    assert len(numbers) == 3 and all(n > 0 for n in numbers)  # disorder, repeats, skew


def test_errors_are_one_line_with_exit_code_2(tmp_path):
    out = run("info", str(tmp_path / "missing"))
    assert out.returncode == 2
    assert "create=True" in out.stderr
    assert "Traceback" not in out.stderr


def test_the_committed_sample_is_what_the_generator_makes():
    store = cl.open()
    deliveries = store.events(duplicates="keep")
    regenerated = cl.sample.parcels(2_000, seed=7)
    key = [*cl.IDENTITY, "processing_timestamp"]
    assert deliveries.sort(key).equals(regenerated.sort(key))
