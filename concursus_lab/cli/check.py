"""``concursus-lab check``: keep notebooks honest in CI, on any source.

Runs notebooks under nbval (strict output comparison by default) with concursus-lab's
sanitisers, and with ``$CONCURSUS_LAB_SOURCE`` set, so that ``cl.open()`` in the notebooks
opens the source chosen for the run: production by hand, a fixture in CI. Exit codes and
output are pytest's. ``--update`` re-runs the notebooks in place to refresh the outputs they
are compared with.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from concursus_lab.exceptions import SourceError
from concursus_lab.sources import SOURCE_VARIABLE

#: pytest's exit code when nothing was collected.
NO_TESTS = 5


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
    from concursus_lab.sources import open as open_source

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
) -> int:
    """Run the notebooks under nbval; returns pytest's exit code (0 when all outputs match)."""
    found = notebooks(paths)
    if not found:
        print(f"concursus-lab check: no notebooks under {', '.join(map(str, paths))}")
        return NO_TESTS
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
        *pytest_args,
        *map(str, found),
    ]
    return subprocess.call(command, env=_source_env(source))


def update(paths: Sequence[str | os.PathLike], *, source: str | None = None) -> int:
    """Re-run the notebooks in place, storing fresh outputs (no widget state)."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    env = _source_env(source)
    saved = dict(os.environ)
    os.environ.update(env)
    failed = 0
    try:
        for path in notebooks(paths):
            notebook = nbformat.read(path, as_version=4)
            client = NotebookClient(
                notebook,
                timeout=900,
                kernel_name="python3",
                resources={"metadata": {"path": str(path.parent)}},
                store_widget_state=False,
            )
            try:
                client.execute()
            except CellExecutionError as exc:
                failed += 1
                print(f"concursus-lab check --update: {path} raised; not saved.\n{exc}")
                continue
            notebook.metadata.pop("widgets", None)
            for cell in notebook.cells:
                cell.metadata.pop("execution", None)
            nbformat.write(notebook, path)
            print(f"updated {path}")
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return 1 if failed else 0


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
        help="re-run the notebooks in place to refresh their stored outputs",
    )
    parser.set_defaults(func=_run, pass_through=True)
    parser.epilog = "Arguments after -- go to pytest, e.g. `concursus-lab check nb/ -- -x -q`."


def _run(args: argparse.Namespace) -> int:
    if args.update:
        return update(args.paths, source=args.source)
    return check(args.paths, source=args.source, strict=args.strict, pytest_args=args.pytest_args)
