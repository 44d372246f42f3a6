"""JupyterLab in headless Chromium (Debian's, driven by Playwright), against FakeWorkersAI.

The suite skips, with one line saying why, when Playwright or Chromium is missing
(tests/run.sh installs both when it can).
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from cfai_magic.testing import FakeWorkersAI

CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"]
TOKEN = "e2e-lab-token"
ARTIFACTS = Path(os.environ.get("CFAI_E2E_ARTIFACTS",
                                Path(__file__).resolve().parents[2] / "e2e-artifacts"))


def chromium_path():
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def pytest_collection_modifyitems(items):
    for item in items:
        if "e2e" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def chromium():
    try:
        import playwright  # noqa: F401
    except ImportError:
        pytest.skip("e2e: Playwright is not installed (pip install -e '.[e2e]')")
    path = chromium_path()
    if path is None:
        pytest.skip("e2e: no Chromium on this machine (apt-get install chromium)")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def fake():
    with FakeWorkersAI() as server:
        yield server


@pytest.fixture(scope="session")
def lab(chromium, fake, tmp_path_factory):
    """`jupyter lab` on 127.0.0.1 with a token, a temporary root and settings, no browser."""
    root = tmp_path_factory.mktemp("lab-root")
    home = tmp_path_factory.mktemp("lab-home")
    port = free_port()
    env = {**os.environ, **fake.env(),
           "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_RUNTIME_DIR": str(home / "rt"),
           "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces")}
    notify = home / "settings" / "@jupyterlab" / "apputils-extension"
    notify.mkdir(parents=True)
    (notify / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
    notebooks = home / "settings" / "@jupyterlab" / "notebook-extension"
    notebooks.mkdir(parents=True)          # every cell in the page, so DOM checks see them all
    (notebooks / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    log = open(home / "lab.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
         f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={root}", "--allow-root"],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{base}/api/status", params={"token": TOKEN}, timeout=1).ok:
                break
        except requests.RequestException:
            pass
        if proc.poll() is not None:
            raise RuntimeError((home / "lab.log").read_text()[-3000:])
        time.sleep(0.2)
    else:
        proc.terminate()
        raise RuntimeError("JupyterLab did not start: " + (home / "lab.log").read_text()[-3000:])
    yield {"url": base, "root": root}
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def browser(chromium):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="session")
def artifacts():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield ARTIFACTS
    print(f"\ne2e screenshots: {ARTIFACTS}")


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    yield pg
    context.close()
