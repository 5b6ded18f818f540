"""Apache Cassandra 5.0 as one local node: config, JVM options, and a CQL readiness probe.

The JVM runs ``CassandraDaemon`` directly (the shell launcher refuses to run as root) with the
Java 17 module options of Cassandra's own ``conf/jvm17-server.options``.
"""

from __future__ import annotations

import os
import resource
import shutil
import socket
import struct
import sys
from pathlib import Path

from concursus_lab.exceptions import ServiceError
from concursus_lab.services import _settings
from concursus_lab.services._spec import ProbeFailed, Service, recv_exact, render

HEAP = "1g"

# From Cassandra 5.0's conf/jvm17-server.options (plus java.nio, which embedders add).
_ADD_EXPORTS = [
    "java.base/jdk.internal.misc",
    "java.management.rmi/com.sun.jmx.remote.internal.rmi",
    "java.rmi/sun.rmi.registry",
    "java.rmi/sun.rmi.server",
    "java.sql/java.sql",
    "java.base/java.lang.ref",
    "jdk.unsupported/sun.misc",
    "jdk.compiler/com.sun.tools.javac.file",
    "jdk.attach/sun.tools.attach",
]
_ADD_OPENS = [
    "java.base/java.lang.module",
    "java.base/jdk.internal.loader",
    "java.base/jdk.internal.ref",
    "java.base/jdk.internal.reflect",
    "java.base/jdk.internal.math",
    "java.base/jdk.internal.module",
    "java.base/jdk.internal.util.jar",
    "jdk.management/com.sun.management.internal",
    "java.base/sun.nio.ch",
    "java.base/java.io",
    "java.base/java.lang.reflect",
    "jdk.compiler/com.sun.tools.javac",
    "java.base/java.lang",
    "java.base/java.util",
    "java.base/java.nio",
]

_MEMLOCK_LIMIT = 64 * 1024


def _no_mlock_prefix() -> list[str]:
    """A command prefix that keeps Cassandra from locking all of its memory.

    ``CassandraDaemon`` always calls ``mlockall(MCL_CURRENT)``. As root (CI) that succeeds and
    pins every mapped page: ~1.5 GB resident instead of ~0.4 GB, and a slower start. util-linux's
    ``setpriv`` drops CAP_IPC_LOCK from the bounding set (so root loses it at exec) and
    ``prlimit`` caps RLIMIT_MEMLOCK at 64 KiB; the call then fails and Cassandra logs
    one warning and carries on. Plain programs, not a ``preexec_fn``: a start from a thread (tests
    restart servers that way) stays safe.
    """
    if not sys.platform.startswith("linux"):
        return []
    prefix: list[str] = []
    soft, _hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    prlimit = shutil.which("prlimit")
    if prlimit and (soft == resource.RLIM_INFINITY or soft > _MEMLOCK_LIMIT):
        prefix += [prlimit, f"--memlock={_MEMLOCK_LIMIT}", "--"]
    setpriv = shutil.which("setpriv")
    if setpriv and os.geteuid() == 0:
        prefix += [setpriv, "--bounding-set=-ipc_lock", "--"]
    return prefix


class Cassandra(Service):
    """A single Cassandra 5.0 node on 127.0.0.1 (CQL 9042, storage 7000, no JMX)."""

    name = "cassandra"
    pom_resource = "cassandra-pom.xml"
    main_class = "org.apache.cassandra.service.CassandraDaemon"
    port_env = "CONCURSUS_LAB_CASSANDRA_PORT"

    @property
    def port(self) -> int:
        return _settings.port(self.port_env, 9042)

    @property
    def storage_port(self) -> int:
        return _settings.port("CONCURSUS_LAB_CASSANDRA_STORAGE_PORT", 7000)

    @property
    def other_ports(self) -> dict[str, tuple[int, str]]:
        return {"storage": (self.storage_port, "CONCURSUS_LAB_CASSANDRA_STORAGE_PORT")}

    def configure(self, classpath: list[Path], java: str) -> None:
        conf = self.state / "conf"
        conf.mkdir(parents=True, exist_ok=True)
        self.data.mkdir(parents=True, exist_ok=True)
        render(
            "cassandra.yaml",
            conf / "cassandra.yaml",
            host=self.host,
            data=self.data,
            storage_port=self.storage_port,
            native_port=self.port,
        )
        render("cassandra-logback.xml", conf / "logback.xml")

    def jvm_options(self, classpath: list[Path]) -> list[str]:
        jamm = [jar for jar in classpath if jar.name.startswith("jamm-")]
        if not jamm:
            raise ServiceError(
                f"the jamm jar is missing from Cassandra's classpath; delete "
                f"{self.state / 'classpath.txt'} and start again to re-resolve it."
            )
        conf = self.state / "conf"
        return [
            f"-Xms{HEAP}",
            f"-Xmx{HEAP}",
            "-Xss256k",
            # C1 only unless full_jit: half the CPU to start (~5 instead of ~10 CPU-seconds) and,
            # for the short workloads of tests and notebooks on two cores, faster overall (see
            # docs/services.md); a long read costs C1's code ~2x the CPU (docs/pekko.md).
            *self.jit_options(),
            # G1 settings from jvm17-server.options.
            "-XX:+UseG1GC",
            "-XX:+ParallelRefProcEnabled",
            "-XX:MaxTenuringThreshold=1",
            "-XX:G1HeapRegionSize=16m",
            "-XX:MaxGCPauseMillis=300",
            "-XX:InitiatingHeapOccupancyPercent=70",
            "-XX:+ExitOnOutOfMemoryError",
            "-XX:+PerfDisableSharedMem",
            "-Djava.net.preferIPv4Stack=true",
            "-Djdk.attach.allowAttachSelf=true",
            # Cassandra installs a SecurityManager (for UDFs); say it is allowed, so Java 17
            # does not print a deprecation warning.
            "-Djava.security.manager=allow",
            *[f"--add-exports={m}=ALL-UNNAMED" for m in _ADD_EXPORTS],
            *[f"--add-opens={m}=ALL-UNNAMED" for m in _ADD_OPENS],
            "-Dio.netty.tryReflectionSetAccessible=true",
            "-Dio.netty.allocator.useCacheForAllThreads=true",
            "-Dio.netty.allocator.maxOrder=11",
            f"-javaagent:{jamm[0]}",
            f"-Dcassandra.config={(conf / 'cassandra.yaml').as_uri()}",
            f"-Dlogback.configurationFile={(conf / 'logback.xml').as_uri()}",
            f"-Dcassandra.storagedir={self.data}",
            f"-Dcassandra.logdir={self.state / 'logs'}",
            "-Dcassandra-foreground=yes",
            # A single node: nothing to wait for.
            "-Dcassandra.skip_wait_for_gossip_to_settle=0",
            # Skip measuring memtable row overhead at start (it is 180 on Java 17): ~1 s.
            "-Dcassandra.memtable.row_overhead_size=180",
        ]

    def launch_prefix(self) -> list[str]:
        return _no_mlock_prefix()

    def probe(self, timeout: float) -> str:
        """Run ``SELECT release_version FROM system.local`` over the CQL protocol (v4)."""
        return cql_release_version(self.host, self.port, timeout)


