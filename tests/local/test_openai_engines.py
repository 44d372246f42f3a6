"""Engines and clients nobody here wrote: the official ``openai`` package as a client of our
local backend, and llama-cpp-python's own OpenAI-compatible server as a backend of %%cfai."""
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "kernel"))
from kernelkit import Kernel, displays

from conftest import TOKEN

openai = pytest.importorskip("openai")
ASK = [{"role": "user", "content": "What is a cow?"}]
ENGINE_KEY = "engine-test-key-5c1f"


def roots(backend) -> list[str]:
    host = backend.url.rsplit("/client/v4", 1)[0]
    return [f"{host}/v1", f"{backend.url}/accounts/any/ai/v1"]


@pytest.mark.parametrize("which", [0, 1], ids=["v1", "cloudflare-v1"])
def test_the_openai_package_against_the_local_backend(backend, which):
    client = openai.OpenAI(base_url=roots(backend)[which], api_key=TOKEN, max_retries=0)
    whole = client.chat.completions.create(model="@local/gemma-3-270m", messages=ASK,
                                           max_tokens=16, seed=3, temperature=0)
    assert whole.object == "chat.completion"
    assert whole.choices[0].message.role == "assistant"
    assert whole.choices[0].message.content.strip()
    assert whole.choices[0].finish_reason in ("stop", "length")
    assert whole.usage.completion_tokens > 0 and whole.usage.prompt_tokens > 0

    chunks = list(client.chat.completions.create(
        model="@local/gemma-3-270m", messages=ASK, max_tokens=16, seed=3, temperature=0,
        stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content        # same seed, same answer
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == \
        whole.usage.completion_tokens
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] in ("stop", "length")
    assert "@local/gemma-3-270m" in [m.id for m in client.models.list()]


def test_the_openai_package_sees_our_errors(backend):
    wrong = openai.OpenAI(base_url=roots(backend)[0], api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        wrong.chat.completions.create(model="@local/gemma-3-270m", messages=ASK)
    right = openai.OpenAI(base_url=roots(backend)[0], api_key=TOKEN, max_retries=0)
    with pytest.raises(openai.BadRequestError) as info:
        right.chat.completions.create(model="no-such-model", messages=ASK)
    assert "No such model" in str(info.value)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent():
    """Runs in the child: SIGTERM when the test process dies, so no server outlives it."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)   # PR_SET_PDEATHSIG


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory, model):
    """``python -m llama_cpp.server`` on the bundled Gemma GGUF, on a free loopback port. Its
    API key goes in a 0600 config file, never on the command line. The base model continues
    the ``alpaca`` chat format well; under the format the engine picks by itself (``llama-2``)
    it answers nothing at all, which ``gemma-3-270m-llama2`` serves on purpose."""
    port = _free_port()
    folder = tmp_path_factory.mktemp("llama-server")
    config = folder / "server.json"
    fd = os.open(config, os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"host": "127.0.0.1", "port": port, "api_key": ENGINE_KEY,
                   "models": [{"model": model.path, "model_alias": alias, "chat_format": fmt,
                               "n_ctx": 2048, "n_threads": 2, "verbose": False}
                              for alias, fmt in (("gemma-3-270m", "alpaca"),
                                                 ("gemma-3-270m-llama2", "llama-2"))]}, f)
    log = open(folder / "server.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--config_file",
                             str(config)], stdout=log, stderr=subprocess.STDOUT,
                            preexec_fn=_die_with_parent)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while True:
        assert proc.poll() is None, (folder / "server.log").read_text()[-2000:]
        try:
            if requests.get(f"{url}/models", timeout=2,
                            headers={"Authorization": f"Bearer {ENGINE_KEY}"}).ok:
                break
        except requests.ConnectionError:
            pass
        assert time.monotonic() < deadline, "llama_cpp.server did not start in 120 s"
        time.sleep(0.2)
    assert ENGINE_KEY not in " ".join(proc.args)
    yield url
    proc.terminate()
    proc.wait(10)
    log.close()


@pytest.fixture
def engine_kernel(llama_server, tmp_path):
    k = Kernel({"CFAI_PROTOCOL": "openai", "CFAI_BASE_URL": llama_server,
                "OPENAI_API_KEY": ENGINE_KEY}, cwd=str(tmp_path))
    yield k
    k.close()


def test_cfai_cells_on_llama_cpp_server(engine_kernel, llama_server):
    k = engine_kernel
    k.run("%load_ext cfai_magic")
    messages, reply = k.run("%%cfai -m gemma-3-270m --max-tokens 24 --temperature 0\n"
                            "What is a cow?")
    assert reply["content"]["status"] == "ok", reply["content"]
    shown = displays(messages)
    final = shown[-1]["content"]
    answer = eval(k.value("_cfai"))
    assert answer.strip()
    port = llama_server.split(":")[2].split("/")[0]
    footer = final["data"]["text/plain"].splitlines()[-1]
    assert footer.startswith("✓ gemma-3-270m · ") and footer.endswith(f"127.0.0.1:{port}")
    assert " tokens · " in footer             # counted: this engine streams no usage
    assert final["metadata"]["cfai"]["params"]["max_tokens"] == 24
    # the conversation continues, the whole answer at once this time
    messages, reply = k.run("%%cfai -m gemma-3-270m --max-tokens 16 --no-stream\nAnd a horse?")
    assert reply["content"]["status"] == "ok", reply["content"]
    assert eval(k.value("_cfai")).strip()
    assert k.value("len(_cfai_answer.request['messages'])") == "3"
    assert int(k.value("_cfai_answer.usage['completion_tokens']")) > 0
    # the engine's own empty answer (its default template) is one line, and no turn
    _, reply = k.run("%%cfai -m gemma-3-270m-llama2 --chat probe --temperature 0 --max-tokens 16\n"
                     "What is a cow?")
    assert reply["content"]["ename"] == "EmptyAnswer"
    assert "returned no text (finish reason: stop)" in reply["content"]["traceback"][0]
    assert k.value("len(__import__('cfai_magic').session.current().store.get().turns)") == "2"
    everything = json.dumps([m["content"] for m in messages])
    assert ENGINE_KEY not in everything
    # a wrong key is one line
    k.run("import os; os.environ['OPENAI_API_KEY'] = 'nope'")
    _, reply = k.run("%%cfai -m gemma-3-270m\nhi")
    assert reply["content"]["ename"] == "AuthError"
    assert len(reply["content"]["traceback"]) == 1


def test_map_on_llama_cpp_server(llama_server, monkeypatch):
    """A batch on an OpenAI-compatible engine nobody here wrote: every row answered, in order.
    (Structured output is shown on the embedded backend: this engine refuses OpenAI's
    ``json_schema`` response_format, taking only ``text`` and ``json_object``.)"""
    import cfai_magic
    from cfai_magic.session import Session
    monkeypatch.setenv("OPENAI_API_KEY", ENGINE_KEY)
    session = Session()
    session.set_backend(llama_server, "openai")
    rows = ["a cow", "a horse", "a duck"]
    out = cfai_magic.map("In one sentence, what is {row}?", rows, session=session, namespace={},
                         model="gemma-3-270m", max_tokens=16, temperature=0, mode="final")
    assert len(out) == 3 and all(isinstance(o, str) and o.strip() for o in out), out
    again = cfai_magic.map("In one sentence, what is {row}?", list(reversed(rows)),
                           session=session, namespace={}, model="gemma-3-270m", max_tokens=16,
                           temperature=0, mode="final")
    assert again == list(reversed(out))        # kept by request, so nothing was sent again
    assert cfai_magic.batch.last.stats.before == 3
    session._drop_client()
