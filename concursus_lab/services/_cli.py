"""``concursus-lab services``: start, stop, inspect and wipe the local servers."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from concursus_lab.exceptions import ServiceError
from concursus_lab.services import NAMES

_NAMES_HELP = f"{', '.join(NAMES)} or all (default all)"


def _names(chosen: list[str]) -> list[str]:
    choices = [*NAMES, "all"]
    unknown = [name for name in chosen if name not in choices]
    if unknown:
        raise ServiceError(f"unknown service {unknown[0]!r}; choose from {', '.join(choices)}.")
    if not chosen or "all" in chosen:
        return list(NAMES)
    return list(dict.fromkeys(chosen))


def _start(args: argparse.Namespace) -> int:
    from concursus_lab import services

    names = _names(args.names)
    if args.fresh:
        for name in names:
            services.wipe(name)
    started = services.ensure(*names, timeout=args.timeout, full_jit=args.full_jit)
    for status in services.status(*names):
        if status.name in started:
            continue
        if status.state == "running":
            kept = " with the options it was started with" if args.full_jit else ""
            print(
                f"{status.name} {status.version} already running on {status.address} "
                f"(pid {status.pid}){kept}"
            )
        elif status.state == "external":
            print(f"{status.name}: a server not started here answers on {status.address}")
    return 0


def _stop(args: argparse.Namespace) -> int:
    from concursus_lab import services

    refused = 0
    for name in _names(args.names):
        try:
            if not services.stop(name, timeout=args.timeout):
                print(f"{name} was not running")
        except ServiceError as exc:
            print(f"error: {exc}", file=sys.stderr)
            refused += 1
    return 1 if refused else 0


def _status(args: argparse.Namespace) -> int:
    from concursus_lab import services

    names = _names(args.names)
    shown = services.status(*names)
    if not args.quiet:
        for status in shown:
            print(status)
    return 0 if all(status.answering for status in shown) else 1


def _logs(args: argparse.Namespace) -> int:
    from concursus_lab import services
    from concursus_lab.services import _process

    (status,) = services.status(args.name)
    text = _process.tail(status.log, args.lines)
    if not text:
        print(f"no log yet at {status.log}", file=sys.stderr)
        return 1
    print(f"==> {status.log} <==")
    print(text)
    return 0


def _wipe(args: argparse.Namespace) -> int:
    from concursus_lab import services

    for name in _names(args.names):
        if not services.wipe(name):
            print(f"{name}: no data to delete")
    return 0


def _guarded(func: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            return int(func(args))
        except ServiceError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1

    return run


def register(subparsers: Any) -> None:
    """Add the ``services`` command to the ``concursus-lab`` parser's subcommands."""
    parser = subparsers.add_parser(
        "services",
        help="run a real local Cassandra 5.0, Kafka 4.x, Redis, RabbitMQ and Hazelcast for tests",
        description=(
            "Download (from Maven Central, once), start, stop and inspect a local Apache "
            "Cassandra 5.0 (127.0.0.1:9042) and Apache Kafka 4.x (127.0.0.1:9092), and run "
            "Debian's redis-server (127.0.0.1:6379) and rabbitmq-server (127.0.0.1:5672), and a "
            "Hazelcast 5 member (127.0.0.1:5701, from Maven Central). "
            "Files live in $CONCURSUS_LAB_SERVICES_DIR/<name>, else <checkout>/.services/<name>."
        ),
    )
    sub = parser.add_subparsers(dest="services_command", required=True, metavar="ACTION")

    start = sub.add_parser("start", help="start services (default: all) and wait until they answer")
    start.add_argument(
        "names", nargs="*", metavar="NAME", help=_NAMES_HELP
    )
    start.add_argument("--fresh", action="store_true", help="delete their data first")
    start.add_argument(
        "--full-jit",
        action="store_true",
        help="run the JVM servers with their full JIT (C1 then C2, as servers run elsewhere) "
        "instead of C1 only: slower to start, less CPU per request on long workloads "
        "(benchmarks); see docs/services.md",
    )
    start.add_argument(
        "--timeout",
        type=float,
        default=180.0,
        help="seconds to wait for each server to answer (default 180)",
    )
    start.set_defaults(func=_guarded(_start))

    stop = sub.add_parser("stop", help="stop services started here (default: all)")
    stop.add_argument(
        "names", nargs="*", metavar="NAME", help=_NAMES_HELP
    )
    stop.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        help="seconds to wait after SIGTERM before SIGKILL (default 60)",
    )
    stop.set_defaults(func=_guarded(_stop))

    status = sub.add_parser(
        "status",
        help="show what runs, its pid, address and state folder",
        description="One line per service. Exit code 0 when every named service answers on "
        "its port, 1 otherwise.",
    )
    status.add_argument(
        "names", nargs="*", metavar="NAME", help=_NAMES_HELP
    )
    status.add_argument(
        "-q", "--quiet", action="store_true", help="print nothing; only the exit code tells"
    )
    status.set_defaults(func=_guarded(_status))

    logs = sub.add_parser("logs", help="print the end of a service's log")
    logs.add_argument("name", choices=NAMES, metavar="NAME", help=", ".join(NAMES))
    logs.add_argument("-n", "--lines", type=int, default=40, help="how many lines (default 40)")
    logs.set_defaults(func=_guarded(_logs))

    wipe = sub.add_parser("wipe", help="stop services and delete their data (default: all)")
    wipe.add_argument(
        "names", nargs="*", metavar="NAME", help=_NAMES_HELP
    )
    wipe.set_defaults(func=_guarded(_wipe))
