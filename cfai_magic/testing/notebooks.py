"""Reproducible notebooks: run a notebook against its cassette, for nbval or by hand.

Each notebook ``NAME.ipynb`` has its cassette at ``cassettes/NAME.json`` beside it. In
``replay`` mode the kernel gets no credentials and no network use; in ``record`` (or ``auto``)
mode it answers from the real backend (the embedded local model when no credentials are set)
and writes the cassette. Answers are shown once, when complete (``CFAI_DISPLAY=final``), which
is what nbval compares.

For nbval, in a ``conftest.py`` beside the notebooks::

    from cfai_magic.testing.notebooks import nbval_cassettes
    pytest_runtest_setup = nbval_cassettes()
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

SECRETS = ("CLOUDFLARE_ACCOUNT_ID", "CLOUDFLARE_API_TOKEN", "CFAI_BASE_URL")


def cassette_for(notebook) -> Path:
    notebook = Path(notebook)
    return notebook.parent / "cassettes" / f"{notebook.stem}.json"


def notebook_env(notebook, mode: str = "replay", cassette=None) -> dict:
    """Environment for a kernel running ``notebook``: its cassette, the mode, final display."""
    env: dict[str, str | None] = {
        "CFAI_CASSETTE": str(cassette or cassette_for(notebook)), "CFAI_CASSETTE_MODE": mode,
        "CFAI_DISPLAY": "final", "JPY_SESSION_NAME": str(Path(notebook).resolve())}
    if mode == "replay":
        env.update({name: None for name in SECRETS})       # prove no credentials are needed
    return env


def _apply(changes: dict) -> None:
    for k, v in changes.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@contextlib.contextmanager
def patched_environ(changes: dict):
    """Set (or, for None, remove) environment variables; restore them afterwards."""
    old = {k: os.environ.get(k) for k in changes}
    try:
        _apply(changes)
        yield
    finally:
        _apply(old)


def execute(notebook, mode: str = "replay", cassette=None, timeout: int = 300):
    """Run a notebook top to bottom (nbclient); returns the executed notebook node."""
    import nbformat
    from nbclient import NotebookClient
    notebook = Path(notebook)
    nb = nbformat.read(notebook, as_version=4)
    with patched_environ(notebook_env(notebook, mode, cassette)):
        # the kernel's own notes (TCP without encryption on loopback) are not the notebook's
        NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                       record_timing=False, extra_arguments=["--IPKernelApp.log_level=ERROR"],
                       resources={"metadata": {"path": str(notebook.parent)}}).execute()
    return nb


def nbval_cassettes(mode: str | None = None):
    """A ``pytest_runtest_setup`` hook: before each notebook's kernel starts, point it at the
    notebook's cassette (mode from CFAI_NOTEBOOK_MODE, default replay)."""
    import pytest           # here, not at the top: the demo runs notebooks without pytest
    state = {"notebook": None, "patch": None}

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(item):
        notebook = getattr(item.parent, "fspath", None)
        if notebook is None or not str(notebook).endswith(".ipynb") \
                or state["notebook"] == str(notebook):
            return
        if state["patch"] is not None:
            state["patch"].__exit__(None, None, None)
        state["notebook"] = str(notebook)
        chosen = mode or os.environ.get("CFAI_NOTEBOOK_MODE", "replay")
        state["patch"] = patched_environ(notebook_env(notebook, chosen))
        state["patch"].__enter__()

    return pytest_runtest_setup
