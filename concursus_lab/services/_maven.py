"""Resolve a server's jars from Maven Central with Maven, once, and cache the classpath.

The pom files beside this module pin each server's version. The first call runs
``mvn dependency:build-classpath`` (which downloads into ``~/.m2`` as usual); the classpath
is then cached in the service's state folder with the pom's digest, so later starts need
neither Maven nor the network as long as every jar is still there.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from concursus_lab.exceptions import ServiceError

DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
"""Pinned so that a fresh machine resolves the same plugin every time."""

MAVEN_TIMEOUT_S = 1200.0
_MAVEN_JVM = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


def _digest(pom: Path) -> str:
    return hashlib.sha256(pom.read_bytes()).hexdigest()


def cached_classpath(pom: Path, cache: Path) -> list[Path] | None:
    """The cached classpath when it was made from this pom and every jar still exists."""
    try:
        lines = cache.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    if not lines or lines[0] != f"# pom sha256 {_digest(pom)}":
        return None
    jars = [Path(line) for line in lines[1:] if line.strip()]
    if not jars or not all(jar.is_file() for jar in jars):
        return None
    return jars


def resolve(
    pom: Path,
    workdir: Path,
    *,
    say: Callable[[str], None] | None = None,
) -> list[Path]:
    """The jars of ``pom``'s dependencies, resolving them with Maven on first use.

    Parameters
    ----------
    pom
        A pom listing the server artifact (and any logging binding) as dependencies.
    workdir
        The service's state folder: the pom copy, Maven's output and the cache go here.
    say
        Called with a progress line when Maven has to run (it may download ~100 MB).

    Returns
    -------
    list of Path
        Absolute paths of the jars, in Maven's classpath order.

    Raises
    ------
    ServiceError
        When ``mvn`` is missing or fails; the message holds the tail of its output.
    """
    cache = workdir / "classpath.txt"
    jars = cached_classpath(pom, cache)
    if jars is not None:
        return jars

    mvn = shutil.which("mvn")
    if mvn is None:
        raise ServiceError(
            "Maven (`mvn`) is not on PATH, and the server jars have not been resolved yet "
            f"(no valid {cache}). Install Maven (Debian: `apt-get install maven`) and retry."
        )
    build = workdir / "maven"
    build.mkdir(parents=True, exist_ok=True)
    pom_copy = build / "pom.xml"
    shutil.copyfile(pom, pom_copy)
    output = build / "classpath.raw"
    output.unlink(missing_ok=True)
    command = [
        mvn,
        "-B",
        "-q",
        "-f",
        str(pom_copy),
        f"{DEPENDENCY_PLUGIN}:build-classpath",
        f"-Dmdep.outputFile={output}",
    ]
    if say is not None:
        say(f"resolving {pom.name} with Maven (first use; downloads into ~/.m2)...")
    started = time.monotonic()
    # Maven's own JVM: C1 only saves ~30% of its CPU; the caller's MAVEN_OPTS come last and win.
    env = dict(os.environ)
    env["MAVEN_OPTS"] = f"{_MAVEN_JVM} {env.get('MAVEN_OPTS', '')}".strip()
    try:
        done = subprocess.run(
            command,
            cwd=build,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=MAVEN_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ServiceError(
            f"Maven did not finish resolving {pom.name} within {MAVEN_TIMEOUT_S:.0f} s; check "
            f"that Maven Central is reachable and retry: {' '.join(command)}"
        ) from exc
    if done.returncode != 0 or not output.is_file():
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-30:])
        raise ServiceError(
            f"Maven could not resolve {pom.name} (exit code {done.returncode}). Check that "
            f"Maven Central is reachable, then retry. Command: {' '.join(command)}\n{tail}"
        )
    jars = [Path(p) for p in output.read_text(encoding="utf-8").strip().split(os.pathsep) if p]
    missing = [str(jar) for jar in jars if not jar.is_file()]
    if not jars or missing:
        raise ServiceError(
            f"Maven reported a classpath for {pom.name} with missing jars {missing[:3]}; "
            f"delete {cache} and retry."
        )
    partial = cache.with_suffix(".tmp")
    partial.write_text(
        f"# pom sha256 {_digest(pom)}\n" + "".join(f"{jar}\n" for jar in jars), encoding="utf-8"
    )
    partial.replace(cache)
    if say is not None:
        size = sum(jar.stat().st_size for jar in jars) / 1e6
        say(f"resolved {len(jars)} jars ({size:.0f} MB) in {time.monotonic() - started:.1f} s")
    return jars
