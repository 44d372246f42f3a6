"""Untrusted text through a real kernel: an answer, response headers, a cassette, the live
model list, a server's error message and a chat file's roles, each full of XSS payloads and
terminal escapes. What the kernel sends a front end (output data, widget values, error lines)
holds no live markup and no foreign escape sequence."""
import json
import os
import subprocess
import sys

import pytest

from cfai_magic.apiserver import search_item
from cfai_magic.cassette import entries
from cfai_magic.models import BUILT_IN
from cfai_magic.testing import FakeWorkersAI, Reply
from kernelkit import Kernel, Widgets, displays, stdout
from payloads import ANSI, ANSWER, HEADER, MARKDOWN, foreign_escapes, live_markup

HOSTILE = ANSWER + "\n\n" + ANSI + "\n\n" + MARKDOWN
HEADERS = {"X-Cfai-Backend": HEADER, "X-Cfai-Served-By": HEADER}


@pytest.fixture
def hostile():
    """A fake whose live list describes every model with payloads."""
    models = [search_item(m, description=HEADER) for m in BUILT_IN]
    with FakeWorkersAI(models=models) as fake:
        yield fake


@pytest.fixture
def kernel(hostile, tmp_path):
    k = Kernel(hostile.env(), cwd=str(tmp_path))
    k.run("%load_ext cfai_magic")
    yield k
    k.close()


def check_bundle(data: dict) -> None:
    for mime, value in data.items():
        if mime == "text/html":
            assert live_markup(value) == [], live_markup(value)
        if isinstance(value, str):
            assert foreign_escapes(value) == [], (mime, foreign_escapes(value))
    assert "text/markdown" not in data         # rendered trusted by JupyterLab: never raw


def check_all(messages) -> None:
    shown = displays(messages)
    for m in shown:
        check_bundle(m["content"]["data"])
    for m in messages:
        if m["msg_type"] == "stream":
            assert foreign_escapes(m["content"]["text"]) == []
        if m["msg_type"] == "error":
            for line in m["content"]["traceback"]:
                assert foreign_escapes(line) == [], line


def test_an_answer_and_its_headers(kernel, hostile):
    hostile.enqueue(Reply(text=HOSTILE, reasoning="think <img src=x onerror=alert(1)>" + ANSI,
                          dialect="chat", headers=HEADERS, drip=0.001))
    messages, reply = kernel.run("%%cfai -m @cf/zai-org/glm-4.7-flash\nshow me")
    assert reply["content"]["status"] == "ok"
    check_all(messages)
    final = displays(messages)[-1]["content"]["data"]
    assert "<h2>Results</h2>" in final["text/html"] and "<table>" in final["text/html"]
    assert "&lt;script&gt;" in final["text/html"]              # shown as text
    assert kernel.value("_cfai == " + repr(HOSTILE)) == "True"   # the value itself is the data


def test_a_server_error_message(kernel, hostile):
    hostile.enqueue(status=400, code=5004, message=HEADER + ANSI)
    messages, reply = kernel.run("%%cfai -m llama2\nfail")
    assert reply["content"]["status"] == "error"
    assert len(reply["content"]["traceback"]) == 1
    check_all(messages)


def test_a_crafted_cassette(kernel, hostile, tmp_path):
    """A cassette from anywhere: its text, its label and its served_by are untrusted."""
    cassette = tmp_path / "hostile.json"
    cassette.write_text(json.dumps({"cfai_cassette": 1, "interactions": [
        {"request": {"backend": HEADER, "model": "@cf/meta/llama-2-7b-chat-fp16",
                     "body": {"prompt": "recorded"}},
         "response": {"chunks": [HOSTILE], "usage": None, "served_by": HEADER}}]}))
    replay = Kernel({}, cwd=str(tmp_path))       # no fake, no credentials: the cassette alone
    try:
        replay.run("%load_ext cfai_magic")
        replay.run(f"%cfai replay {cassette}")
        messages, reply = replay.run("%%cfai -m llama2 --once\nrecorded")
        assert reply["content"]["status"] == "ok", reply["content"]
        check_all(messages)
        assert "replayed" in displays(messages)[-1]["content"]["data"]["text/plain"]
    finally:
        replay.close()