# --- a minimal CQL native protocol v4 client: enough to ask one question -------------------

_OP_ERROR, _OP_STARTUP, _OP_READY, _OP_AUTHENTICATE, _OP_QUERY, _OP_RESULT = 0, 1, 2, 3, 7, 8


def _string(value: str) -> bytes:
    raw = value.encode()
    return struct.pack(">H", len(raw)) + raw


def _exchange(sock: socket.socket, stream: int, opcode: int, body: bytes) -> tuple[int, bytes]:
    sock.sendall(struct.pack(">BBhBi", 0x04, 0, stream, opcode, len(body)) + body)
    _version, _flags, _stream, op, length = struct.unpack(">BBhBi", recv_exact(sock, 9))
    payload = recv_exact(sock, length)
    if op == _OP_ERROR:
        code = struct.unpack(">i", payload[:4])[0]
        (size,) = struct.unpack(">H", payload[4:6])
        message = payload[6 : 6 + size].decode(errors="replace")
        raise ProbeFailed(f"server error 0x{code:04x}: {message}")
    return op, payload


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def take(self, fmt: str) -> int:
        (value,) = struct.unpack_from(fmt, self.data, self.at)
        self.at += struct.calcsize(fmt)
        return int(value)

    def string(self) -> str:
        size = self.take(">H")
        self.at += size
        return self.data[self.at - size : self.at].decode()

    def bytes_(self) -> bytes | None:
        size = self.take(">i")
        if size < 0:
            return None
        self.at += size
        return self.data[self.at - size : self.at]


def cql_release_version(host: str, port: int, timeout: float) -> str:
    """The ``release_version`` a CQL server reports, asked over protocol v4 without a driver.

    Raises
    ------
    OSError
        When the port does not accept a connection.
    ProbeFailed
        When the server answers with an error or something unexpected.
    """
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        startup = struct.pack(">H", 1) + _string("CQL_VERSION") + _string("3.0.0")
        op, _ = _exchange(sock, 1, _OP_STARTUP, startup)
        if op == _OP_AUTHENTICATE:
            return "unknown (the server asks for credentials)"
        if op != _OP_READY:
            raise ProbeFailed(f"unexpected answer to STARTUP (opcode {op})")
        query = "SELECT release_version FROM system.local"
        raw = query.encode()
        body = struct.pack(">i", len(raw)) + raw + struct.pack(">HB", 0x0001, 0)
        op, payload = _exchange(sock, 2, _OP_QUERY, body)
        if op != _OP_RESULT:
            raise ProbeFailed(f"unexpected answer to QUERY (opcode {op})")
        reader = _Reader(payload)
        if reader.take(">i") != 2:  # Rows
            raise ProbeFailed("the query returned no rows")
        flags, columns = reader.take(">i"), reader.take(">i")
        if flags & 0x0002:  # has paging state
            reader.bytes_()
        if flags & 0x0001:  # global table spec
            reader.string()
            reader.string()
        for _ in range(columns):
            if not flags & 0x0001:
                reader.string()
                reader.string()
            reader.string()
            if reader.take(">H") != 0x000D:  # varchar
                raise ProbeFailed("release_version is not text")
        if reader.take(">i") < 1:
            raise ProbeFailed("system.local is empty")
        value = reader.bytes_()
        return value.decode() if value is not None else "unknown"
