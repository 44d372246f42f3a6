"""%%cfai in a real kernel: iopub traffic, byte-exact answers, interrupts, cell ids."""
import hashlib
import threading

import pytest

from cfai_magic.testing import Reply
from kernelkit import displays, stdout

pytestmark = pytest.mark.kernel
CHUNKS = [f"w{i}·é " if i % 7 else f"\n\n**{i}** `x{{}}` " for i in range(2500)]


def test_stream_2500_chunks_throttled_and_exact(kernel, fake_workers_ai):
    kernel.run("%load_ext cfai_magic")
    fake_workers_ai.enqueue(Reply(chunks=CHUNKS, drip=0.001))
    messages, reply = kernel.run("%%cfai -m llama2\nGo")
    assert reply["content"]["status"] == "ok"
    shown = displays(messages)
    duration = shown[-1]["received"] - shown[0]["received"]
    assert duration > 2.0                                # the fake's drip: 2,500 × 1 ms
    assert len(shown) <= 20 * duration + 5, (len(shown), duration)
    expected = "".join(CHUNKS)
    final = shown[-1]["content"]["data"]
    assert final["text/plain"].startswith(expected + "\n✓ @cf/meta/llama-2-7b-chat-fp16 · ")
    assert " in · 2500 out · ≈$" in final["text/plain"]
    shown_html = final["text/html"]
    assert "<p><strong>0</strong> <code>x{}</code> w1·é w2·é" in shown_html and "<strong>2492</strong> <code>x{}</code>" in shown_html
    assert shown_html.rindex("<strong>2499</strong>") < shown_html.index("<sub>✓")
    digest = hashlib.sha256(expected.encode()).hexdigest()
    assert kernel.value("__import__('hashlib').sha256(_cfai.encode()).hexdigest()") == repr(digest)
    meta = shown[-1]["content"]["metadata"]["cfai"]
    assert meta["usage"]["completion_tokens"] == 2500 and meta["backend"] == "fake"


def test_interrupt_ends_the_cell_quickly_and_keeps_the_partial(kernel, fake_workers_ai):
    kernel.run("%load_ext cfai_magic")
    kernel.run("%%cfai\nfirst")
    fake_workers_ai.enqueue(Reply.large(3000, "tok ", drip=0.01))       # 30 s in all
    sent = {}

    def interrupt_when_streaming(msg):
        if msg["msg_type"] == "update_display_data" and "at" not in sent:
            sent["at"] = True
            threading.Timer(0.8, kernel.km.interrupt_kernel).start()

    msg_id = kernel.send("%%cfai\nsecond")
    messages, reply = kernel.collect(msg_id, on_message=interrupt_when_streaming)
    assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "Interrupted"
    assert fake_workers_ai.last.cut_short                              # not the stream's 30 s
    final = displays(messages)[-1]["content"]["data"]["text/plain"]
    assert final.startswith("tok tok ") and "⏹ interrupted" in final
    assert 10 < final.count("tok ") < 3000
    assert len(reply["content"]["traceback"]) == 1         # one line, no traceback
    fake_workers_ai.reset()
    kernel.run("%%cfai\nthird")
    sent = [m["content"] for m in fake_workers_ai.last.body["messages"]]
    assert sent[:3] == ["first", "Echo: first", "second"] and sent[4] == "third"
    assert sent[3].count("tok ") == final.count("tok ")                # what was shown


def test_error_is_one_line_and_the_cell_fails(kernel, fake_workers_ai):
    kernel.run("%load_ext cfai_magic")
    fake_workers_ai.enqueue(status=401, code=10000, message="Authentication error")
    messages, reply = kernel.run("%%cfai\nhi")
    content = reply["content"]
    assert content["status"] == "error" and content["ename"] == "AuthError"
    assert len(content["traceback"]) == 1 and "Check CLOUDFLARE_API_TOKEN" in content["traceback"][0]
    errors = [m for m in messages if m["msg_type"] == "error"]
    assert len(errors) == 1 and len(errors[0]["content"]["traceback"]) == 1


def test_rerun_with_jupyterlab_cell_ids_rewinds(kernel, fake_workers_ai):
    kernel.run("%load_ext cfai_magic")
    kernel.run("%%cfai\nq1", cell_id="cell-a")
    kernel.run("%%cfai\nq2", cell_id="cell-b")
    kernel.run("%%cfai\nq1 again", cell_id="cell-a")
    assert fake_workers_ai.last.body["messages"] == [{"role": "user", "content": "q1 again"}]
    messages, _ = kernel.run("%cfai history")
    assert stdout(messages) == "user: q1 again\nassistant: Echo: q1 again\n"


def test_saved_notebook_has_no_token(fake_workers_ai, tmp_path):
    import nbformat
    from nbclient import NotebookClient
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in (
        "%load_ext cfai_magic", "%%cfai -m llama2\nTell me a story", "%cfai config",
        "%cfai history", "%cfai save", "%config CfaiMagics")]
    import os
    old = dict(os.environ)
    os.environ.update(fake_workers_ai.env())
    try:
        NotebookClient(nb, timeout=60, kernel_name="python3",
                       resources={"metadata": {"path": str(tmp_path)}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(old)
    path = tmp_path / "demo.ipynb"
    nbformat.write(nb, path)
    text = path.read_text() + "".join(p.read_text() for p in tmp_path.glob("*.json"))
    assert "Echo: Tell me a story" in text
    assert fake_workers_ai.token not in text and fake_workers_ai.account_id not in text


def test_a_10_mb_answer_ends_soon_and_sends_little(kernel, fake_workers_ai):
    """Display cost grows with the answer's size, not with its square: before, 6 MB never
    finished (every update re-sent everything, and slow updates came back to back)."""
    kernel.run("%load_ext cfai_magic")
    piece = "word " * 200
    fake_workers_ai.enqueue(Reply.large(10_000, piece))
    messages, reply = kernel.run("%%cfai --once -m llama2\ngo", timeout=120)
    assert reply["content"]["status"] == "ok"
    shown = displays(messages)
    sent = sum(len(m["content"]["data"].get("text/plain", "")) +
               len(m["content"]["data"].get("text/html", "")) for m in shown)
    assert sent < 3 * 10_000 * len(piece)
    final = shown[-1]["content"]["data"]
    assert "text/html" not in final                       # plain text past 1 MB
    assert final["text/plain"].startswith(piece * 10_000)
    assert all(len(m["content"]["data"].get("text/plain", "")) < 100_000 for m in shown[:-1])
