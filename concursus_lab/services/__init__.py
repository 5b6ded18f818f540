"""Run a real Cassandra 5.0, Kafka 4.x, Redis, RabbitMQ, Hazelcast and a schema registry on
127.0.0.1 for tests.

Cassandra's, Kafka's and Hazelcast's jars come from Maven Central through Maven (pinned in the
pom files beside this module) and run as detached Java 17 processes; Redis and RabbitMQ are Debian's
``redis-server`` and ``rabbitmq-server`` packages, run the same way. Each keeps its files in
one state folder:
``$CONCURSUS_LAB_SERVICES_DIR/<name>`` when that is set, else ``<checkout>/.services/<name>``,
else ``~/.cache/concursus-lab/services/<name>``. A service keeps running after the Python
process that started it exits; :func:`stop` ends it.

>>> from concursus_lab import services
>>> services.ensure("cassandra", "kafka")      # doctest: +SKIP
['cassandra', 'kafka']
>>> for s in services.status():                # doctest: +SKIP
...     print(s)
cassandra 5.0.9  running  127.0.0.1:9042  pid 4242   /work/main/.services/cassandra
kafka     4.4.0  running  127.0.0.1:9092  pid 4243   /work/main/.services/kafka

See ``docs/services.md`` for what runs, with which JVM options, and how long it takes.

The same from a shell: ``concursus-lab services start|stop|status|logs|wipe``.

Ports (override with environment variables): Cassandra CQL 9042
(``CONCURSUS_LAB_CASSANDRA_PORT``), storage 7000 (``CONCURSUS_LAB_CASSANDRA_STORAGE_PORT``);
Kafka 9092 (``CONCURSUS_LAB_KAFKA_PORT``), controller 9093
(``CONCURSUS_LAB_KAFKA_CONTROLLER_PORT``); Redis 6379 (``CONCURSUS_LAB_REDIS_PORT``);
RabbitMQ 5672 (``CONCURSUS_LAB_RABBITMQ_PORT``), distribution 25672
(``CONCURSUS_LAB_RABBITMQ_DIST_PORT``); Hazelcast 5701 (``CONCURSUS_LAB_HAZELCAST_PORT``);
the schema registry (Apicurio, on Java 21+) 8081 (``CONCURSUS_LAB_REGISTRY_PORT``), management
8082 (``CONCURSUS_LAB_REGISTRY_MANAGEMENT_PORT``).
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from concursus_lab.exceptions import ServiceError
from concursus_lab.services import _maven, _process, _settings
from concursus_lab.services._cassandra import Cassandra
from concursus_lab.services._hazelcast import Hazelcast
from concursus_lab.services._kafka import Kafka
from concursus_lab.services._rabbitmq import RabbitMQ
from concursus_lab.services._redis import Redis
from concursus_lab.services._registry import Registry
from concursus_lab.services._spec import ProbeFailed, Service
from concursus_lab.services._status import ServiceStatus
from concursus_lab.services._status import of as _status

__all__ = [
    "DEFAULT_TIMEOUT",
    "NAMES",
    "ServiceStatus",
    "address",
    "classpath",
    "ensure",
    "start",
    "status",
    "stop",
    "wipe",
]

NAMES: tuple[str, ...] = ("cassandra", "kafka", "redis", "rabbitmq", "hazelcast", "registry")
"""The services this module runs, in the order they are started."""

DEFAULT_TIMEOUT = 180.0
"""Seconds :func:`start` waits for a freshly started server to answer."""

STOP_TIMEOUT = 60.0
"""Seconds :func:`stop` waits after SIGTERM before it sends SIGKILL."""

_CLASSES: dict[str, type[Service]] = {
    "cassandra": Cassandra,
    "kafka": Kafka,
    "redis": Redis,
    "rabbitmq": RabbitMQ,
    "hazelcast": Hazelcast,
    "registry": Registry,
}


@dataclasses.dataclass
class _Pending:
    """A service that :func:`_launch` found running, found external, or just started."""

    service: Service
    pid: int | None
    process: subprocess.Popen[bytes] | None = None
    launched_at: float | None = None

    @property
    def started(self) -> bool:
        return self.launched_at is not None


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _service(name: str, *, full_jit: bool = False) -> Service:
    try:
        return _CLASSES[name](full_jit=full_jit)
    except KeyError:
        raise ServiceError(f"unknown service {name!r}; choose one of {', '.join(NAMES)}.") from None


def _launch(service: Service, say: Callable[[str], None] | None) -> _Pending:
    """Start ``service``'s JVM unless it already runs or something else answers on its port."""
    with _process.locked(service.state):
        pid = service.owned_pid()
        if pid is not None:
            return _Pending(service, pid)
        service.pid_file.unlink(missing_ok=True)  # stale: its process is gone or not ours
        if _process.port_open(service.host, service.port):
            try:
                answer = service.probe(timeout=5.0)
            except (OSError, ProbeFailed) as exc:
                raise ServiceError(
                    f"port {service.port} on {service.host} is taken by a program that does not "
                    f"answer as {service.name} ({exc}); stop that program, or set "
                    f"{service.port_env} to a free port."
                ) from exc
            if say is not None:
                say(
                    f"{service.name}: a server not started from {service.state} already "
                    f"answers on {service.address} ({answer}); using it"
                )
            return _Pending(service, None)
        for label, (port, env) in service.other_ports.items():
            if _process.port_open(service.host, port):
                raise ServiceError(
                    f"{service.name} needs port {port} ({label}) on {service.host}, but another "
                    f"program listens there; stop it, or set {env} to a free port."
                )
        java, classpath = service.runtime(say)
        _process.rotate(service.log)
        service.configure(classpath, java)
        if say is not None:
            say(f"starting {service.name} {service.version} (log: {service.log})")
        process = _process.launch(
            service.command(java, classpath),
            cwd=service.state,
            log=service.log,
            env=service.environment(),
        )
        _process.write_pid(service.pid_file, process.pid)
        return _Pending(service, process.pid, process, launched_at=time.monotonic())


