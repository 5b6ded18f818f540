"""A real JupyterLab on a free localhost port, and Debian's chromium driven by Playwright.

``lab``: a JupyterLab server (token, temporary root, config, runtime and settings folders)
serving the notebooks of :mod:`tests.browser.notebooks`, stopped by its pid at the end.
``browser``: headless ``/usr/bin/chromium`` (never a downloaded browser), launched with the
flags this closed network needs. ``page``: a fresh page that records every request URL, so a
test can assert that nothing left localhost. Screenshots go to ``test-artifacts/``; with
``CONCURSUS_LAB_SCREENSHOTS=docs/img`` the README's are also copied there.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.lab import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_FLAGS,
    ROOT,
    Lab,
    Recorded,
    free_port,
    stop,
    wait_until_up,
)
from tests.browser.notebooks import write_notebooks


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """JupyterLab on 127.0.0.1 with a token, serving the browser-test notebooks."""
    base = tmp_path_factory.mktemp("jupyterlab")
    notebooks = base / "notebooks"
    write_notebooks(notebooks)
    ARTIFACTS.mkdir(exist_ok=True)
    log = ARTIFACTS / "jupyterlab.log"
    token = secrets.token_hex(16)
    port = free_port()
    env = dict(os.environ)
    for variable, folder in {
        "JUPYTER_CONFIG_DIR": "config",
        "JUPYTER_RUNTIME_DIR": "runtime",
        "JUPYTERLAB_SETTINGS_DIR": "settings",
        "JUPYTERLAB_WORKSPACES_DIR": "workspaces",
        "IPYTHONDIR": "ipython",
    }.items():
        (base / folder).mkdir()
        env[variable] = str(base / folder)
    for plugin, values in {
        # no news toast, no fetch
        "apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
        # every cell in the DOM and laid out, also those scrolled out of view
        "notebook-extension/tracker": {"windowingMode": "none"},
    }.items():
        path = base / "settings" / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    env.setdefault("CONCURSUS_LAB_SOURCE", str(ROOT / "data" / "sample"))
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={notebooks}",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
        "--ServerApp.terminals_enabled=False",
        *(["--allow-root"] if os.geteuid() == 0 else []),  # CI runs as root
    ]
    with log.open("w") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    running = Lab(f"http://127.0.0.1:{port}", token, notebooks, process, log)
    try:
        wait_until_up(running)
        yield running
    finally:
        stop(running)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Headless Debian chromium, driven by Playwright (no browser is downloaded)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"no chromium at {CHROMIUM}: the browser tests use Debian's package. Install it "
            "with `bash scripts/setup.sh --browser` (apt-get install chromium), or point "
            "$CONCURSUS_LAB_CHROMIUM at a chromium binary."
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def recorded() -> Recorded:
    """The URLs the page fixture's context requests."""
    return Recorded()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.failed_call = report.failed


@pytest.fixture
def page(browser, lab: Lab, recorded: Recorded, request: pytest.FixtureRequest) -> Iterator[object]:
    """A fresh page in a fresh context; every request URL lands in ``recorded``.

    When the test fails, the whole page is saved as test-artifacts/failed-TEST.png. At the
    end the server's kernels are stopped.
    """
    context = browser.new_context(viewport={"width": 1400, "height": 2200})
    context.on("request", lambda request: recorded.urls.append(request.url))
    page = context.new_page()
    page.on("websocket", lambda ws: recorded.urls.append(ws.url))
    try:
        yield page
    finally:
        if getattr(request.node, "failed_call", False):
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"failed-{request.node.name}.png"))
        context.close()
        lab.shutdown_kernels()
