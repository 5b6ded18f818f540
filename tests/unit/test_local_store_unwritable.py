"""A local store that cannot be written: a full disk, a read-only folder (issue 29).

Both are done for real, in a child process with a mount namespace of its own (``unshare``):
a small tmpfs filled to the last page stands for a full disk, and a read-only bind mount of a
store for a read-only one. The mounts vanish with the child, so nothing outside it sees them.

Where namespaces cannot be made, the full disk is stood in for by ``RLIMIT_FSIZE`` (the
kernel then refuses, with ``EFBIG``, any write that would grow a file past the limit): the
append meets the same thing a full disk does, a write refused part-way through a file, at
whatever point the limit falls. Both ways are run wherever they can be.

What must hold after every refused append: a concursus-lab error that names the store, what
failed and what to do; ``store.json`` byte for byte as before, naming only whole files (each
read back through its SHA-256); not one file of the failed append left behind; and once there
is room, the same append works.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import concursus_lab as cl

FILL = textwrap.dedent(
    """
    import errno, json, os, resource, signal, sys
    from pathlib import Path
    import concursus_lab as cl
    from tests.contract import canonical_sort

    mode, folder = sys.argv[1], Path(sys.argv[2])
    root = folder / "store"
    store = cl.open(root, create=True)
    store.append(cl.sample.parcels(1_000, seed=71))
    manifest = (root / "store.json").read_bytes()
    before = canonical_sort(store.events(duplicates="keep"))
    batch = cl.sample.parcels(400, seed=72)
    filler = folder / "filler"
    if mode == "tmpfs":  # fill the disk to its last page
        with open(filler, "wb", buffering=0) as out:
            try:
                while True:
                    out.write(bytes(4096))
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
        full = filler.stat().st_size
    else:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # refused writes fail with EFBIG
        hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]

    def room(n):
        if mode == "tmpfs":
            os.truncate(filler, max(0, full - n))
        else:
            resource.setrlimit(resource.RLIMIT_FSIZE, (n, hard))

    refused = []
    for n in range(0, 8_000_000, 4096 if mode == "tmpfs" else 1024):
        room(n)
        try:
            added = store.append(batch)
            break
        except Exception as exc:
            error = {"type": type(exc).__name__, "message": str(exc), "room": n,
                     "ours": isinstance(exc, cl.ConcursusLabError)}
        if mode != "tmpfs":
            resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
        listed = {f["path"] for f in json.loads((root / "store.json").read_text())["files"]}
        on_disk = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
        error["stray"] = sorted(on_disk - listed - {"store.json", ".lock"})
        error["manifest_kept"] = (root / "store.json").read_bytes() == manifest
        error["reads_kept"] = canonical_sort(cl.open(root).events(duplicates="keep")).equals(before)
        refused.append(error)
    after = cl.open(root).events(duplicates="keep")
    print(json.dumps({"refused": refused, "added": added, "after": after.height,
                      "expected": before.height + batch.height}))
    """
)


@functools.cache
def _namespaces() -> bool:
    """Whether this machine lets a process make its own user and mount namespaces."""
    if shutil.which("unshare") is None:
        return False
    run = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "true"])
    return run.returncode == 0


def _in_namespace(shell: str, *args: str) -> subprocess.CompletedProcess:
    """``sh -c shell`` with ``args`` as $1..., in a user and mount namespace of its own."""
    command = ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", shell, "sh", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, env=_env())


def _env() -> dict[str, str]:
    here = str(Path(__file__).resolve().parents[2])
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": here if not path else f"{here}{os.pathsep}{path}"}


def _fill(mode: str, folder: Path) -> dict:
    if mode == "tmpfs":
        if not _namespaces():
            pytest.skip("no mount namespaces here; the RLIMIT_FSIZE case stands in for it")
        shell = 'mount -t tmpfs -o size=3m tmpfs "$1" && exec "$2" -c "$3" tmpfs "$1"'
        run = _in_namespace(shell, str(folder), sys.executable, FILL)
    else:
        command = [sys.executable, "-c", FILL, "fsize", str(folder)]
        run = subprocess.run(command, capture_output=True, text=True, timeout=600, env=_env())
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.splitlines()[-1])


@pytest.mark.parametrize("mode", ["tmpfs", "fsize"])
def test_a_full_disk_leaves_the_store_intact_and_says_so(tmp_path, mode):
    outcome = _fill(mode, tmp_path)
    refused = outcome["refused"]
    assert len(refused) >= 3, refused  # refused at several points before it fitted
    for error in refused:
        assert error["ours"] and error["type"] == "StoreUnwritable", error
        assert error["manifest_kept"] and error["reads_kept"], error
        assert error["stray"] == [], error
        message = error["message"]
        assert str(tmp_path / "store") in message, message
        assert "store is unchanged" in message and "append again" in message, message
        if mode == "tmpfs":
            assert "disk holding it is full" in message and "free" in message, message
        else:
            assert "size limit" in message, message
    assert outcome["added"] > 0 and outcome["after"] == outcome["expected"]


READ_ONLY_APPEND = textwrap.dedent(
    """
    import json, sys
    import concursus_lab as cl
    store = cl.open(sys.argv[1])
    before = store.events(duplicates="keep")
    try:
        store.append(cl.sample.parcels(10, seed=3))
        out = {"type": None}
    except Exception as exc:
        out = {"type": type(exc).__name__, "message": str(exc),
               "ours": isinstance(exc, cl.ConcursusLabError)}
    out["reads_kept"] = store.events(duplicates="keep").equals(before)
    print(json.dumps(out))
    """
)


def _read_only(root: Path, *command: str) -> subprocess.CompletedProcess:
    """``command`` run where ``root`` is read-only: a read-only bind mount of it in a mount
    namespace, or (without namespaces, as a user other than root) its permissions taken away."""
    if _namespaces():
        shell = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@"'
        return _in_namespace(shell, str(root), *command)
    if os.geteuid() == 0:
        pytest.skip("no mount namespaces here, and root may write into any folder")
    folders = [root, *(p for p in root.rglob("*") if p.is_dir())]
    for folder in folders:
        folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=600, env=_env())
    finally:
        for folder in folders:
            folder.chmod(stat.S_IRWXU)


@pytest.fixture
def stores(tmp_path) -> tuple[Path, Path]:
    src, dst = tmp_path / "src", tmp_path / "dst"
    cl.open(src, create=True).append(cl.sample.parcels(50, seed=1))
    cl.open(dst, create=True).append(cl.sample.parcels(50, seed=2))
    return src, dst


def test_appending_to_a_read_only_store_says_so(stores):
    _, dst = stores
    manifest = (dst / "store.json").read_bytes()
    run = _read_only(dst, sys.executable, "-c", READ_ONLY_APPEND, str(dst))
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.splitlines()[-1])
    assert out["ours"] and out["type"] == "StoreUnwritable", out
    assert "read-only" in out["message"] and str(dst) in out["message"], out
    assert "store is unchanged" in out["message"] and "copy" in out["message"], out
    assert out["reads_kept"] and (dst / "store.json").read_bytes() == manifest


def test_copy_into_a_read_only_store_fails_with_a_message_not_a_traceback(stores):
    src, dst = stores
    manifest = (dst / "store.json").read_bytes()
    copy = [sys.executable, "-m", "concursus_lab", "copy", str(src), str(dst), "--no-progress"]
    run = _read_only(dst, *copy)
    assert run.returncode == 2, (run.stdout, run.stderr)
    assert "Traceback" not in run.stderr, run.stderr
    assert run.stderr.startswith("concursus-lab copy: "), run.stderr
    assert "read-only" in run.stderr and str(dst) in run.stderr, run.stderr
    assert (dst / "store.json").read_bytes() == manifest


COUNT = "import sys, concursus_lab as cl; print(cl.open(sys.argv[1]).summary()['deliveries'])"


def test_copy_that_fills_the_disk_part_way_says_how_much_was_copied(tmp_path):
    if not _namespaces():
        pytest.skip("no mount namespaces here to make a small disk in")
    src = tmp_path / "src"
    events = cl.sample.parcels(20_000, seed=5)
    cl.open(src, create=True).append(events)
    disk = tmp_path / "disk"
    disk.mkdir()
    shell = (
        'mount -t tmpfs -o size=1m tmpfs "$1" && "$2" -m concursus_lab copy "$4" "$1/dst" '
        '--create --chunk-events 4000 --no-progress; '
        'echo "exit $?"; exec "$2" -c "$3" "$1/dst"'
    )
    run = _in_namespace(shell, str(disk), sys.executable, COUNT, str(src))
    exit_line, stored = run.stdout.splitlines()[-2:]
    assert exit_line == "exit 2", (run.stdout, run.stderr)
    assert "Traceback" not in run.stderr, run.stderr
    assert run.stderr.startswith("concursus-lab copy: "), run.stderr
    assert 0 < int(stored) < events.height, run.stdout
    assert f"copied {int(stored):,} of {events.height:,} events" in run.stderr, run.stderr
    assert "disk holding it is full" in run.stderr, run.stderr
