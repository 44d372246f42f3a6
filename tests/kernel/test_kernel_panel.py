"""The chat panel in a real kernel, driven by comm messages as a browser drives it."""
import pytest

from cfai_magic.testing import Reply
from kernelkit import Widgets, stdout

pytestmark = pytest.mark.kernel


def body_text(widgets, message_id, mime="text/plain"):
    """What a transcript message shows (its Output child), as text or as its HTML."""
    out = [c for c in widgets.children(message_id)
           if "cfai-message-body" in widgets.state.get(c, {}).get("_dom_classes", [])]
    outputs = widgets.state[out[0]].get("outputs") or [] if out else []
    return outputs[0]["data"][mime] if outputs else ""


def open_panel(kernel):
    """Run %cfai panel; the widgets as a front end would know them, and the cell's messages."""
    kernel.run("%load_ext cfai_magic")
    widgets = Widgets(kernel)
    messages, reply = kernel.run("%cfai panel")
    for msg in messages:
        widgets.feed(msg)
    assert reply["content"]["status"] == "ok"
    return widgets, messages


def test_panel_driven_through_comms(kernel, fake_workers_ai):
    widgets, messages = open_panel(kernel)
    assert any(m["msg_type"] == "display_data" and
               "application/vnd.jupyter.widget-view+json" in m["content"]["data"] for m in messages)
    [box] = widgets.find("cfai-input")
    [send] = widgets.find("cfai-send")
    [transcript] = widgets.find("cfai-transcript")
    [status] = widgets.find("cfai-status")

    chunks = [f"part{i} " for i in range(30)]
    fake_workers_ai.enqueue(Reply(chunks=chunks, drip=0.05))
    widgets.set(box, value="Hello from the browser")
    widgets.click(send)

    seen = []

    def answer(ws):
        kids = ws.children(transcript) if transcript in ws.state else []
        return kids[-1] if len(kids) == 2 else None

    def record(ws, msg):
        a = answer(ws)
        if a:
            text = body_text(ws, a)
            if text and (not seen or seen[-1] != text):
                seen.append(text)

    widgets.pump(lambda ws: ws.state[status].get("value", "").startswith("✓")
                 and ws.state[send].get("disabled") is False, on_update=record)
    final = body_text(widgets, answer(widgets))
    assert final == "".join(chunks)
    assert body_text(widgets, answer(widgets), "text/html").endswith(
        "<p>" + "".join(chunks).strip() + "</p>\n</div>")
    assert len(seen) >= 3 and all(final.startswith(s.strip()) for s in seen)   # it grew in place
    assert fake_workers_ai.last.body["messages"] == [
        {"role": "user", "content": "Hello from the browser"}]

    messages, _ = kernel.run("%cfai history")
    assert stdout(messages) == f"user: Hello from the browser\nassistant: {''.join(chunks)}\n"


def test_enter_in_the_message_box_sends(kernel, fake_workers_ai):
    widgets, _ = open_panel(kernel)
    [box] = widgets.find("cfai-input")
    [status] = widgets.find("cfai-status")
    widgets.set(box, value="sent with Enter")
    widgets.send(box, {"method": "custom", "content": {"event": "submit"}})
    widgets.pump(lambda ws: ws.state[status].get("value", "").startswith("✓"))
    assert fake_workers_ai.last.body["messages"][-1]["content"] == "sent with Enter"


def test_the_kernel_runs_other_cells_while_the_panel_streams(kernel, fake_workers_ai):
    widgets, _ = open_panel(kernel)
    [box] = widgets.find("cfai-input")
    [send] = widgets.find("cfai-send")
    [status] = widgets.find("cfai-status")
    fake_workers_ai.enqueue(Reply.large(60, "slow ", drip=0.05))      # about 3 s
    widgets.set(box, value="take your time")
    widgets.click(send)
    widgets.pump(lambda ws: ws.state[status].get("value", "").startswith("⏳"))
    messages, reply = kernel.run("print(6 * 7)", timeout=5)
    assert reply["content"]["status"] == "ok" and stdout(messages) == "42\n"
    assert not widgets.state[status]["value"].startswith("✓")        # still streaming
    widgets.pump(lambda ws: ws.state[status].get("value", "").startswith("✓"))


def test_enter_waits_for_the_last_keystrokes(kernel, fake_workers_ai):
    """What a browser sends when someone types fast and presses Enter: a throttled value
    update, the Enter (not throttled), then the buffered rest of the value. The message used to
    arrive as "Name three" and the box was not cleared."""
    widgets, _ = open_panel(kernel)
    [box] = widgets.find("cfai-input")
    [status] = widgets.find("cfai-status")
    widgets.set(box, value="Name three")
    widgets.send(box, {"method": "custom", "content": {"event": "submit"}})
    widgets.set(box, value="Name three uses of Python.")
    widgets.pump(lambda ws: ws.state[status].get("value", "").startswith("✓"))
    assert fake_workers_ai.last.body["messages"][-1]["content"] == "Name three uses of Python."
    widgets.pump(lambda ws: ws.state[box].get("value") == "")


def test_the_message_box_reads_the_notebook_as_a_cell_does(kernel, fake_workers_ai):
    widgets, _ = open_panel(kernel)
    kernel.run("import pandas as pd\nframe = pd.DataFrame({'x': range(1000), 'y': 2.5})")
    kernel.run("frame['z']")                                          # fails: KeyError
    [box] = widgets.find("cfai-input")
    [status] = widgets.find("cfai-status")
    widgets.set(box, value="About {frame}: why {Err}")
    widgets.send(box, {"method": "custom", "content": {"event": "submit"}})
    widgets.pump(lambda ws: ws.state[status].get("value", "").startswith("✓"))
    sent = fake_workers_ai.last.body["messages"][-1]["content"]
    assert sent.startswith("About DataFrame: 1,000 rows × 2 columns") and "x (int64)" in sent
    assert "why KeyError: 'z'" in sent and "The failing line: frame['z']" in sent