def _await(pending: _Pending, timeout: float, say: Callable[[str], None] | None) -> ServiceStatus:
    """Wait until ``pending`` answers its own protocol, or fail with the log's tail."""
    service, pid = pending.service, pending.pid
    if pid is None:
        return _status(service)
    since = pending.launched_at if pending.launched_at is not None else time.monotonic()
    deadline = since + timeout
    last = "no answer yet"
    while True:
        if not _process.is_alive(pid):
            code = pending.process.poll() if pending.process is not None else None
            with _process.locked(service.state):
                if _process.read_pid(service.pid_file) == pid:
                    service.pid_file.unlink(missing_ok=True)
            exited = "exited" if code is None else f"exited with code {code}"
            raise ServiceError(
                f"{service.name} {service.version} (pid {pid}) {exited} during start-up, "
                f"{time.monotonic() - since:.1f} s after launch. Last lines of {service.log}:\n"
                f"{_process.tail(service.log, 40)}\n"
                f"Fix the cause shown above (a port in use, a broken data folder: "
                f"`concursus-lab services wipe {service.name}`), then start it again. "
                f"Whole log: {service.log}"
            )
        if _process.port_open(service.host, service.port):
            try:
                service.probe(timeout=5.0)
                break
            except (OSError, ProbeFailed) as exc:
                last = str(exc) or type(exc).__name__
        if time.monotonic() > deadline:
            raise ServiceError(
                f"{service.name} (pid {pid}) did not answer on {service.address} within "
                f"{timeout:.0f} s ({last}). It is still running and may yet come up: see "
                f"`concursus-lab services logs {service.name}` ({service.log}), or stop it "
                f"with `concursus-lab services stop {service.name}`. Last lines of the log:\n"
                f"{_process.tail(service.log, 40)}"
            )
        time.sleep(0.25)
    elapsed = time.monotonic() - since if pending.started else None
    result = _status(service, startup_seconds=elapsed)
    if elapsed is not None and say is not None:
        say(
            f"{service.name} {service.version} ready on {service.address} in {elapsed:.1f} s "
            f"(pid {pid})"
        )
    return result


def start(
    name: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    fresh: bool = False,
    quiet: bool = False,
    full_jit: bool = False,
) -> ServiceStatus:
    """Start one service and wait until it answers; return at once when it already does.

    The first start resolves the server's jars with Maven (70 MB of jars for Cassandra,
    45 MB for Kafka, kept in ``~/.m2``) and caches the classpath in the state folder; later
    starts need no network. Config files are rewritten at every start; Kafka's storage is
    formatted at the first start.

    Parameters
    ----------
    name
        ``"cassandra"`` or ``"kafka"``.
    timeout
        Seconds to wait, after the JVM is launched, for the server to answer.
    fresh
        Delete the service's data first (see :func:`wipe`).
    quiet
        Print nothing. Otherwise progress lines and the start-up time go to stderr.
    full_jit
        Run a JVM server with its full JIT (C1 then C2, as servers run elsewhere) instead of
        C1 only: twice the CPU to start, less per request on a long workload (a benchmark).
        It applies when this call launches the server; a running one keeps its options.

    Returns
    -------
    ServiceStatus
        With ``startup_seconds`` set when this call launched the server.

    Raises
    ------
    ServiceError
        When Java or Maven is missing, a port is taken, the JVM dies during start-up (the
        message holds the last 40 lines of its log) or it does not answer within ``timeout``.
    """
    say = None if quiet else _say
    service = _service(name, full_jit=full_jit)
    if fresh:
        wipe(name, quiet=quiet)
    return _await(_launch(service, say), timeout, say)


