"""``concursus-lab check``: keep notebooks honest in CI, on any source.

Runs notebooks under nbval (strict output comparison by default) with concursus-lab's
sanitisers, and with ``$CONCURSUS_LAB_SOURCE`` set, so that ``cl.open()`` in the notebooks
opens the source chosen for the run: production by hand, a fixture in CI. Exit codes and
output are pytest's. Each cell may run ``--timeout`` seconds (600 by default); a kernel that
dies fails its cell at once and the cells after it are skipped. When a notebook fails, its
executed copy and an HTML diff against the stored one are written to ``check-artifacts/``
(``--artifacts DIR`` elsewhere), with the JUnit report, all from the run that was checked.
``--update`` runs the notebooks the same way and stores their outputs in place, and never
stores a notebook that raised.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from concursus_lab.common.optional import require
from concursus_lab.exceptions import SourceError
from concursus_lab.sources import SOURCE_VARIABLE

_NEEDED_BY = "Notebook checks (concursus-lab check)"
#: pytest's exit code when nothing was collected.
NO_TESTS = 5
#: Where a failed check leaves the executed notebooks and their diffs, unless told otherwise.
ARTIFACTS = "check-artifacts"
#: Seconds a cell may run, unless told otherwise (nbval's own default is 2000).
TIMEOUT = 600.0


def notebooks(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """The ``.ipynb`` files named, or found under the folders named (checkpoints skipped)."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(
                p for p in sorted(path.rglob("*.ipynb")) if ".ipynb_checkpoints" not in p.parts
            )
        elif not path.exists():
            raise SourceError(f"{str(path)!r} does not exist; name a notebook or a folder.")
        elif path.suffix == ".ipynb":
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


def _pytest(
    found: Sequence[Path], record: Path, *, strict: bool, timeout: float, extra: Sequence[str]
) -> list[str]:
    """The pytest command that runs ``found`` under nbval once, recording each run."""
    require("pytest", "nbval", "nbformat", needed_by=_NEEDED_BY)  # said here, not by pytest
    return [
        sys.executable,
        "-m",
        "pytest",
        "--nbval" if strict else "--nbval-lax",
        "--nbval-concursus-lab",
        f"--nbval-concursus-lab-record={record}",
        f"--nbval-cell-timeout={timeout:g}",
        "-p",
        "no:cacheprovider",
        "-o",
        "addopts=",
        "-o",
        "testpaths=",
        "-rfEs",  # the summary names failures and what did not run, with why
        *extra,
        *map(str, found),
    ]


def check(
    paths: Sequence[str | os.PathLike],
    *,
    source: str | None = None,
    strict: bool = True,
    pytest_args: Sequence[str] = (),
    artifacts: str | os.PathLike | None = ARTIFACTS,
    timeout: float = TIMEOUT,
) -> int:
    """Run the notebooks under nbval; returns pytest's exit code (0 when all outputs match).

    When some fail and ``artifacts`` names a folder, each failing notebook's executed copy and
    an HTML diff go there (:mod:`concursus_lab.cli.artifacts`), with the JUnit report. The
    folder is made before anything runs, so that one that cannot be is said at once.
    """
    from concursus_lab.cli import artifacts as kept
    from concursus_lab.testing import _notebook_record as record

    found = notebooks(paths)
    if not found:
        print(f"concursus-lab check: no notebooks under {', '.join(map(str, paths))}")
        return NO_TESTS
    env = _source_env(source)
    folder, made = _artifacts_folder(artifacts)
    own_junit = _junit_path(pytest_args)
    junit = own_junit or (folder / "junit.xml" if folder is not None else None)
    extra = [*([f"--junitxml={junit}"] if junit and not own_junit else []), *pytest_args]
    with tempfile.TemporaryDirectory(prefix="concursus-lab-check-") as scratch:
        runs = Path(scratch) / "runs"
        code = subprocess.call(
            _pytest(found, runs, strict=strict, timeout=timeout, extra=extra), env=env
        )
        failed = [run for run in record.read(runs).values() if run.failed]
        if folder is None:
            return code
        if code in (0, NO_TESTS) or not failed:
            _tidy(folder, made, None if own_junit else junit)
            return code
        written = kept.write(folder, failed, junit)
    print(
        f"concursus-lab check: artifacts of {len(failed)} failing notebook(s) in {folder}/ "
        f"({', '.join(p.name for p in written)})"
    )
    return code


