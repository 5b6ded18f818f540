"""Processes: start a detached JVM, find it again by its pid file, stop only that one.

A JVM started here carries a marker argument (``-Dconcursus_lab.service=NAME:STATE_DIR``).
A pid is "ours" only while it is alive, runs ``java`` and carries that marker, so a stale pid
file whose number was reused by another program never leads to killing that program.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from concursus_lab.exceptions import ServiceError

_children: dict[int, subprocess.Popen[bytes]] = {}
"""JVMs started by this Python process, kept so that they can be reaped after they exit."""


def marker(name: str, state: Path) -> str:
    """The JVM argument that identifies the service ``name`` run from ``state``."""
    return f"-Dconcursus_lab.service={name}:{state}"


@contextlib.contextmanager
def locked(state: Path) -> Iterator[None]:
    """Hold an exclusive lock on one service's state folder (waits for other processes)."""
    state.mkdir(parents=True, exist_ok=True)
    with open(state / ".lock", "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def read_pid(pid_file: Path) -> int | None:
    """The pid written in ``pid_file``, or None when there is none or it is not a number."""
    try:
        text = pid_file.read_text(encoding="ascii").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def write_pid(pid_file: Path, pid: int) -> None:
    """Write ``pid`` to ``pid_file`` atomically."""
    partial = pid_file.with_suffix(".tmp")
    partial.write_text(f"{pid}\n", encoding="ascii")
    partial.replace(pid_file)


def _reap(pid: int) -> None:
    child = _children.get(pid)
    if child is not None and child.poll() is not None:
        del _children[pid]


def is_alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie counts as dead)."""
    _reap(pid)
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    # The state letter follows the command name, which is in parentheses.
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def command_line(pid: int) -> list[str]:
    """The arguments of ``pid`` (empty when it is gone or unreadable)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        try:
            out = subprocess.run(
                ["ps", "-o", "command=", "-p", str(pid)],
                capture_output=True,
                text=True,
                check=False,
            ).stdout
        except OSError:
            return []
        return out.split()
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def is_ours(pid: int, tag: str, program: str = "java") -> bool:
    """Whether ``pid`` is alive and runs ``program`` with the marker ``tag`` as first argument.

    The ``program`` need not be ``argv[0]``: for a few milliseconds after the launch the pid
    may still be a wrapper (``prlimit``, ``setpriv``) about to exec it.
    """
    if not is_alive(pid):
        return False
    args = command_line(pid)
    return any(
        arg == tag and os.path.basename(args[i - 1]) == program
        for i, arg in enumerate(args)
        if i > 0
    )


def describe(pid: int) -> str:
    """A short description of ``pid`` for messages."""
    args = command_line(pid)
    if not args:
        return "an unknown process"
    text = " ".join(args)
    return f"`{text[:120]}{'...' if len(text) > 120 else ''}`"


def rotate(log: Path) -> None:
    """Keep the previous run's log as ``<log>.1`` and start an empty one."""
    if log.exists():
        log.replace(log.with_name(log.name + ".1"))


def launch(
    command: Sequence[str],
    *,
    cwd: Path,
    log: Path,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``command`` detached: own session, no stdin, stdout and stderr appended to ``log``.

    ``env``: variables added to this process's environment for the server."""
    with open(log, "ab") as out:
        out.write(f"$ {' '.join(command)}\n".encode())
        out.flush()
        try:
            process = subprocess.Popen(
                list(command),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
                env={**os.environ, **env} if env else None,
            )
        except OSError as exc:  # a program that is there but cannot run
            raise ServiceError(
                f"{command[0]} could not be run ({exc.strerror or exc}); reinstall it, or "
                f"put a working one first on PATH."
            ) from exc
    _children[process.pid] = process
    return process


def terminate(pid: int, *, timeout: float) -> None:
    """SIGTERM ``pid``, wait up to ``timeout`` seconds, then SIGKILL it."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not is_alive(pid):
                return
            time.sleep(0.1)
    if is_alive(pid):
        raise ServiceError(f"pid {pid} survived SIGKILL; check it with `ps -p {pid}`.")


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def tail(log: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of ``log`` (empty when it does not exist)."""
    try:
        with open(log, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 256 * 1024))
            data = handle.read()
    except OSError:
        return ""
    return "\n".join(data.decode(errors="replace").splitlines()[-lines:])
