"""Which Java runs the schema registry: one of 21 or newer, found where systems keep them."""

from __future__ import annotations

from pathlib import Path

import pytest

from concursus_lab.exceptions import ServiceError
from concursus_lab.services import _registry


def _jdk(root: Path, name: str, version: str) -> Path:
    home = root / name
    (home / "bin").mkdir(parents=True)
    (home / "bin" / "java").write_text("#!/bin/sh\n")
    (home / "bin" / "java").chmod(0o755)
    (home / "release").write_text(f'IMPLEMENTOR="x"\nJAVA_VERSION="{version}"\n')
    return home


@pytest.fixture
def jvms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(_registry, "JVM_FOLDERS", (str(tmp_path),))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.delenv(_registry.JAVA_ENV, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    return tmp_path


def test_the_release_file_says_the_version(tmp_path: Path) -> None:
    assert _registry.java_version(_jdk(tmp_path, "a", "25.0.3")) == 25
    assert _registry.java_version(_jdk(tmp_path, "b", "1.8.0_402")) == 8
    assert _registry.java_version(tmp_path / "none") is None


def test_the_newest_installed_java_is_taken_when_none_is_chosen(jvms: Path) -> None:
    _jdk(jvms, "java-17-openjdk-amd64", "17.0.15")
    newest = _jdk(jvms, "temurin-25-jdk-amd64", "25.0.3")
    _jdk(jvms, "java-21-openjdk-amd64", "21.0.7")
    assert _registry.java() == str(newest / "bin" / "java")


def test_a_chosen_java_that_is_new_enough_wins(jvms: Path, monkeypatch) -> None:
    _jdk(jvms, "temurin-25-jdk-amd64", "25.0.3")
    chosen = _jdk(jvms, "java-21-openjdk-amd64", "21.0.7")
    monkeypatch.setenv("JAVA_HOME", str(chosen))
    assert _registry.java() == str(chosen / "bin" / "java")
    too_old = _jdk(jvms, "java-17-openjdk-amd64", "17.0.15")
    monkeypatch.setenv("JAVA_HOME", str(too_old))  # the services' Java 17: not for Apicurio
    assert _registry.java().endswith("temurin-25-jdk-amd64/bin/java")


def test_only_java_17_is_an_error_that_says_what_to_install(jvms: Path) -> None:
    _jdk(jvms, "java-17-openjdk-amd64", "17.0.15")
    with pytest.raises(ServiceError) as caught:
        _registry.java()
    message = str(caught.value)
    assert "needs Java 21 or newer" in message and "Java 17 at" in message
    assert "apt-get install openjdk-21-jre-headless" in message
    assert _registry.JAVA_ENV in message
