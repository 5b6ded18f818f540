"""Apicurio Registry 3.3.3, a schema registry that speaks Confluent's REST API, on loopback.

The registry is the ``io.apicurio:apicurio-registry-app:3.3.3`` tar.gz (classifier ``all``)
from Maven Central: a Quarkus fast-jar, unpacked once into the state folder and started with
``java -jar quarkus-run.jar``. Its storage is the default in-memory H2 database, so a restart
empties it, as a test wants. Clients reach Confluent's API at
``http://127.0.0.1:8081/apis/ccompat/v7`` (port ``CONCURSUS_LAB_REGISTRY_PORT``); Quarkus's
management interface (health) is moved off its default 0.0.0.0:9000 to 127.0.0.1:8082
(``CONCURSUS_LAB_REGISTRY_MANAGEMENT_PORT``), so two registries never clash there.

Apicurio 3 needs Java 21 or newer (Java 17 stops at once with UnsupportedClassVersionError),
while the other services run on Java 17: :func:`java` looks for a newer one where the system
keeps its Java installations (``/usr/lib/jvm`` and the like). Readiness is ``GET
/apis/ccompat/v7/subjects`` answering 200.
"""

from __future__ import annotations

import os
import re
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path

from concursus_lab.exceptions import ServiceError
from concursus_lab.services import _maven, _settings
from concursus_lab.services._spec import Service, http_ready

HEAP = "384m"
#: The oldest Java that runs Apicurio Registry 3.
JAVA_MIN = 21
#: The Confluent-compatible API under the registry's address.
API = "/apis/ccompat/v7"
JAVA_ENV = "CONCURSUS_LAB_REGISTRY_JAVA_HOME"
#: Where systems keep their Java installations (Debian/Ubuntu/Fedora, other Linux, macOS).
JVM_FOLDERS = (
    "/usr/lib/jvm",
    "/usr/java",
    "/opt/java",
    "/Library/Java/JavaVirtualMachines",
)


def java_version(home: Path) -> int | None:
    """The feature version (17, 21, 25) of the Java installed at ``home``, from its ``release``
    file; None when there is no such file."""
    try:
        text = (home / "release").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    found = re.search(r'^JAVA_VERSION="(\d+)(?:\.(\d+))?', text, re.MULTILINE)
    if found is None:
        return None
    major = int(found.group(1))
    return int(found.group(2) or 0) if major == 1 else major


def _chosen() -> list[Path]:
    """Installations the user chose: the registry's own variable, ``$JAVA_HOME``, PATH's."""
    homes = [Path(h) for h in (os.environ.get(JAVA_ENV, ""), os.environ.get("JAVA_HOME", ""))]
    on_path = shutil.which("java")
    if on_path:
        homes.append(Path(on_path).resolve().parent.parent)
    return [h for h in homes if str(h) not in ("", ".")]


def _installed() -> list[Path]:
    """Installations where the system keeps them."""
    homes = []
    for folder in JVM_FOLDERS:
        try:
            found = sorted(Path(folder).iterdir())
        except OSError:
            continue
        homes += [h / "Contents" / "Home" if (h / "Contents").is_dir() else h for h in found]
    return homes


def java() -> str:
    """A ``java`` of version :data:`JAVA_MIN` or newer: the first of
    ``$CONCURSUS_LAB_REGISTRY_JAVA_HOME``, ``$JAVA_HOME`` and PATH's that is new enough, else
    the newest installed where the system keeps them."""
    seen: dict[Path, int] = {}
    for home in [*_chosen(), *_installed()]:
        version = java_version(home)
        if version is not None and (home / "bin" / "java").is_file():
            seen.setdefault(home, version)
    for home in _chosen():
        if seen.get(home, 0) >= JAVA_MIN:
            return str(home / "bin" / "java")
    newest = max(seen.items(), key=lambda hv: hv[1], default=None)
    if newest is not None and newest[1] >= JAVA_MIN:
        return str(newest[0] / "bin" / "java")
    found = "; ".join(f"Java {v} at {h}" for h, v in seen.items()) or "no Java installation"
    raise ServiceError(
        f"Apicurio Registry needs Java {JAVA_MIN} or newer, and this machine has {found} "
        f"(looked in $JAVA_HOME, PATH and {', '.join(JVM_FOLDERS)}). Install one (Debian: "
        f"`apt-get install openjdk-{JAVA_MIN}-jre-headless`, or a Temurin {JAVA_MIN}+), or set "
        f"{JAVA_ENV} to its folder."
    )


class Registry(Service):
    """Apicurio Registry 3.3.3 on 127.0.0.1 (Confluent API on 8081, management on 8082)."""

    name = "registry"
    pom_resource = "registry-pom.xml"
    main_class = "io.quarkus.bootstrap.runner.QuarkusEntryPoint"  # what quarkus-run.jar runs
    port_env = "CONCURSUS_LAB_REGISTRY_PORT"
    management_env = "CONCURSUS_LAB_REGISTRY_MANAGEMENT_PORT"

    @property
    def port(self) -> int:
        return _settings.port(self.port_env, 8081)

    @property
    def management_port(self) -> int:
        return _settings.port(self.management_env, 8082)

    @property
    def other_ports(self) -> dict[str, tuple[int, str]]:
        return {"management": (self.management_port, self.management_env)}

    @property
    def url(self) -> str:
        """The Confluent-compatible API's base URL."""
        return f"http://{self.address}{API}"

    @property
    def app(self) -> Path:
        """Where the fast-jar is unpacked (kept across starts; not data)."""
        return self.state / "app"

    def runtime(self, say: Callable[[str], None] | None) -> tuple[str, list[Path]]:
        return java(), _maven.resolve(self.pom, self.state, say=say)

    def configure(self, classpath: list[Path], java: str) -> None:
        """Unpack the tar.gz once (again only when the pinned artifact changes)."""
        (archive,) = classpath
        stamp = self.app / ".unpacked"
        wanted = f"{archive.name} {archive.stat().st_size}"
        if stamp.is_file() and stamp.read_text(encoding="utf-8") == wanted:
            return
        shutil.rmtree(self.app, ignore_errors=True)
        partial = self.state / "app.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        with tarfile.open(archive) as tar:
            tar.extractall(partial, filter="data")
        if not (partial / "quarkus-run.jar").is_file():
            raise ServiceError(
                f"{archive} holds no quarkus-run.jar; delete it from ~/.m2 and start again."
            )
        (partial / ".unpacked").write_text(wanted, encoding="utf-8")
        partial.replace(self.app)

    def jvm_options(self, classpath: list[Path]) -> list[str]:
        return [
            f"-Xmx{HEAP}",
            # C1 only (unless full_jit) and one GC thread: a faster start on two cores, as for
            # the other servers.
            *self.jit_options(),
            "-XX:+UseSerialGC",
            "-XX:+ExitOnOutOfMemoryError",
            "-XX:+PerfDisableSharedMem",
            f"-Dquarkus.http.host={self.host}",
            f"-Dquarkus.http.port={self.port}",
            f"-Dquarkus.management.host={self.host}",
            f"-Dquarkus.management.port={self.management_port}",
        ]

    def command(self, java: str, classpath: list[Path]) -> list[str]:
        jar = self.app / "quarkus-run.jar"
        return [java, self.marker, *self.jvm_options(classpath), "-jar", str(jar)]

    def probe(self, timeout: float) -> str:
        """``GET /apis/ccompat/v7/subjects``: 200 once the registry takes requests."""
        http_ready(self.host, self.port, f"{API}/subjects", timeout)
        return f"Confluent API at {self.url}"
