"""The local services manager against the real servers: no mocks.

The module starts what it needs itself (``ensure`` is a no-op when the server already answers)
and leaves the servers running, as the test command expects.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from concursus_lab import services
from concursus_lab.exceptions import ServiceError


def _ensure(name: str) -> services.ServiceStatus:
    try:
        services.ensure(name)
    except ServiceError as exc:
        pytest.fail(
            f"{name} could not be started: {exc}\nStart it by hand with "
            f"`concursus-lab services start {name}`; see `concursus-lab services logs {name}`."
        )
    (status,) = [s for s in services.status() if s.name == name]
    return status


@pytest.fixture(scope="module")
def cassandra() -> services.ServiceStatus:
    return _ensure("cassandra")


@pytest.fixture(scope="module")
def kafka() -> services.ServiceStatus:
    return _ensure("kafka")


@pytest.fixture(scope="module")
def redis() -> services.ServiceStatus:
    return _ensure("redis")


@pytest.fixture(scope="module")
def rabbitmq() -> services.ServiceStatus:
    return _ensure("rabbitmq")


@pytest.fixture(scope="module")
def hazelcast() -> services.ServiceStatus:
    return _ensure("hazelcast")


@pytest.fixture(scope="module")
def registry() -> services.ServiceStatus:
    return _ensure("registry")


def _host_port(status: services.ServiceStatus) -> tuple[str, int]:
    host, port = status.address.rsplit(":", 1)
    return host, int(port)


# --- status and idempotence ---------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("cassandra", marks=pytest.mark.cassandra),
        pytest.param("kafka", marks=pytest.mark.kafka),
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("rabbitmq", marks=pytest.mark.rabbitmq),
        pytest.param("hazelcast", marks=pytest.mark.hazelcast),
        pytest.param("registry", marks=pytest.mark.registry),
    ],
)
def test_status_reports_running_with_pid(name: str, request: pytest.FixtureRequest) -> None:
    status: services.ServiceStatus = request.getfixturevalue(name)
    assert status.answering
    if status.state == "external":
        pytest.fail(f"a {name} not started from {status.state_dir} answers: {status}")
    assert status.running and status.pid is not None and status.pid > 0
    assert status.state == "running"
    assert status.log.is_file()
    assert f"pid {status.pid}" in str(status) and status.address in str(status)
    assert (status.state_dir / f"{name}.pid").read_text().strip() == str(status.pid)


@pytest.mark.cassandra
@pytest.mark.kafka
def test_start_is_idempotent(
    cassandra: services.ServiceStatus, kafka: services.ServiceStatus
) -> None:
    assert services.ensure("cassandra", "kafka", quiet=True) == []
    again = services.start("kafka", quiet=True)
    assert again.pid == kafka.pid
    assert again.startup_seconds is None


@pytest.mark.redis
def test_redis_runs_from_its_own_config_and_keeps_writes_across_a_restart(
    redis: services.ServiceStatus,
) -> None:
    import redis as redis_py

    host, port = _host_port(redis)
    client = redis_py.Redis(host=host, port=port, db=15)
    key = f"cl-test-{uuid.uuid4().hex[:8]}"
    try:
        client.sadd(key, b"kept")
        conf = redis.state_dir / "conf" / "redis.conf"
        assert client.config_get("maxmemory") == {"maxmemory": str(256 * 1024 * 1024)}
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        assert str(conf) in (Path(f"/proc/{redis.pid}/cmdline").read_bytes().decode())
        services.stop("redis", quiet=True)
        restarted = services.start("redis", quiet=True)
        assert restarted.pid != redis.pid and restarted.startup_seconds is not None
        assert client.smembers(key) == {b"kept"}
    finally:
        client.delete(key)
        client.close()


# --- the servers really work ----------------------------------------------------------------


@pytest.mark.cassandra
def test_cassandra_answers_cql(cassandra: services.ServiceStatus) -> None:
    from cassandra.cluster import Cluster

    host, port = _host_port(cassandra)
    cluster = Cluster([host], port=port, connect_timeout=20)
    session = cluster.connect()
    keyspace = f"services_test_{uuid.uuid4().hex[:8]}"
    try:
        (version,) = session.execute("SELECT release_version FROM system.local").one()
        assert version.startswith("5.0"), version
        session.execute(
            f"CREATE KEYSPACE {keyspace} WITH replication = "
            "{'class': 'SimpleStrategy', 'replication_factor': 1}"
        )
        session.execute(
            f"CREATE TABLE {keyspace}.event (aggregateId text, eventTimestamp timestamp, "
            "parameters map<text, text>, PRIMARY KEY (aggregateId, eventTimestamp))"
        )
        insert = session.prepare(
            f"INSERT INTO {keyspace}.event (aggregateId, eventTimestamp, parameters) "
            "VALUES (?, ?, ?)"
        )
        when = 1459420277981
        session.execute(insert, ("id1", when, {"name": '"Arthur Putey"', "age": "42"}))
        row = session.execute(
            f"SELECT aggregateId, eventTimestamp, parameters FROM {keyspace}.event "
            "WHERE aggregateId = 'id1'"
        ).one()
        assert row.aggregateid == "id1"
        stamp = row.eventtimestamp
        assert stamp.tzinfo is None  # a naive datetime meaning UTC, to the millisecond
        assert round(stamp.replace(tzinfo=dt.UTC).timestamp() * 1000) == when
        assert dict(row.parameters) == {"name": '"Arthur Putey"', "age": "42"}
    finally:
        session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}")
        cluster.shutdown()


@pytest.mark.kafka
def test_kafka_round_trip_with_idempotent_producer(kafka: services.ServiceStatus) -> None:
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import NewTopic

    topic = f"services-test-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=kafka.address, request_timeout_ms=30000)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
        (described,) = admin.describe_topics([topic])
        assert len(described["partitions"]) == 3

        base = 1_700_000_000_000
        sent = {
            f"aggregate-{i}".encode(): bytes(range(256)) + f"event {i}".encode() for i in range(30)
        }
        producer = KafkaProducer(
            bootstrap_servers=kafka.address, enable_idempotence=True, acks="all"
        )
        futures = [
            producer.send(topic, key=key, value=value, timestamp_ms=base + i * 1000)
            for i, (key, value) in enumerate(sent.items())
        ]
        producer.flush(timeout=30)
        metadata = [future.get(timeout=30) for future in futures]
        producer.close()
        assert {m.partition for m in metadata} == {0, 1, 2}

        partitions = [TopicPartition(topic, p) for p in range(3)]
        consumer = KafkaConsumer(
            bootstrap_servers=kafka.address,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        try:
            consumer.assign(partitions)
            consumer.seek_to_beginning(*partitions)
            received: dict[bytes, bytes] = {}
            deadline = time.monotonic() + 60
            while len(received) < len(sent) and time.monotonic() < deadline:
                for records in consumer.poll(timeout_ms=1000).values():
                    received.update({r.key: r.value for r in records})
            assert received == sent

            ends = consumer.end_offsets(partitions)
            assert sum(ends.values()) == len(sent)
            middle = base + 15 * 1000
            found = consumer.offsets_for_times({tp: middle for tp in partitions})
            hits = [hit for hit in found.values() if hit is not None]
            assert hits and all(hit.timestamp >= middle for hit in hits)
        finally:
            consumer.close()
    finally:
        admin.delete_topics([topic])
        admin.close()


# --- stop only ever ends our own JVM --------------------------------------------------------


@pytest.fixture
def scratch_services(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty services folder, so the running servers are never touched."""
    monkeypatch.setenv("CONCURSUS_LAB_SERVICES_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(["sleep", "300"])
    try:
        yield process
    finally:
        process.kill()
        process.wait()


def test_stop_refuses_a_pid_that_is_not_ours(
    scratch_services: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    pid_file = scratch_services / "kafka" / "kafka.pid"
    pid_file.parent.mkdir()
    pid_file.write_text(f"{sleeper.pid}\n")

    with pytest.raises(ServiceError) as refused:
        services.stop("kafka", quiet=True)

    message = str(refused.value)
    assert f"not stopping pid {sleeper.pid}" in message
    assert "sleep 300" in message and "nothing was killed" in message
    time.sleep(0.2)
    assert sleeper.poll() is None, "the unrelated process was killed"
    assert not pid_file.exists(), "the stale pid file should be removed"
    assert services.stop("kafka", quiet=True) is False


def test_stop_without_a_pid_file_reports_nothing_stopped(scratch_services: Path) -> None:
    assert services.stop("cassandra", quiet=True) is False
    cassandra = services.status()[0]
    assert cassandra.name == "cassandra"
    assert not cassandra.running and cassandra.pid is None
    assert cassandra.state_dir == scratch_services / "cassandra"


def test_unknown_service_name_is_an_error() -> None:
    with pytest.raises(ServiceError, match="unknown service 'zookeeper'"):
        services.start("zookeeper")


@pytest.mark.kafka
def test_a_jvm_that_dies_during_start_up_is_reported_with_its_log(
    kafka: services.ServiceStatus,
    scratch_services: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A second Kafka in a scratch folder, on free ports, whose storage looks formatted but is
    # not: the JVM exits during start-up and start() must say so with the log's tail.
    state = scratch_services / "kafka"
    (state / "data").mkdir(parents=True)
    shutil.copy(kafka.state_dir / "classpath.txt", state / "classpath.txt")  # no Maven run
    (state / "data" / "meta.properties").write_text("version=1\nnode.id=7\n")
    monkeypatch.setenv("CONCURSUS_LAB_KAFKA_PORT", str(_free_port()))
    monkeypatch.setenv("CONCURSUS_LAB_KAFKA_CONTROLLER_PORT", str(_free_port()))

    with pytest.raises(ServiceError) as died:
        services.start("kafka", timeout=120, quiet=True)

    message = str(died.value)
    assert "during start-up" in message and str(state / "kafka.log") in message
    assert len(message.splitlines()) > 5, "the message should hold the log's last lines"
    assert not (state / "kafka.pid").exists()
    assert services.status()[1].running is False


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_cli_status_lists_every_service(scratch_services: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "concursus_lab", "services", "status"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == [
        "cassandra", "kafka", "redis", "rabbitmq", "hazelcast", "registry",
    ]
    # Nothing was started from the scratch folder (the real servers may answer: "external").
    assert all("pid -" in line and str(scratch_services) in line for line in lines)


@pytest.mark.cassandra
@pytest.mark.kafka
@pytest.mark.redis
@pytest.mark.rabbitmq
@pytest.mark.hazelcast
@pytest.mark.registry
def test_cli_status_quiet_exit_code_says_every_service_answers(
    cassandra: services.ServiceStatus,
    kafka: services.ServiceStatus,
    redis: services.ServiceStatus,
    rabbitmq: services.ServiceStatus,
    hazelcast: services.ServiceStatus,
    registry: services.ServiceStatus,
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "concursus_lab", "services", "status", "--quiet"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stdout) == (0, "")


# --- one service needs only its own programs ------------------------------------------------


def _programs_without_redis(tmp_path: Path, *, broken: bool) -> dict[str, str]:
    """An environment whose PATH has no working redis-server: none at all, or one that
    cannot run (its interpreter does not exist)."""
    import os

    folder = tmp_path / "bin"
    folder.mkdir()
    if broken:
        program = folder / "redis-server"
        program.write_text("#!/no/such/interpreter\n")
        program.chmod(0o755)
    return {**os.environ, "PATH": str(folder)}


@pytest.mark.cassandra
@pytest.mark.parametrize("broken", [False, True], ids=["no-redis-server", "broken-redis-server"])
def test_starting_cassandra_needs_no_other_service_program(
    cassandra: services.ServiceStatus, tmp_path: Path, broken: bool
) -> None:
    env = _programs_without_redis(tmp_path, broken=broken)
    done = subprocess.run(
        [sys.executable, "-m", "concursus_lab", "services", "start", "cassandra"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"cassandra {cassandra.version} already running on {cassandra.address}" in done.stdout
    assert "redis" not in done.stdout + done.stderr

    status = subprocess.run(
        [sys.executable, "-m", "concursus_lab", "services", "status", "cassandra"],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )
    assert status.returncode == 0, status.stderr
    assert status.stdout.split()[:3] == ["cassandra", cassandra.version, "running"]

    # Redis itself is refused with what to install; a scratch services folder and a free
    # port, so that the shared Redis is never looked at.
    scratch = {
        **env,
        "CONCURSUS_LAB_SERVICES_DIR": str(tmp_path / "services"),
        "CONCURSUS_LAB_REDIS_PORT": str(_free_port()),
    }
    start = subprocess.run(
        [sys.executable, "-m", "concursus_lab", "services", "start", "redis"],
        capture_output=True, text=True, env=scratch, timeout=120, check=False,
    )
    assert start.returncode == 1
    if broken:
        assert "could not be run" in start.stderr and "Traceback" not in start.stderr
    else:
        assert "redis-server was not found on PATH" in start.stderr
        assert "apt-get install redis-server" in start.stderr
    listed = subprocess.run(
        [sys.executable, "-m", "concursus_lab", "services", "status", "redis"],
        capture_output=True, text=True, env=scratch, timeout=120, check=False,
    )
    assert listed.returncode == 1  # not answering
    assert listed.stdout.split()[:3] == ["redis", "missing", "stopped"]