def test_a_hostile_server_cannot_name_itself_in_a_recording(kernel, hostile, tmp_path):
    cassette = tmp_path / "recorded.json"
    hostile.enqueue(Reply(text="hi", headers=HEADERS))
    kernel.run(f"%cfai record {cassette}")
    kernel.run("%%cfai -m llama2 --once\nrecorded")
    recorded = entries(cassette)[0]
    port = hostile.url.split(":")[2].split("/")[0]
    assert recorded["request"]["backend"] == f"127.0.0.1:{port}"    # the backend's own label
    assert len(recorded["response"]["served_by"]) == 100            # the header's words, cut


def test_the_live_list_in_models_and_in_the_panel(kernel, hostile, tmp_path):
    kernel.run("%%cfai -m llama2\nfirst")                # fetches the live list
    messages, _ = kernel.run("%cfai models --refresh")
    check_all(messages)
    table = displays(messages)[-1]["content"]["data"]["text/html"]
    assert "onerror" in table and "&lt;img" in table                     # there, as text
    messages, _ = kernel.run("%cfai model")
    check_all(messages)
    assert "<img" in stdout(messages)                     # a terminal shows the words


def test_every_widget_of_the_panel(kernel, hostile, tmp_path):
    chats = tmp_path / "chats.json"
    chats.write_text(json.dumps({"cfai_chats": 1, "chats": {"default": {"turns": [
        {"messages": [{"role": HEADER, "content": HOSTILE}], "answer": HOSTILE,
         "reasoning": HEADER}]}}}))
    kernel.run(f"%cfai load {chats}")
    widgets = Widgets(kernel)
    msg_id = kernel.send("%cfai panel")
    widgets.pump(lambda ws: ws.find("cfai-send"))
    [box], [send], [status], [error], [new] = (
        widgets.find(c) for c in ("cfai-input", "cfai-send", "cfai-status", "cfai-error",
                                  "cfai-new-chat"))
    widgets.click(new)              # the loaded chat's roles stay shown; this one starts afresh
    hostile.enqueue(Reply(text=HOSTILE, reasoning=HEADER, dialect="chat", headers=HEADERS))
    widgets.set(box, value="go")
    widgets.click(send)
    widgets.pump(lambda ws: ws.state[status].get("value", "").startswith("✓"))
    hostile.enqueue(status=400, code=5004, message=HEADER)
    widgets.set(box, value="fail")
    widgets.click(send)
    widgets.pump(lambda ws: ws.state[error].get("value"))
    kernel.collect(msg_id)
    values = 0
    for state in widgets.state.values():
        for key in ("value", "description", "tooltip", "placeholder"):
            if isinstance(state.get(key), str):
                values += 1
                assert foreign_escapes(state[key]) == []
                if state.get("_model_name") == "HTMLModel":
                    assert live_markup(state[key]) == [], (key, live_markup(state[key]))
        for out in state.get("outputs") or ():
            values += 1
            check_bundle(out["data"])
        for label in state.get("_options_labels") or ():
            assert foreign_escapes(label) == []
    assert values > 20
    shown = " ".join(s.get("value", "") for s in widgets.state.values()
                     if isinstance(s.get("value"), str))
    assert "&lt;img src=x onerror=" in shown     # the role, the status line, the error: as text


def test_the_terminal_prints_no_foreign_escapes(hostile, tmp_path):
    """Terminal IPython (print mode): an answer, a footer from hostile headers, an error line
    and %cfai history, each carrying escapes."""
    hostile.enqueue(Reply(text="answer " + ANSI, headers=HEADERS))
    hostile.enqueue(status=400, code=5004, message="bad " + ANSI)
    cells = tmp_path / "cells.py"
    cells.write_text("ip = get_ipython()\n"
                     "ip.run_cell('%load_ext cfai_magic')\n"
                     "ip.run_cell('%%cfai -m llama2\\nfirst')\n"
                     "ip.run_cell('%%cfai -m llama2\\nsecond')\n"
                     "ip.run_cell('%cfai history')\n")
    done = subprocess.run([sys.executable, "-m", "IPython", "--no-banner", "--colors=NoColor",
                           "--simple-prompt", str(cells)], env={**os.environ, **hostile.env()},
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    out = done.stdout + done.stderr
    assert "answer [2J" in out and "bad [2J" in out and "InvalidRequest" in out, out
    assert out.count("answer [2J") == 2                  # the answer, then in the history
    assert "Traceback" not in out
    assert foreign_escapes(out) == [], foreign_escapes(out)
