"""The fault suite: real servers and real processes killed, files damaged, on loopback only.

It runs as its own step of the test command (``pytest tests/faults``), after the rest, and
ends with one line that says how many faults were injected and how many held. The servers it
kills are its own: a Kafka broker, a Cassandra node, a Redis, a RabbitMQ, a Hazelcast member
and a schema registry
started for this suite in a scratch state folder on free ports (:class:`Scratch`), never the
ones other tests use, and it ends them by the process ids it started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from concursus_lab import services

#: What each fault test found, in order: (fault, what held), filled by the `held` fixture.
OUTCOMES: list[tuple[str, str, bool]] = []

_PORTS = {
    "kafka": ("CONCURSUS_LAB_KAFKA_PORT", "CONCURSUS_LAB_KAFKA_CONTROLLER_PORT"),
    "cassandra": ("CONCURSUS_LAB_CASSANDRA_PORT", "CONCURSUS_LAB_CASSANDRA_STORAGE_PORT"),
    "redis": ("CONCURSUS_LAB_REDIS_PORT",),
    "rabbitmq": ("CONCURSUS_LAB_RABBITMQ_PORT", "CONCURSUS_LAB_RABBITMQ_DIST_PORT"),
    "hazelcast": ("CONCURSUS_LAB_HAZELCAST_PORT",),
    "registry": ("CONCURSUS_LAB_REGISTRY_PORT", "CONCURSUS_LAB_REGISTRY_MANAGEMENT_PORT"),
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Scratch:
    """One server of the suite's own: its state folder and ports, set only around calls to
    :mod:`concursus_lab.services` (which reads them from the environment at call time)."""

    def __init__(self, name: str, root: Path) -> None:
        self.name = name
        self.env = {"CONCURSUS_LAB_SERVICES_DIR": str(root)}
        self.env.update({var: str(_free_port()) for var in _PORTS[name]})
        self.port = int(self.env[_PORTS[name][0]])
        self.address = f"127.0.0.1:{self.port}"

    @contextlib.contextmanager
    def _environment(self) -> Iterator[None]:
        saved = {k: os.environ.get(k) for k in self.env}
        os.environ.update(self.env)
        try:
            yield
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def start(self) -> None:
        with self._environment():
            services.start(self.name, quiet=True, timeout=300)

    def stop(self) -> None:
        with self._environment():
            services.stop(self.name, quiet=True)

    def kill(self) -> int:
        """SIGKILL the server (ours: its pid file names it) and wait until it is gone.

        Each server was launched in a session of its own, whose group id is its pid; the whole
        group is killed, since RabbitMQ's pid is a script whose Erlang VM is its child."""
        with self._environment():
            (status,) = [s for s in services.status() if s.name == self.name]
        assert status.running and status.pid, status
        assert os.getpgid(status.pid) == status.pid, "not a group leader: not one we launched"
        os.killpg(status.pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while self.answering() and time.monotonic() < deadline:
            time.sleep(0.05)
        return status.pid

    def answering(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
        except OSError:
            return False
        return True


def _serve(name: str, tmp_path_factory) -> Iterator[Scratch]:
    server = Scratch(name, tmp_path_factory.mktemp("fault-services"))
    server.start()
    yield server
    server.stop()


def _scratch(name: str):
    """The session fixture ``scratch_<name>``: the suite's own server of that name."""

    @pytest.fixture(scope="session", name=f"scratch_{name}")
    def serve(tmp_path_factory) -> Iterator[Scratch]:
        yield from _serve(name, tmp_path_factory)

    return serve


scratch_kafka = _scratch("kafka")
scratch_cassandra = _scratch("cassandra")
scratch_redis = _scratch("redis")
scratch_rabbitmq = _scratch("rabbitmq")
scratch_hazelcast = _scratch("hazelcast")
scratch_registry = _scratch("registry")


@pytest.fixture
def held(request):
    """Call ``held("what held, with its figures")`` at the end of a fault test."""
    said: list[str] = []
    yield said.append
    failed = getattr(request.node, "rep_call", None)
    ok = failed is not None and failed.passed
    OUTCOMES.append((request.node.name, said[-1] if said else "did not hold", ok))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.rep_call = report
    return report


def pytest_terminal_summary(terminalreporter):
    if not OUTCOMES:
        return
    ok = sum(1 for *_, passed in OUTCOMES if passed)
    for name, what, passed in OUTCOMES:
        terminalreporter.write_line(f"  {'held' if passed else 'FAILED'}  {name}: {what}")
    terminalreporter.write_line(
        f"fault suite: {len(OUTCOMES)} faults injected, {ok} held, {len(OUTCOMES) - ok} failed"
    )
