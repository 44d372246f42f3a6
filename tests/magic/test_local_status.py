"""Which local backend is which: `cfai-local status` lists every one this user runs and marks
the one this environment would use; `%cfai backend` says which one a kernel uses."""
import os
import socket
import subprocess
import sys

from cfai_magic.config import Secret
from cfai_magic.local import runtime
from shellkit import run


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def record(path, model="gemma-3-270m-q4_k_m"):
    """A record naming this test's process (alive, started when it says): a live backend to
    status, one that does not answer (nothing listens at its port)."""
    runtime.write_record(path, {"url": f"http://127.0.0.1:{closed_port()}/client/v4",
                                "token": Secret("t0ken-for-the-test"), "pid": os.getpid(),
                                "started": runtime.started(os.getpid()), "model": model})


def status(tmp_path, record_env=None):
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path)}
    env.pop(runtime.RECORD_ENV, None)
    if record_env:
        env[runtime.RECORD_ENV] = str(record_env)
    return subprocess.run([sys.executable, "-m", "cfai_magic.local", "status"], env=env,
                          capture_output=True, text=True, timeout=60)


def test_status_lists_every_backend_and_marks_the_one_used_here(tmp_path):
    server = tmp_path / "cfai-local-server-4242.json"
    record(tmp_path / runtime.RECORD)
    record(server)
    record(tmp_path / "cfai-demo-77.json", model="evil\x1b]0;pwned\x07\x1b[2J")
    (tmp_path / "cfai-local-server-999999.json").write_text('{"pid": 999999, "url": "x"}')
    out = status(tmp_path, record_env=server)
    lines = out.stdout.splitlines()
    assert out.returncode == 0, out.stdout + out.stderr
    assert lines[0].startswith("* Jupyter server 4242's own (for its kernels, stopped with it): "
                               "http://127.0.0.1:")
    assert any(line.startswith("  this machine's shared one") for line in lines)
    assert any(line.startswith("  cfai-demo 77's (for its JupyterLab") for line in lines)
    assert "999999" not in out.stdout                    # its process is gone: not listed
    assert all("not answering" in line for line in lines[:3])
    assert lines[-1] == "* the one this environment uses"
    assert "t0ken" not in out.stdout
    assert "\x1b" not in out.stdout and "\x07" not in out.stdout    # through the door


def test_status_says_what_would_start_when_none_runs(tmp_path):
    out = status(tmp_path)
    assert out.returncode == 1
    assert out.stdout.strip() == (
        "no local backend is running; this environment would start this machine's shared one "
        f"(for kernels with no Jupyter server of cfai_magic) ({tmp_path / runtime.RECORD})")


def test_backend_line_names_the_local_backend_of_this_kernel(shell, tmp_path, monkeypatch):
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path))
    server = tmp_path / "cfai-local-server-4242.json"
    monkeypatch.setenv(runtime.RECORD_ENV, str(server))
    out = run(shell, "%cfai backend local").stdout.splitlines()
    assert out == ["Backend: local",
                   "Local model: Jupyter server 4242's own (for its kernels, stopped with it) "
                   "(cfai-local status shows whether it runs, and every other one)"]
    monkeypatch.delenv(runtime.RECORD_ENV)
    [_, line] = run(shell, "%cfai backend").stdout.splitlines()
    assert line.startswith("Local model: this machine's shared one")
    run(shell, "%cfai backend auto")
