"""The ``concursus-lab`` command line.

=================================  ===============================================
``concursus-lab sample PATH``      write a sample parcel store of a chosen size
``concursus-lab info [SOURCE]``    counts, time ranges and lateness of a source
``concursus-lab lab``              JupyterLab on notebooks/, on the sample store
``concursus-lab services ...``     start, stop and check local Cassandra and Kafka
=================================  ===============================================
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

#: Subcommands contributed by other modules: (module, function that adds them).
_EXTENSIONS: tuple[tuple[str, str], ...] = (
    ("concursus_lab.services._cli", "register"),
    ("concursus_lab.sources.copying", "register"),
    ("concursus_lab.cli.check", "register"),
)


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="concursus-lab",
        description="A workbench for Concursus-style event histories.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sample = sub.add_parser("sample", help="write a sample parcel store")
    sample.add_argument("path", help="folder for the new store (must not exist or be empty)")
    sample.add_argument(
        "--parcels", type=int, default=1_000, help="how many parcels (~3.3 events each)"
    )
    sample.add_argument("--seed", type=int, default=0, help="the same seed gives the same data")
    sample.add_argument("--start", default="2026-03-02", help="first day, UTC (default 2026-03-02)")
    sample.add_argument("--days", type=float, default=14, help="days of history (default 14)")
    sample.set_defaults(func=_sample)

    info = sub.add_parser("info", help="counts, time ranges and lateness of a source")
    info.add_argument("source", nargs="?", default=None, help="path or URL (default: the sample)")
    info.set_defaults(func=_info)

    lab = sub.add_parser("lab", help="start JupyterLab on notebooks/ with the sample store")
    lab.add_argument("--port", type=int, default=8888)
    lab.add_argument("--no-browser", action="store_true", help="do not open a browser")
    lab.add_argument("--ip", default="127.0.0.1")
    lab.set_defaults(func=_lab)

    import importlib

    for module_name, function in _EXTENSIONS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):  # not built yet
                continue
            raise
        register: Callable = getattr(module, function)
        register(sub)
    return parser


def _sample(args: argparse.Namespace) -> int:
    from concursus_lab.sample import parcels
    from concursus_lab.sources import open_history as open_source

    started = time.perf_counter()
    frame = parcels(args.parcels, seed=args.seed, start=args.start, days=args.days)
    generated = time.perf_counter() - started
    store = open_source(args.path, create=True)
    store.append(frame)
    total = time.perf_counter() - started
    print(
        f"wrote {frame.height:,} deliveries of {args.parcels:,} parcels to {args.path} "
        f"(generated in {generated:.1f} s, written in {total - generated:.1f} s)"
    )
    print(store)
    return 0


def _info(args: argparse.Namespace) -> int:
    from concursus_lab.delivery.describe import describe
    from concursus_lab.sources import open_history as open_source

    source = open_source(args.source)
    print(describe(source))
    return 0


def _lab(args: argparse.Namespace) -> int:
    import os
    import subprocess

    from concursus_lab.common.optional import require

    require("jupyterlab", needed_by="concursus-lab lab")
    root = _checkout_root()
    notebooks = root / "notebooks" if root else Path.cwd()
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--notebook-dir={notebooks}",
        f"--ServerApp.ip={args.ip}",
        f"--ServerApp.port={args.port}",
        "--ServerApp.port_retries=50",
    ]
    if args.no_browser:
        command.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # containers and CI run as root
        command.append("--allow-root")
    env = dict(os.environ)
    if root is not None and "CONCURSUS_LAB_SOURCE" not in env:
        env["CONCURSUS_LAB_SOURCE"] = str(root / "data" / "sample")
    print(f"JupyterLab on {notebooks} (source: {env.get('CONCURSUS_LAB_SOURCE', 'default')})")
    print("Its URL, with the login token, is printed below; Ctrl-C stops it.", flush=True)
    return subprocess.call(command, env=env)


def _checkout_root() -> Path | None:
    here = Path(__file__).resolve().parents[2]
    return here if (here / "pyproject.toml").exists() else None


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = _build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, extra = argv[:at], argv[at + 1 :]
    args = parser.parse_args(argv)
    if extra and not getattr(args, "pass_through", False):
        parser.error(f"`{args.command}` takes no arguments after --")
    args.pytest_args = extra
    from concursus_lab.exceptions import ConcursusLabError

    try:
        return int(args.func(args) or 0)
    except ConcursusLabError as exc:
        print(f"concursus-lab {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
