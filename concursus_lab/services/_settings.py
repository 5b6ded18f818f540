"""Where the local services keep their files, which ports they use, and which Java runs them.

Everything here is read at call time from the environment, so a test or a shell can point a
run somewhere else without touching code.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from concursus_lab.exceptions import ServiceError

HOST = "127.0.0.1"
"""Every service listens on the loopback address only."""

SERVICES_DIR_ENV = "CONCURSUS_LAB_SERVICES_DIR"


def checkout_root() -> Path | None:
    """The source checkout holding this package, or None for an installed copy.

    It is the folder above the package that holds ``pyproject.toml``.
    """
    root = Path(__file__).resolve().parents[2]
    if (root / "pyproject.toml").is_file() and (root / "concursus_lab").is_dir():
        return root
    return None


def services_root() -> Path:
    """The folder holding one state folder per service.

    ``$CONCURSUS_LAB_SERVICES_DIR`` when set, else ``<checkout>/.services`` (git ignores it),
    else ``~/.cache/concursus-lab/services``.
    """
    configured = os.environ.get(SERVICES_DIR_ENV, "").strip()
    if configured:
        return Path(configured).expanduser().resolve()
    root = checkout_root()
    if root is not None:
        return root / ".services"
    return Path.home() / ".cache" / "concursus-lab" / "services"


def state_dir(name: str) -> Path:
    """The folder holding one service's data, logs, pid file, config and classpath cache."""
    return services_root() / name


def port(env: str, default: int) -> int:
    """A TCP port, from the environment variable ``env`` when it is set."""
    raw = os.environ.get(env, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if not 0 < value < 65536:
        raise ServiceError(
            f"{env}={raw!r} is not a TCP port; set it to a number from 1 to 65535 or unset it "
            f"to use {default}."
        )
    return value


def java() -> str:
    """The ``java`` executable: ``$JAVA_HOME/bin/java`` when set, else the one on PATH."""
    home = os.environ.get("JAVA_HOME", "").strip()
    if home:
        candidate = Path(home) / "bin" / "java"
        if candidate.is_file():
            return str(candidate)
    found = shutil.which("java")
    if found is None:
        raise ServiceError(
            "Java was not found (no $JAVA_HOME/bin/java, no `java` on PATH); the local services "
            "need Java 17: install it (Debian: `apt-get install openjdk-17-jre-headless`) or "
            "set JAVA_HOME."
        )
    return found
