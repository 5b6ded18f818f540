"""RabbitMQ from Debian's ``rabbitmq-server`` package: config, environment and probe.

The set-up installs Debian's package (``scripts/setup.sh --services``); this module runs its
server script, ``/usr/lib/rabbitmq/bin/rabbitmq-server``, directly (Debian's
``/usr/sbin/rabbitmq-server`` would switch to the ``rabbitmq`` user and its system folders)
with everything in the state folder: node name, data (``mnesia``), logs, config, the Erlang
cookie (``HOME``). The launched process is that script: it turns SIGTERM into a clean stop of
the Erlang VM it starts. Memory is capped by ``vm_memory_high_watermark``. Erlang's port
mapper (``epmd``) is started by the VM on its first start and outlives it, as it does for
every Erlang program; it holds no data.
"""

from __future__ import annotations

import functools
import itertools
import os
import socket
from collections.abc import Callable
from pathlib import Path

from concursus_lab.exceptions import ServiceError
from concursus_lab.services import _process, _settings
from concursus_lab.services._spec import ProbeFailed, Service

SCRIPT = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
MEMORY = "256MiB"
_FLAG = "-concursus_lab_service"  # an Erlang user flag: the VM keeps it, and ignores it
_INSTALL = (
    "Install Debian's rabbitmq-server (`apt-get install rabbitmq-server`; `scripts/setup.sh "
    "--services` does it)."
)


class RabbitMQ(Service):
    """One RabbitMQ node on 127.0.0.1 (AMQP 5672, Erlang distribution 25672)."""

    name = "rabbitmq"
    program = "rabbitmq-server"
    port_env = "CONCURSUS_LAB_RABBITMQ_PORT"

    @property
    def port(self) -> int:
        return _settings.port(self.port_env, 5672)

    @property
    def dist_port(self) -> int:
        return _settings.port("CONCURSUS_LAB_RABBITMQ_DIST_PORT", self.port + 20000)

    @property
    def other_ports(self) -> dict[str, tuple[int, str]]:
        return {"distribution": (self.dist_port, "CONCURSUS_LAB_RABBITMQ_DIST_PORT")}

    @functools.cached_property
    def version(self) -> str:
        """The installed server's version, from its folder name (``rabbitmq_server-3.10.8``)."""
        found = sorted(Path("/usr/lib/rabbitmq/lib").glob("rabbitmq_server-*"))
        return found[-1].name.split("-", 1)[1] if found else "unknown"

    @property
    def marker(self) -> str:
        return f"{self.name}:{self.state}"

    def owns(self, pid: int) -> bool:
        args = _process.command_line(pid)
        return (
            _process.is_alive(pid)
            and any(os.path.basename(a) == self.program for a in args[:2])
            and any(a == _FLAG and b == self.marker for a, b in itertools.pairwise(args))
        )

    def _check(self) -> str:
        if not SCRIPT.exists():
            raise ServiceError(f"{SCRIPT} was not found. {_INSTALL}")
        return str(SCRIPT)

    def resolve(self, say: Callable[[str], None] | None) -> None:
        self._check()

    def runtime(self, say: Callable[[str], None] | None) -> tuple[str, list[Path]]:
        return self._check(), []

    @property
    def _conf(self) -> Path:
        return self.state / "conf"

    def environment(self) -> dict[str, str]:
        return {
            "HOME": str(self.state / "home"),  # the Erlang cookie lives here
            "RABBITMQ_NODENAME": f"concursus_lab_{self.port}@localhost",
            "RABBITMQ_NODE_IP_ADDRESS": self.host,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.data),
            "RABBITMQ_LOG_BASE": str(self.state / "logs"),
            "RABBITMQ_CONFIG_FILE": str(self._conf / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self._conf / "enabled_plugins"),
        }

    def configure(self, classpath: list[Path], java: str) -> None:
        for folder in (self._conf, self.data, self.state / "logs", self.state / "home"):
            folder.mkdir(parents=True, exist_ok=True)
        (self._conf / "rabbitmq.conf").write_text(
            "\n".join(
                [
                    f"listeners.tcp.default = {self.host}:{self.port}",
                    f"vm_memory_high_watermark.absolute = {MEMORY}",
                    "disk_free_limit.absolute = 50MB",
                    "log.console = true",
                    "log.console.level = warning",
                    "",
                ]
            )
        )
        (self._conf / "enabled_plugins").write_text("[].\n")

    def jvm_options(self, classpath: list[Path]) -> list[str]:
        return []

    def command(self, java: str, classpath: list[Path]) -> list[str]:
        return [java, _FLAG, self.marker]

    def probe(self, timeout: float) -> str:
        """Open AMQP 0-9-1: a ready broker answers the protocol header with Connection.Start
        (a method frame, type 1, on channel 0)."""
        with socket.create_connection((self.host, self.port), timeout=timeout) as sock:
            sock.sendall(b"AMQP\x00\x00\x09\x01")
            answer = sock.recv(7)
        if len(answer) < 7 or answer[0] != 1 or answer[1:3] != b"\x00\x00":
            raise ProbeFailed(f"no AMQP Connection.Start ({answer!r})")
        return "AMQP 0-9-1"
