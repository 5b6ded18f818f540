"""Fixtures the integration modules share; servers come from tests/conftest.py."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest


@pytest.fixture
def topic(kafka_address):
    """A fresh topic name; the topic is deleted afterwards (by a new admin client, since
    a test may have restarted the broker)."""
    from kafka import KafkaAdminClient

    name = f"cl-test-{uuid.uuid4().hex[:12]}"
    yield name
    admin = KafkaAdminClient(bootstrap_servers=kafka_address)
    try:
        if name in admin.list_topics():
            admin.delete_topics([name])
    finally:
        admin.close()


# -- a real Pekko application's journal (tests/integration/pekko) ------------------------------

PEKKO_APP = Path(__file__).parent / "pekko"
MAVEN_TIMEOUT_S = 1200  # the first build downloads Pekko and its Cassandra plugin (~60 MB)
PEKKO_RUN_TIMEOUT_S = 600


@pytest.fixture(scope="session")
def pekko_app(tmp_path_factory) -> list[str]:
    """The command that runs the Pekko application, built by Maven from its sources here."""
    mvn, java = shutil.which("mvn"), shutil.which("java")
    if mvn is None or java is None:
        pytest.fail("Maven (`mvn`) and Java 17 are needed to build the Pekko application")
    build = tmp_path_factory.mktemp("pekko-app")
    shutil.copytree(PEKKO_APP, build, dirs_exist_ok=True)
    classpath = build / "classpath.txt"
    env = {**os.environ, "MAVEN_OPTS": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"}
    try:
        done = subprocess.run(
            [
                mvn,
                "-B",
                "-q",
                "-f",
                str(build / "pom.xml"),
                "compile",
                "dependency:build-classpath",
                f"-Dmdep.outputFile={classpath}",
            ],
            cwd=build,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=MAVEN_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"Maven did not build {PEKKO_APP} within {MAVEN_TIMEOUT_S} s")
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-30:])
        pytest.fail(f"Maven could not build {PEKKO_APP} (exit {done.returncode}):\n{tail}")
    jars = classpath.read_text().strip()
    return [
        java,
        "-Xmx384m",
        "-XX:TieredStopAtLevel=1",
        "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
        "-cp",
        f"{build / 'target' / 'classes'}:{jars}",
        "lab.pekko.Main",
    ]


@dataclass(frozen=True)
class PekkoJournal:
    """A journal the Pekko application wrote: its keyspace, URL and the states Pekko
    recovered for each persistence id (as the application printed them)."""

    keyspace: str
    url: str
    states: dict[str, dict]


@pytest.fixture(scope="session")
def pekko_journal(pekko_app, cassandra_address) -> PekkoJournal:
    """The application run once into a fresh keyspace; the keyspace is dropped afterwards."""
    host, port = cassandra_address.split(":")
    keyspace = f"cl_pekko_{uuid.uuid4().hex[:10]}"
    try:
        done = subprocess.run(
            [*pekko_app, host, port, keyspace],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=PEKKO_RUN_TIMEOUT_S,
            check=False,
        )
        if done.returncode != 0 or "DONE" not in done.stdout.splitlines():
            tail = "\n".join((done.stdout + done.stderr).splitlines()[-40:])
            pytest.fail(f"the Pekko application failed (exit {done.returncode}):\n{tail}")
        states = {}
        for line in done.stdout.splitlines():
            if line.startswith("STATE "):
                pid, text = line.removeprefix("STATE ").split(" ", 1)
                states[pid] = json.loads(text)
        yield PekkoJournal(keyspace, f"pekko+cassandra://{cassandra_address}/{keyspace}", states)
    finally:
        _drop_keyspace(cassandra_address, keyspace)


def _drop_keyspace(address: str, keyspace: str) -> None:
    from cassandra.cluster import Cluster

    host, port = address.split(":")
    cluster = Cluster([host], port=int(port), protocol_version=5)
    try:
        cluster.connect().execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)
    finally:
        cluster.shutdown()