def ensure(
    *names: str, timeout: float = DEFAULT_TIMEOUT, quiet: bool = False, full_jit: bool = False
) -> list[str]:
    """Start the named services (all when none is named) that are not running yet.

    All JVMs are launched before waiting for any, so they start side by side.

    Parameters
    ----------
    *names
        Service names; default :data:`NAMES`.
    timeout
        Seconds each server may take to answer after its launch.
    quiet
        Print nothing.
    full_jit
        As for :func:`start`.

    Returns
    -------
    list of str
        The names this call started (empty when all were already answering).

    Raises
    ------
    ServiceError
        As :func:`start`.
    """
    say = None if quiet else _say
    wanted = list(dict.fromkeys(names or NAMES))
    services = [_service(name, full_jit=full_jit) for name in wanted]
    for service in services:
        # Resolve every classpath before launching any JVM: Maven and a starting server
        # would fight for the same two cores.
        if service.owned_pid() is None and not _process.port_open(service.host, service.port):
            service.resolve(say)
    pending = [_launch(service, say) for service in services]
    for item in pending:
        _await(item, timeout, say)
    return [item.service.name for item in pending if item.started]


def stop(name: str, *, timeout: float = STOP_TIMEOUT, quiet: bool = False) -> bool:
    """Stop the service's JVM started from its state folder, and only that process.

    The pid file must name a live ``java`` process carrying this service's marker argument;
    it gets SIGTERM, and SIGKILL after ``timeout`` seconds.

    Parameters
    ----------
    name
        ``"cassandra"`` or ``"kafka"``.
    timeout
        Seconds to wait for a clean shutdown (Cassandra drains in about 6 s).
    quiet
        Print nothing.

    Returns
    -------
    bool
        True when a running JVM was stopped, False when none was running.

    Raises
    ------
    ServiceError
        When the pid file names a live process that is not this service's JVM (the pid was
        reused); that process is left alone and the stale pid file is removed.
    """
    service = _service(name)
    with _process.locked(service.state):
        pid = _process.read_pid(service.pid_file)
        if pid is None or not _process.is_alive(pid):
            service.pid_file.unlink(missing_ok=True)
            return False
        if not service.owns(pid):
            what = _process.describe(pid)
            service.pid_file.unlink(missing_ok=True)
            raise ServiceError(
                f"not stopping pid {pid}: {service.pid_file} names it, but it is {what}, not "
                f"the {name} JVM started from {service.state}. The pid file was stale and has "
                f"been removed; nothing was killed."
            )
        _process.terminate(pid, timeout=timeout)
        service.pid_file.unlink(missing_ok=True)
    if not quiet:
        _say(f"{name} stopped (pid {pid})")
    return True


def status(*names: str) -> list[ServiceStatus]:
    """The status of the named services (every one when none is named), in :data:`NAMES`
    order (cheap: no protocol round trip). Only the named services are looked at, so a
    status of Cassandra needs none of the other servers' programs."""
    unknown = [name for name in names if name not in NAMES]
    if unknown:
        _service(unknown[0])  # raises, naming the choices
    return [_status(_service(name)) for name in NAMES if not names or name in names]


def wipe(name: str, *, quiet: bool = False) -> bool:
    """Stop the service if it runs here, then delete its data (keeps jars, config and logs).

    Parameters
    ----------
    name
        ``"cassandra"`` or ``"kafka"``.
    quiet
        Print nothing.

    Returns
    -------
    bool
        True when there was data to delete.
    """
    service = _service(name)
    stop(name, quiet=quiet)
    with _process.locked(service.state):
        existed = service.data.exists()
        shutil.rmtree(service.data, ignore_errors=True)
    if existed and not quiet:
        _say(f"{name}: deleted {service.data}")
    return existed


def address(name: str) -> str:
    """``host:port`` where clients reach the service (honours the port variables)."""
    return _service(name).address


def classpath(pom: Path, name: str, *, say: Callable[[str], None] | None = None) -> list[Path]:
    """The jars of ``pom``'s dependencies, resolved by Maven into ``~/.m2`` on first use, as
    every service's are; the class path is cached in the services' folder ``name`` (for
    example the Spark connectors' jars, ``classpath(spark_pom, "spark")``)."""
    return _maven.resolve(pom, _settings.services_root() / name, say=say)
