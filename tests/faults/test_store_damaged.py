"""Damaged store files, read by a new process as a user would (``concursus-lab info``).

Each kind of damage is done to its own copy of a real store. What must hold: the command
fails with a concursus-lab error that names the damaged file, no Python traceback, and no
wrong value is printed; and the ids whose files are intact still read exactly.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import concursus_lab as cl
from concursus_lab.exceptions import StoreDamaged
from concursus_lab.frame.jhash import bucket as hash_bucket


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-200])


def _delete(path: Path) -> None:
    path.unlink()


DAMAGE = {"a flipped bit": _flip, "a truncated file": _truncate, "a deleted file": _delete}


@pytest.fixture(scope="module")
def original(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("damage") / "store"
    cl.open(root, create=True).append(cl.sample.parcels(3_000, seed=61))
    return root


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_files_are_named_and_the_rest_still_reads(original, tmp_path, damage, held):
    root = tmp_path / "store"
    shutil.copytree(original, root)
    everything = cl.open(root).events()
    entry = json.loads((root / "store.json").read_text())["files"][2]
    DAMAGE[damage](root / entry["path"])
    run = subprocess.run(
        [sys.executable, "-m", "concursus_lab", "info", str(root)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode != 0
    assert entry["path"] in run.stderr and "Traceback" not in run.stderr, run.stderr
    with pytest.raises(StoreDamaged, match=Path(entry["path"]).name):
        cl.open(root).events()
    ids = everything["aggregate_id"].unique()
    intact = ids.filter(hash_bucket(ids, 8) != entry["bucket"]).to_list()
    read = cl.open(root).events(aggregate_ids=intact)
    assert read.sort(cl.IDENTITY).equals(
        everything.filter(everything["aggregate_id"].is_in(intact)).sort(cl.IDENTITY)
    )
    held(f"{damage}: refused naming {Path(entry['path']).name}; {read.height:,} intact events read")


def test_a_manifest_pointing_outside_the_store_is_refused(original, tmp_path, held):
    root = tmp_path / "store"
    shutil.copytree(original, root)
    outside = tmp_path / "elsewhere.parquet"
    shutil.copy(root / json.loads((root / "store.json").read_text())["files"][0]["path"], outside)
    body = json.loads((root / "store.json").read_text())
    body["files"][0]["path"] = "../elsewhere.parquet"
    (root / "store.json").write_text(json.dumps(body))
    run = subprocess.run(
        [sys.executable, "-m", "concursus_lab", "info", str(root)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode != 0 and "is not a data file inside the store" in run.stderr
    assert "Traceback" not in run.stderr and outside.exists()
    held("a manifest path outside the store: refused before any read, the outside file kept")
