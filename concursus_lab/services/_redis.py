"""Redis from Debian's ``redis-server`` package: config and probe.

Unlike Cassandra and Kafka, Redis is not a JVM from Maven Central: the set-up installs
Debian's package (``scripts/setup.sh --services``) and this module runs its ``redis-server``
with a config file in the state folder. Data is kept in an append-only file, written before
every reply, so a server killed and started again still has every acknowledged write. Memory
is capped (``maxmemory``) so the server stays small beside the others. The process title is
left alone (``set-proc-title no``) so the command line keeps the config path that marks the
process as ours.
"""

from __future__ import annotations

import functools
import shutil
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

from concursus_lab.exceptions import ServiceError
from concursus_lab.services import _settings
from concursus_lab.services._spec import ProbeFailed, Service

MAX_MEMORY = "256mb"
_INSTALL = (
    "Install Debian's redis-server (`apt-get install redis-server`; `scripts/setup.sh "
    "--services` does it), or run a Redis of your own on 127.0.0.1 and set "
    "CONCURSUS_LAB_REDIS_PORT to its port."
)


class Redis(Service):
    """One Redis server on 127.0.0.1 (port 6379), its data in an append-only file."""

    name = "redis"
    program = "redis-server"
    port_env = "CONCURSUS_LAB_REDIS_PORT"

    @property
    def port(self) -> int:
        return _settings.port(self.port_env, 6379)

    @property
    def other_ports(self) -> dict[str, tuple[int, str]]:
        return {}

    @functools.cached_property
    def version(self) -> str:
        """The installed server's version (``redis-server --version``); ``missing`` when
        there is no ``redis-server`` that runs, so that a status never needs one."""
        try:
            out = subprocess.run(
                [self._executable(), "--version"], capture_output=True, text=True, check=False
            ).stdout
        except (ServiceError, OSError):
            return "missing"
        for word in out.split():
            if word.startswith("v="):
                return word[2:]
        return "unknown"

    @property
    def marker(self) -> str:
        return str(self._conf_file)

    @property
    def _conf_file(self) -> Path:
        return self.state / "conf" / "redis.conf"

    def _executable(self) -> str:
        found = shutil.which(self.program)
        if found is None:
            raise ServiceError(f"redis-server was not found on PATH. {_INSTALL}")
        return found

    def _runnable(self) -> str:
        found = self._executable()
        if self.version == "missing":
            raise ServiceError(f"{found} is there but could not be run. {_INSTALL}")
        return found

    def resolve(self, say: Callable[[str], None] | None) -> None:
        self._runnable()

    def runtime(self, say: Callable[[str], None] | None) -> tuple[str, list[Path]]:
        return self._runnable(), []

    def configure(self, classpath: list[Path], java: str) -> None:
        self._conf_file.parent.mkdir(parents=True, exist_ok=True)
        self.data.mkdir(parents=True, exist_ok=True)
        settings = {
            "bind": self.host,
            "port": self.port,
            "protected-mode": "yes",
            "daemonize": "no",
            "dir": str(self.data),
            "appendonly": "yes",
            "appendfsync": "everysec",
            "save": '""',
            "maxmemory": MAX_MEMORY,
            "maxmemory-policy": "noeviction",
            "set-proc-title": "no",
            "logfile": '""',
        }
        lines = [f"{key} {value}" for key, value in settings.items()]
        self._conf_file.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def jvm_options(self, classpath: list[Path]) -> list[str]:
        return []

    def command(self, java: str, classpath: list[Path]) -> list[str]:
        return [java, self.marker]

    def probe(self, timeout: float) -> str:
        """Send ``PING``; a ready server answers ``+PONG`` (one still loading its data file
        answers ``-LOADING``)."""
        with socket.create_connection((self.host, self.port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            answer = sock.recv(64)
        if not answer.startswith(b"+PONG"):
            raise ProbeFailed(answer.decode(errors="replace").strip() or "no answer")
        return "PONG"
