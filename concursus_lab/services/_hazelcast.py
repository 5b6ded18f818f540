"""Hazelcast 5 as one member on loopback (the store of Concursus's idempotency filter).

The member is the ``com.hazelcast:hazelcast`` jar from Maven Central, run on Java 17 with
``HazelcastMemberStarter`` and a config file written at every start (``hazelcast.xml`` beside
this module): cluster name ``dev`` (Hazelcast's default, so a default client finds it), port
5701 without auto-increment, no discovery beyond itself, Jet off, phone-home off. Its maps live
in memory only: a restart empties them, as a real filter's restart does. Readiness is checked
with the member's health endpoint (``GET /hazelcast/health/ready``), which answers 200 once the
member accepts clients.
"""

from __future__ import annotations

from pathlib import Path

from concursus_lab.services import _settings
from concursus_lab.services._spec import Service, http_ready, render

HEAP = "256m"
CLUSTER = "dev"
# The module openings Hazelcast's own start script passes on Java 17 (it warns without them).
_OPENINGS = (
    "--add-modules=java.se",
    "--add-exports=java.base/jdk.internal.ref=ALL-UNNAMED",
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens=java.management/sun.management=ALL-UNNAMED",
    "--add-opens=jdk.management/com.sun.management.internal=ALL-UNNAMED",
)


class Hazelcast(Service):
    """A single Hazelcast 5 member on 127.0.0.1 (port 5701), cluster ``dev``."""

    name = "hazelcast"
    pom_resource = "hazelcast-pom.xml"
    main_class = "com.hazelcast.core.server.HazelcastMemberStarter"
    port_env = "CONCURSUS_LAB_HAZELCAST_PORT"

    @property
    def port(self) -> int:
        return _settings.port(self.port_env, 5701)

    @property
    def other_ports(self) -> dict[str, tuple[int, str]]:
        return {}

    @property
    def _config(self) -> Path:
        return self.state / "conf" / "hazelcast.xml"

    def configure(self, classpath: list[Path], java: str) -> None:
        self._config.parent.mkdir(parents=True, exist_ok=True)
        self.data.mkdir(parents=True, exist_ok=True)
        render("hazelcast.xml", self._config, cluster=CLUSTER, host=self.host, port=self.port)

    def jvm_options(self, classpath: list[Path]) -> list[str]:
        return [
            f"-Xms{HEAP}",
            f"-Xmx{HEAP}",
            # C1 only unless full_jit, as for the other servers: a faster start on two cores.
            *self.jit_options(),
            "-XX:+ExitOnOutOfMemoryError",
            "-XX:+PerfDisableSharedMem",
            *_OPENINGS,
            f"-Dhazelcast.config={self._config}",
            "-Djava.net.preferIPv4Stack=true",
        ]

    def probe(self, timeout: float) -> str:
        """``GET /hazelcast/health/ready``: 200 once the member takes clients."""
        http_ready(self.host, self.port, "/hazelcast/health/ready", timeout)
        return f"member ready (cluster {CLUSTER})"