def _artifacts_folder(artifacts: str | os.PathLike | None) -> tuple[Path | None, bool]:
    """The artifacts folder, made now (and whether this made it), or an error that says
    why it cannot be, before any notebook runs."""
    if artifacts is None:
        return None, False
    folder = Path(artifacts).absolute()
    made = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if not os.access(folder, os.W_OK | os.X_OK):
            raise PermissionError(13, "Permission denied")
    except OSError as exc:
        raise SourceError(
            f"cannot create the artifacts folder {str(artifacts)!r} "
            f"({exc.strerror or exc}); choose another with --artifacts DIR, or write none "
            "with --no-artifacts."
        ) from None
    return folder, made


def _tidy(folder: Path, made: bool, junit: Path | None) -> None:
    """After a run with nothing to keep: remove the report written there, and the folder
    when this run made it and it is empty."""
    if junit is not None:
        junit.unlink(missing_ok=True)
    if made and not any(folder.iterdir()):
        folder.rmdir()


def _junit_path(pytest_args: Sequence[str]) -> Path | None:
    for i, arg in enumerate(pytest_args):
        if arg.startswith(("--junitxml=", "--junit-xml=")):
            return Path(arg.split("=", 1)[1])
        if arg in ("--junitxml", "--junit-xml") and i + 1 < len(pytest_args):
            return Path(pytest_args[i + 1])
    return None


def update(
    paths: Sequence[str | os.PathLike], *, source: str | None = None, timeout: float = TIMEOUT
) -> int:
    """Run the notebooks as ``check`` does, and store their outputs in place (no widget
    state), so that what is stored is what ``check`` will see.

    A notebook that raises (or times out, or loses its kernel) is not stored, since its
    expected outputs would hold a traceback: it is named, with its error, and the exit code
    is 1.
    """
    nbformat = require("nbformat", needed_by=_NEEDED_BY)

    from concursus_lab.testing import _notebook_record as record

    found = notebooks(paths)
    env = _source_env(source)
    with tempfile.TemporaryDirectory(prefix="concursus-lab-update-") as scratch:
        runs_dir = Path(scratch) / "runs"
        command = _pytest(found, runs_dir, strict=False, timeout=timeout, extra=["-q"])
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        runs = record.read(runs_dir)
        skipped = []
        for path in found:
            run = runs.get(path.resolve())
            if run is None or run.raised:
                skipped.append(path)
                why = _why(run) if run is not None else done.stdout + done.stderr
                print(f"concursus-lab check --update: {path} raised; not saved.\n{why}")
                continue
            nbformat.write(nbformat.read(run.executed, as_version=4), path)
            print(f"updated {path}")
    if skipped:
        names = ", ".join(str(p) for p in skipped)
        print(f"concursus-lab check --update: skipped {len(skipped)} that raised: {names}")
    return 1 if skipped else 0


def _why(run: object) -> str:
    error = getattr(run, "error", None)
    if error:
        return error
    cells = [c for c in getattr(run, "cells", ()) if c.outcome == "raised"]
    return "\n".join(f"Cell {c.cell}: {c.message}" for c in cells)


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
        "--timeout",
        type=float,
        default=TIMEOUT,
        metavar="SECONDS",
        help=f"how long one cell may run before it fails (default {TIMEOUT:g})",
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
        return update(args.paths, source=args.source, timeout=args.timeout)
    return check(
        args.paths,
        source=args.source,
        strict=args.strict,
        pytest_args=args.pytest_args,
        artifacts=args.artifacts,
        timeout=args.timeout,
    )
