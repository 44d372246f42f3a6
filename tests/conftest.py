"""Shared fixtures. Every test runs with the Cloudflare and cfai settings removed from the
environment (like simonw/llm's autouse isolation), so a developer's real token can never leak
into a test or be used by one."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))      # shared helpers (payloads.py) for every folder

ISOLATED = ("CLOUDFLARE_ACCOUNT_ID", "CLOUDFLARE_API_TOKEN", "CFAI_BASE_URL", "CFAI_CASSETTE",
            "CFAI_PROTOCOL", "OPENAI_API_KEY", "CFAI_AUTOLOAD",
            "CFAI_LOCAL_RECORD", "CFAI_LOCAL_OWNER", "CFAI_LOCAL_TOKEN",   # a Jupyter server's
            "CFAI_CASSETTE_MODE", "CFAI_BACKEND", "CFAI_DISPLAY", "CFAI_NOTEBOOK_MODE",
            "JPY_SESSION_NAME", "CFAI_GATEWAY")


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch, tmp_path):
    for name in ISOLATED:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    yield


@pytest.fixture
def fake(fake_workers_ai):
    """The fake server, with the environment pointing at it."""
    for key, value in fake_workers_ai.env().items():
        os.environ[key] = value
    return fake_workers_ai


@pytest.fixture
def client(fake_workers_ai):
    c = fake_workers_ai.client()
    yield c
    c.close()


@pytest.fixture
def shell():
    """An InteractiveShell with the extension loaded; what a test left in it is cleaned up."""
    from IPython.core.interactiveshell import InteractiveShell
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "cfai_magic")
    yield ip
    ip.run_line_magic("unload_ext", "cfai_magic")
    for name in ("_cfai", "answer", "kernel"):
        ip.user_ns.pop(name, None)
    if hasattr(ip, "kernel"):
        del ip.kernel
    ip.rl_next_input = None
    for section in ("CfaiMagics", "Settings"):        # %config persists in the shell's config
        ip.config.pop(section, None)


@pytest.fixture
def interruptible():
    """SIGINT raises KeyboardInterrupt here, however pytest was started (a shell starts a
    background job with SIGINT ignored, and then Python never installs its handler)."""
    import signal
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)
