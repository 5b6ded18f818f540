"""What the browser tests share: a JupyterLab server's handle, request recording, screenshots."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("CONCURSUS_LAB_CHROMIUM", "/usr/bin/chromium")
#: Without the background-networking flags Chromium keeps calling Google's hosts, which a
#: closed network refuses; none of them changes what a page may load.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOCAL_HOSTS = {"127.0.0.1", "localhost"}


@dataclass
class Lab:
    """A running JupyterLab: its base URL, token, notebook folder and process."""

    url: str
    token: str
    root: Path
    process: subprocess.Popen
    log: Path

    def notebook(self, name: str) -> str:
        """The URL that opens notebook ``name`` alone (a reset workspace), logged in."""
        return f"{self.url}/lab/tree/{name}?reset&token={self.token}"

    def shutdown_kernels(self) -> None:
        """Stop every kernel the server runs (between tests, to keep memory down)."""
        for kernel in json.loads(self.api("/api/kernels")):
            self.api(f"/api/kernels/{kernel['id']}", method="DELETE")

    def api(self, path: str, method: str = "GET") -> bytes:
        """Call the server's REST API with the token."""
        request = urllib.request.Request(
            f"{self.url}{path}",
            method=method,
            headers={"Authorization": f"token {self.token}"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.read()


@dataclass
class Recorded:
    """Every URL a browser context asked for (HTTP requests and WebSockets)."""

    urls: list[str] = field(default_factory=list)

    def foreign(self) -> list[str]:
        """The URLs that went anywhere but localhost (data: and blob: stay in the page)."""
        from urllib.parse import urlsplit

        out = []
        for url in self.urls:
            parts = urlsplit(url)
            if parts.scheme in {"data", "blob", "about"}:
                continue
            if parts.hostname not in LOCAL_HOSTS:
                out.append(url)
        return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(lab: Lab, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if lab.process.poll() is not None:
            pytest.fail(
                f"JupyterLab exited with code {lab.process.returncode} before answering; "
                f"see {lab.log}:\n{lab.log.read_text()[-3000:]}"
            )
        try:
            json.loads(lab.api("/api/status"))
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
            time.sleep(0.5)
    pytest.fail(f"JupyterLab did not answer on {lab.url} within {timeout:.0f} s; see {lab.log}")


def stop(lab: Lab) -> None:
    """Shut the server down (it stops its kernels), then make sure its pid is gone."""
    with contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError):
        lab.api("/api/shutdown", method="POST")
    try:
        lab.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(lab.process.pid, signal.SIGTERM)  # its own session: the server's pid
        try:
            lab.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(lab.process.pid, signal.SIGKILL)
            lab.process.wait(timeout=10)


def save_screenshot(element, name: str, *, docs: bool = False) -> Path:
    """Screenshot ``element`` to test-artifacts/NAME.png.

    With ``docs=True`` and ``$CONCURSUS_LAB_SCREENSHOTS`` set (to ``docs/img`` to refresh
    the README's pictures), it is copied there too.
    """
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    element.screenshot(path=str(path))
    copy_to = os.environ.get("CONCURSUS_LAB_SCREENSHOTS")
    if copy_to and docs:
        target = Path(copy_to)
        target = target if target.is_absolute() else ROOT / target
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target / path.name)
    return path
