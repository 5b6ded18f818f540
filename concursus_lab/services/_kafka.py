"""Apache Kafka 4.x as one KRaft node (broker and controller in one JVM): config and probe.

Storage is formatted once with ``kafka.tools.StorageTool format --standalone``; the server then
runs as ``kafka.Kafka server.properties``. Readiness is checked over Kafka's own protocol:
an ApiVersions request, then a Metadata request that must list at least one broker (a broker
is listed only once it is unfenced, that is, ready for clients).
"""

from __future__ import annotations

import base64
import socket
import struct
import subprocess
import uuid
from pathlib import Path

from concursus_lab.exceptions import ServiceError
from concursus_lab.services import _process, _settings
from concursus_lab.services._spec import ProbeFailed, Service, recv_exact, render

HEAP = "512m"


def cluster_id(draw=lambda: uuid.uuid4().bytes) -> str:
    """A random cluster id as Kafka's ``Uuid.randomUuid`` makes it: never one starting with "-".

    One id in 64 would otherwise start with "-", which the storage tool's argument parser
    reads as an option (and Kafka itself refuses to generate).
    """
    while True:
        text = base64.urlsafe_b64encode(draw()).decode().rstrip("=")
        if not text.startswith("-"):
            return text


class Kafka(Service):
    """A single Kafka 4.x KRaft node on 127.0.0.1 (client 9092, controller 9093)."""

    name = "kafka"
    pom_resource = "kafka-pom.xml"
    main_class = "kafka.Kafka"
    port_env = "CONCURSUS_LAB_KAFKA_PORT"

    @property
    def port(self) -> int:
        return _settings.port(self.port_env, 9092)

    @property
    def controller_port(self) -> int:
        return _settings.port("CONCURSUS_LAB_KAFKA_CONTROLLER_PORT", 9093)

    @property
    def other_ports(self) -> dict[str, tuple[int, str]]:
        return {"controller": (self.controller_port, "CONCURSUS_LAB_KAFKA_CONTROLLER_PORT")}

    @property
    def _conf(self) -> Path:
        return self.state / "conf"

    def _log4j_option(self) -> str:
        return f"-Dlog4j2.configurationFile={(self._conf / 'log4j2.xml').as_uri()}"

    def configure(self, classpath: list[Path], java: str) -> None:
        self._conf.mkdir(parents=True, exist_ok=True)
        self.data.mkdir(parents=True, exist_ok=True)
        render(
            "kafka-server.properties",
            self._conf / "server.properties",
            host=self.host,
            port=self.port,
            controller_port=self.controller_port,
            log_dirs=self.data,
        )
        render("kafka-log4j2.xml", self._conf / "log4j2.xml")
        if not (self.data / "meta.properties").is_file():
            self._format(classpath, java)

    def _format(self, classpath: list[Path], java: str) -> None:
        """Format the log directory once, as a standalone controller quorum of one."""
        command = [
            java,
            "-Xmx256m",
            self._log4j_option(),
            "-cp",
            ":".join(str(jar) for jar in classpath),
            "kafka.tools.StorageTool",
            "format",
            "--standalone",
            f"--cluster-id={cluster_id()}",
            "-c",
            str(self._conf / "server.properties"),
        ]
        with open(self.log, "ab") as out:
            out.write(f"$ {' '.join(command)}\n".encode())
            out.flush()
            done = subprocess.run(
                command,
                cwd=self.state,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                check=False,
                timeout=300,
            )
        if done.returncode != 0:
            raise ServiceError(
                f"formatting Kafka's storage in {self.data} failed (exit code "
                f"{done.returncode}). Last lines of {self.log}:\n{_process.tail(self.log, 20)}\n"
                f"If the folder holds an old or broken format, run "
                f"`concursus-lab services wipe kafka` and start again."
            )

    def jvm_options(self, classpath: list[Path]) -> list[str]:
        return [
            f"-Xms{HEAP}",
            f"-Xmx{HEAP}",
            # C1 only unless full_jit: ~3 instead of ~5.5 CPU-seconds to start; see _cassandra.
            *self.jit_options(),
            # Kafka's own defaults from kafka-run-class.sh.
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:InitiatingHeapOccupancyPercent=35",
            "-XX:+ExplicitGCInvokesConcurrent",
            "-XX:+ExitOnOutOfMemoryError",
            "-XX:+PerfDisableSharedMem",
            "-Djava.awt.headless=true",
            "-Djava.net.preferIPv4Stack=true",
            self._log4j_option(),
            f"-Dkafka.logs.dir={self.state / 'logs'}",
        ]

    def main_arguments(self) -> list[str]:
        return [str(self._conf / "server.properties")]

    def probe(self, timeout: float) -> str:
        """ApiVersions, then Metadata: ready once the broker lists itself."""
        brokers = kafka_brokers(self.host, self.port, timeout)
        if not brokers:
            raise ProbeFailed("the broker does not list itself yet (still fenced)")
        return f"{len(brokers)} broker(s): " + ", ".join(brokers)


# --- a minimal Kafka protocol client: ApiVersions v0 and Metadata v1 -------------------------

_API_METADATA, _API_VERSIONS = 3, 18


def _request(
    sock: socket.socket, api_key: int, version: int, correlation: int, body: bytes
) -> bytes:
    client = b"concursus-lab-probe"
    header = struct.pack(">hhih", api_key, version, correlation, len(client)) + client
    message = header + body
    sock.sendall(struct.pack(">i", len(message)) + message)
    size = struct.unpack(">i", recv_exact(sock, 4))[0]
    payload = recv_exact(sock, size)
    if struct.unpack(">i", payload[:4])[0] != correlation:
        raise ProbeFailed("the answer does not match the request")
    return payload[4:]


def kafka_brokers(host: str, port: int, timeout: float) -> list[str]:
    """The brokers (``id@host:port``) a Kafka server lists, asked without a client library.

    Raises
    ------
    OSError
        When the port does not accept a connection.
    ProbeFailed
        When the server answers with an error or not at all.
    """
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        versions = _request(sock, _API_VERSIONS, 0, 1, b"")
        error = struct.unpack(">h", versions[:2])[0]
        if error:
            raise ProbeFailed(f"ApiVersions failed with error code {error}")
        # Metadata v1 with an empty topic list: just the brokers and the controller.
        body = _request(sock, _API_METADATA, 1, 2, struct.pack(">i", 0))
        at = 0
        (count,) = struct.unpack_from(">i", body, at)
        at += 4
        brokers = []
        for _ in range(count):
            node, size = struct.unpack_from(">ih", body, at)
            at += 6
            broker_host = body[at : at + size].decode()
            at += size
            (broker_port, rack) = struct.unpack_from(">ih", body, at)
            at += 6 + max(rack, 0)
            brokers.append(f"{node}@{broker_host}:{broker_port}")
        return brokers
