"""The servers run C1 only unless asked for their full JIT (`services start --full-jit`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from concursus_lab import services
from concursus_lab.services import _cli, _hazelcast, _kafka, _registry

C1_ONLY = "-XX:TieredStopAtLevel=1"
CLASSPATH = [Path("jamm-0.4.0.jar"), Path("cassandra-all-5.0.jar")]


@pytest.mark.parametrize("name", ["cassandra", "kafka", "hazelcast", "registry"])
def test_a_jvm_server_runs_c1_only_unless_asked_for_the_full_jit(name, tmp_path, monkeypatch):
    monkeypatch.setenv("CONCURSUS_LAB_SERVICES_DIR", str(tmp_path))
    c1 = services._service(name).jvm_options(CLASSPATH)
    full = services._service(name, full_jit=True).jvm_options(CLASSPATH)
    assert C1_ONLY in c1
    assert C1_ONLY not in full
    assert [o for o in c1 if o != C1_ONLY] == full  # nothing else changes


def test_the_cli_passes_full_jit_to_the_servers_it_starts(monkeypatch, capsys):
    asked = {}

    def ensure(*names, timeout, full_jit):
        asked.update(names=names, full_jit=full_jit)
        return list(names)

    monkeypatch.setattr(services, "ensure", ensure)
    monkeypatch.setattr(services, "status", lambda *names: [])
    import argparse

    parser = argparse.ArgumentParser()
    _cli.register(parser.add_subparsers())
    args = parser.parse_args(["services", "start", "cassandra", "--full-jit"])
    assert args.func(args) == 0
    assert asked == {"names": ("cassandra",), "full_jit": True}
    args = parser.parse_args(["services", "start", "cassandra"])
    args.func(args)
    assert asked["full_jit"] is False


def test_every_jvm_server_takes_its_jit_from_the_one_helper():
    for module in (_hazelcast, _kafka, _registry):
        assert C1_ONLY not in Path(module.__file__).read_text()
