"""What every local service has: a pinned version, a state folder, ports, a command, a probe.

Each server (``_cassandra``, ``_kafka``) subclasses :class:`Service` and fills in its config,
JVM options and readiness probe; ``concursus_lab.services`` drives them all the same way.
"""

from __future__ import annotations

import abc
import socket
import xml.etree.ElementTree as ET
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from string import Template
from typing import ClassVar

from concursus_lab.services import _maven, _process, _settings

RESOURCES = Path(__file__).resolve().parent
_POM_NS = {"m": "http://maven.apache.org/POM/4.0.0"}


class ProbeFailed(Exception):
    """The port is open but the server did not answer its protocol (yet)."""


def http_ready(host: str, port: int, path: str, timeout: float) -> None:
    """``GET path`` over a plain socket (no client library needed before the server is up):
    returns on a 200 status line, else raises :class:`ProbeFailed` with the status."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode()
        )
        answer = b""
        while b"\r\n" not in answer:
            chunk = sock.recv(256)
            if not chunk:
                break
            answer += chunk
    status = answer.split(b"\r\n", 1)[0].decode(errors="replace")
    if " 200" not in status:
        raise ProbeFailed(status or "no answer")


def recv_exact(sock: socket.socket, size: int) -> bytes:
    """Read exactly ``size`` bytes from ``sock``."""
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ProbeFailed("the server closed the connection")
        chunks += chunk
    return bytes(chunks)


def render(resource: str, target: Path, **values: object) -> None:
    """Write the package file ``resource`` to ``target``, filling ``$name`` placeholders."""
    text = Template((RESOURCES / resource).read_text(encoding="utf-8"))
    target.write_text(text.substitute({k: str(v) for k, v in values.items()}), encoding="utf-8")


class Service(abc.ABC):
    """One server that runs as a detached JVM with its files under one state folder."""

    name: ClassVar[str]
    pom_resource: ClassVar[str]
    main_class: ClassVar[str]
    port_env: ClassVar[str]
    """The environment variable that overrides :attr:`port`."""
    program: ClassVar[str] = "java"
    """The executable that runs the server; :attr:`marker` is its first argument."""

    def __init__(self, *, full_jit: bool = False) -> None:
        self.host = _settings.HOST
        self.state = _settings.state_dir(self.name)
        self.full_jit = full_jit

    def jit_options(self) -> list[str]:
        """C1 only (the default: half the CPU to start, and faster for the short workloads of
        tests on two cores: docs/services.md), or nothing: the JVM's full JIT, C1 then C2, as
        the servers run elsewhere (``full_jit``: for long workloads such as benchmarks)."""
        return [] if self.full_jit else ["-XX:TieredStopAtLevel=1"]

    # --- identity -------------------------------------------------------------------------
    @cached_property
    def version(self) -> str:
        """The server version pinned in the pom (its ``service.version`` property)."""
        root = ET.parse(self.pom).getroot()
        found = root.find("m:properties/m:service.version", _POM_NS)
        if found is None or not (found.text or "").strip():
            raise RuntimeError(f"{self.pom} has no <service.version> property")
        return found.text.strip()

    @property
    def pom(self) -> Path:
        return RESOURCES / self.pom_resource

    @property
    @abc.abstractmethod
    def port(self) -> int:
        """The client port (CQL for Cassandra, the PLAINTEXT listener for Kafka)."""

    @property
    @abc.abstractmethod
    def other_ports(self) -> dict[str, tuple[int, str]]:
        """Other ports the server binds: label -> (port, environment variable)."""

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    # --- files ----------------------------------------------------------------------------
    @property
    def log(self) -> Path:
        return self.state / f"{self.name}.log"

    @property
    def pid_file(self) -> Path:
        return self.state / f"{self.name}.pid"

    @property
    def data(self) -> Path:
        """Everything the server writes; :func:`concursus_lab.services.wipe` deletes it."""
        return self.state / "data"

    @property
    def marker(self) -> str:
        return _process.marker(self.name, self.state)

    def owned_pid(self) -> int | None:
        """The pid of this service's server when the pid file names one alive and ours."""
        pid = _process.read_pid(self.pid_file)
        if pid is not None and self.owns(pid):
            return pid
        return None

    def owns(self, pid: int) -> bool:
        """Whether ``pid`` is this service's server: :attr:`program` with :attr:`marker`."""
        return _process.is_ours(pid, self.marker, self.program)

    def environment(self) -> dict[str, str]:
        """Variables the server's process gets besides this process's environment."""
        return {}

    # --- what a server needs before it can start ------------------------------------------
    def resolve(self, say: Callable[[str], None] | None) -> None:
        """Fetch what the server runs on (a JVM server's jars, with Maven), before launching."""
        _maven.resolve(self.pom, self.state, say=say)

    def runtime(self, say: Callable[[str], None] | None) -> tuple[str, list[Path]]:
        """The executable and the classpath that :meth:`configure` and :meth:`command` get."""
        return _settings.java(), _maven.resolve(self.pom, self.state, say=say)

    # --- what each server fills in ----------------------------------------------------------
    @abc.abstractmethod
    def configure(self, classpath: list[Path], java: str) -> None:
        """Write the server's config files (and format storage the first time)."""

    @abc.abstractmethod
    def jvm_options(self, classpath: list[Path]) -> list[str]:
        """JVM options before ``-cp``."""

    def main_arguments(self) -> list[str]:
        """Arguments after the main class."""
        return []

    def launch_prefix(self) -> list[str]:
        """Programs that wrap ``java`` (they exec it, so the pid stays the JVM's)."""
        return []

    @abc.abstractmethod
    def probe(self, timeout: float) -> str:
        """Ask the server something over its own protocol; returns what it said.

        Raises
        ------
        OSError, ProbeFailed
            When it does not answer (yet).
        """

    def command(self, java: str, classpath: list[Path]) -> list[str]:
        """The full ``java`` command line that runs the server."""
        return [
            *self.launch_prefix(),
            java,
            self.marker,
            *self.jvm_options(classpath),
            "-cp",
            ":".join(str(jar) for jar in classpath),
            self.main_class,
            *self.main_arguments(),
        ]
