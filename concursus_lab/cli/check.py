"""``concursus-lab check``: keep notebooks honest in CI, on any source.

Runs notebooks under nbval (strict output comparison by default) with concursus-lab's
sanitisers, and with ``$CONCURSUS_LAB_SOURCE`` set, so that ``cl.open()`` in the notebooks
opens the source chosen for the run: production by hand, a fixture in CI. Exit codes and
output are pytest's. When a notebook fails, its executed copy and an HTML diff against the
stored one are written to ``check-artifacts/`` (``--artifacts DIR`` elsewhere), with the JUnit
report. ``--update`` re-runs the notebooks in place to refresh the outputs they are compared
with, and never stores a notebook that raised.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from concursus_lab.exceptions import SourceError
from concursus_lab.sources import SOURCE_VARIABLE

#: pytest's exit code when nothing was collected.
NO_TESTS = 5
#: Where a failed check leaves the executed notebooks and their diffs, unless told otherwise.
ARTIFACTS = "check-artifacts"


def notebooks(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """The ``.ipynb`` files named, or found under the folders named (checkpoints skipped)."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(
                p for p in sorted(path.rglob("*.ipynb")) if ".ipynb_checkpoints" not in p.parts
            )
        elif path.suffix == ".ipynb" and path.exists():
            found.append(path)
        else:
            raise SourceError(f"{str(path)!r} is neither a notebook (.ipynb) nor a folder.")
    return found


def _source_env(source: str | None) -> dict[str, str]:
    env = dict(os.environ)
    if source is None:
        return env
    # notebooks run in their own folder: make a relative store path absolute
    if "://" not in source and not source.startswith("fixture:") and Path(source).exists():
        source = str(Path(source).resolve())
    from concursus_lab.sources import open_history as open_source

    with open_source(source):  # fail here, clearly, rather than in every notebook
        pass
    env[SOURCE_VARIABLE] = source
    return env


def check(
    paths: Sequence[str | os.PathLike],
    *,
    source: str | None = None,
    strict: bool = True,
    pytest_args: Sequence[str] = (),
    artifacts: str | os.PathLike | None = ARTIFACTS,
) -> int:
    """Run the notebooks under nbval; returns pytest's exit code (0 when all outputs match).

    When some fail and ``artifacts`` names a folder, each failing notebook's executed copy and
    an HTML diff go there (:mod:`concursus_lab.cli.artifacts`), with the JUnit report.
    """
    found = notebooks(paths)
    if not found:
        print(f"concursus-lab check: no notebooks under {', '.join(map(str, paths))}")
        return NO_TESTS
    env = _source_env(source)
    with tempfile.TemporaryDirectory(prefix="concursus-lab-check-") as scratch:
        junit = _junit_path(pytest_args) or Path(scratch) / "junit.xml"
        extra = [] if _junit_path(pytest_args) else [f"--junitxml={junit}"]
        command = [
            sys.executable,
            "-m",
            "pytest",
            "--nbval" if strict else "--nbval-lax",
            "--nbval-concursus-lab",
            "-p",
            "no:cacheprovider",
            "-o",
            "addopts=",
            "-o",
            "testpaths=",
            *extra,
            *pytest_args,
            *map(str, found),
        ]
        code = subprocess.call(command, env=env)
        if code not in (0, NO_TESTS) and artifacts is not None:
            _keep_artifacts(Path(artifacts), junit, found, env)
    return code


def _junit_path(pytest_args: Sequence[str]) -> Path | None:
    for i, arg in enumerate(pytest_args):
        if arg.startswith("--junitxml="):
            return Path(arg.split("=", 1)[1])
        if arg in ("--junitxml", "--junit-xml") and i + 1 < len(pytest_args):
            return Path(pytest_args[i + 1])
    return None


def _keep_artifacts(folder: Path, junit: Path, found: list[Path], env: dict[str, str]) -> None:
    from concursus_lab.cli import artifacts

    failed = artifacts.failing(junit, found)
    if not failed:
        return
    with _environment(env):
        written = artifacts.write(folder, failed, junit, execute)
    print(
        f"concursus-lab check: artifacts of {len(failed)} failing notebook(s) in {folder}/ "
        f"({', '.join(p.name for p in written)})"
    )


@contextlib.contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def execute(path: Path) -> tuple[Any, BaseException | None]:
    """Run one notebook in a fresh kernel; returns it with its outputs, and the error of the
    cell that raised (None when every cell ran). Widget state and timings are left out."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=900,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        store_widget_state=False,
    )
    error: BaseException | None = None
    try:
        client.execute()
    except CellExecutionError as exc:
        error = exc
    notebook.metadata.pop("widgets", None)
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)
    return notebook, error


def update(paths: Sequence[str | os.PathLike], *, source: str | None = None) -> int:
    """Re-run the notebooks in place, storing fresh outputs (no widget state).

    A notebook that raises is not stored (its expected outputs would hold a traceback): it
    is named, with its error, and the exit code is 1.
    """
    import nbformat

    skipped = []
    with _environment(_source_env(source)):
        for path in notebooks(paths):
            notebook, error = execute(path)
            if error is not None:
                skipped.append(path)
                print(f"concursus-lab check --update: {path} raised; not saved.\n{error}")
                continue
            nbformat.write(notebook, path)
            print(f"updated {path}")
    if skipped:
        names = ", ".join(str(p) for p in skipped)
        print(f"concursus-lab check --update: skipped {len(skipped)} that raised: {names}")
    return 1 if skipped else 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``check`` to the ``concursus-lab`` command line."""
    parser = subparsers.add_parser(
        "check",
        help="run notebooks under nbval (strict) on a chosen source",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="+", help="notebooks, or folders of notebooks")
    parser.add_argument(
        "--source",
        help=f"the source cl.open() opens in the notebooks (sets ${SOURCE_VARIABLE}), "
        "e.g. data/sample, fixture:messy, cassandra://host/keyspace",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--strict",
        dest="strict",
        action="store_true",
        default=True,
        help="compare every output (default)",
    )
    mode.add_argument(
        "--lax",
        dest="strict",
        action="store_false",
        help="only check that cells run (and outputs of cells marked nbval-check-output)",
    )
    parser.add_argument(
        "--update",
        action="store_true",
        help="re-run the notebooks in place to refresh their stored outputs (a notebook that "
        "raises is skipped, never stored)",
    )
    parser.add_argument(
        "--artifacts",
        default=ARTIFACTS,
        metavar="DIR",
        help=f"on failure, write each failing notebook as executed and an HTML diff here "
        f"(default {ARTIFACTS}/)",
    )
    parser.add_argument(
        "--no-artifacts",
        dest="artifacts",
        action="store_const",
        const=None,
        help="write no artifacts",
    )
    parser.set_defaults(func=_run, pass_through=True)
    parser.epilog = "Arguments after -- go to pytest, e.g. `concursus-lab check nb/ -- -x -q`."


def _run(args: argparse.Namespace) -> int:
    if args.update:
        return update(args.paths, source=args.source)
    return check(
        args.paths,
        source=args.source,
        strict=args.strict,
        pytest_args=args.pytest_args,
        artifacts=args.artifacts,
    )
