"""The embedded default: kernels with no Cloudflare credentials share one local backend."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "kernel"))
from kernelkit import Kernel, displays, stdout

from cfai_magic.local import runtime


def serve_processes():
    """Local backends started for this test's runtime directory (from /proc)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                args = f.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        line = " ".join(args)
        if "cfai_magic.local serve" in line and os.environ["JUPYTER_RUNTIME_DIR"] in line:
            found.append(int(pid))
    return found


@pytest.fixture
def kernels(tmp_path):
    env = {"JUPYTER_RUNTIME_DIR": os.environ["JUPYTER_RUNTIME_DIR"]}
    ks = [Kernel(env, cwd=str(tmp_path)) for _ in range(2)]
    yield ks
    for k in ks:
        k.close()
    runtime.stop_backend()


def test_second_kernel_reuses_the_backend(kernels):
    first, second = kernels
    first.run("%load_ext cfai_magic")
    messages, reply = first.run("%%cfai --max-tokens 24 --seed 1\nTell me a story")
    assert reply["content"]["status"] == "ok", reply["content"]
    final = displays(messages)[-1]["content"]
    assert "No Cloudflare credentials: answering with the embedded local model" in \
        final["data"]["text/plain"]
    assert "· local (gemma-3-270m-q4_k_m)" in final["data"]["text/plain"]
    assert final["metadata"]["cfai"]["served_by"] == "gemma-3-270m-q4_k_m"
    record = runtime.read_record()
    assert record and runtime.pid_alive(record["pid"])
    assert oct(runtime.record_path().stat().st_mode & 0o777) == "0o600"
    for suffix in (".lock", ".log"):                   # they were 0644
        assert oct(runtime.record_path().with_suffix(suffix).stat().st_mode & 0o777) == "0o600"
    with open(f"/proc/{record['pid']}/cmdline", "rb") as f:
        assert record["token"].reveal().encode() not in f.read()   # ps shows command lines

    second.run("%load_ext cfai_magic")
    messages, reply = second.run("%%cfai --max-tokens 24 --seed 1\nTell me a story")
    assert reply["content"]["status"] == "ok", reply["content"]
    assert runtime.read_record()["pid"] == record["pid"]
    assert len(serve_processes()) == 1

    # the notice is said once per kernel
    messages, _ = first.run("%%cfai --max-tokens 8\nAgain")
    assert "No Cloudflare credentials" not in displays(messages)[-1]["content"]["data"]["text/plain"]


def test_backend_switch(kernels, fake_workers_ai):
    k = kernels[0]
    k.run("%load_ext cfai_magic")
    messages, _ = k.run(f"%cfai backend {fake_workers_ai.url}")
    assert stdout(messages) == f"Backend: {fake_workers_ai.url}\n"
    messages, reply = k.run("%%cfai\nhi")
    assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "ConfigError"
    k.run(f"import os; os.environ.update({fake_workers_ai.env()!r})")
    messages, reply = k.run("%%cfai\nhi")
    assert reply["content"]["status"] == "ok" and fake_workers_ai.last.body["messages"]
    messages, _ = k.run("%cfai backend cloudflare")
    assert stdout(messages) == "Backend: cloudflare\n"
