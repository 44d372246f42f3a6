"""What a person sees in JupyterLab: streaming cells, interrupts, the chat panel, errors."""
import re
import time

from cfai_magic.testing import Reply
from labkit import cell, executed, output_text, run_cell, start_notebook, wait_until

ANSWER_WORDS = ["Here", "is", "a", "function", "that", "reverses", "a", "string", "in", "Python.", "It", "uses", "slicing", "with", "a", "negative", "step,", "which", "walks", "the", "string", "from", "its", "end", "to", "its", "start", "and", "builds", "a", "new", "string", "as", "it", "goes."]
CODE = "def reverse(s):\n    return s[::-1]"


def scripted_answer():
    chunks = [w + " " for w in ANSWER_WORDS] + ["\n\n```python\n", CODE + "\n", "```\n"]
    return chunks, "".join(chunks)


def test_streaming_cell(page, lab, fake, artifacts):
    chunks, answer = scripted_answer()
    fake.enqueue(Reply(chunks=chunks, drip=0.12))
    start_notebook(page, lab, "stream.ipynb", ["%%cfai -m llama2\nWrite a string reversal."])
    run_cell(page, 1)
    snapshots = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = output_text(page, 1)
        if text and (not snapshots or text != snapshots[-1]):
            snapshots.append(text)
        if "✓" in text:
            break
        time.sleep(0.1)
    growing = [s for s in snapshots if "⏳" in s]
    assert len(growing) >= 3, snapshots
    prose = [len(s.split("⏳")[0]) for s in growing if "def reverse" not in s]
    assert len(prose) >= 3 and prose == sorted(prose) and prose[-1] > prose[0]   # it grew
    assert any(re.search(r"⏳ @cf/meta/llama-2-7b-chat-fp16 · \d+ tokens", s) for s in growing)
    out = cell(page, 1).locator(".jp-OutputArea-output").last
    final = out.inner_text()
    words = " ".join(ANSWER_WORDS)
    assert final.startswith(words)
    code = out.locator("pre code")
    assert code.count() >= 1 and code.first.inner_text().strip() == CODE
    assert re.search(r"✓ @cf/meta/llama-2-7b-chat-fp16 · \d+ in · \d+ out · ≈\$0\.\d+ · ", final)
    page.screenshot(path=str(artifacts / "1-streaming-cell.png"), full_page=True)


def test_interrupt_from_the_toolbar(page, lab, fake, artifacts):
    fake.enqueue(Reply.large(400, "word ", drip=0.05))
    start_notebook(page, lab, "interrupt.ipynb", ["%%cfai\nA long answer, please."])
    run_cell(page, 1)
    wait_until(lambda: output_text(page, 1).count("word") >= 10)
    page.locator(".jp-NotebookPanel-toolbar [data-jp-item-name='interrupt']").click()
    wait_until(lambda: executed(page, 1), timeout=10)
    text = output_text(page, 1)
    assert "⏹ interrupted" in text
    kept = text.split("⏹")[0].count("word")
    assert 10 <= kept < 400
    errors = cell(page, 1).locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    assert errors.count() == 1
    line = errors.first.inner_text().strip()
    assert line.startswith("Interrupted: Stopped after") and "\n" not in line
    assert "Traceback" not in text
    page.screenshot(path=str(artifacts / "2-interrupted-cell.png"), full_page=True)


def test_error_is_one_readable_line(page, lab, fake, artifacts):
    fake.enqueue(status=401, code=10000, message="Authentication error")
    start_notebook(page, lab, "error.ipynb", ["%%cfai\nHello?"])
    run_cell(page, 1)
    wait_until(lambda: executed(page, 1))
    text = output_text(page, 1).strip()
    assert text == ("AuthError: Authentication error (HTTP 401, code 10000). Check "
                    "CLOUDFLARE_API_TOKEN (or run %cfai login); the token needs Workers AI "
                    "permission")
    assert "Traceback" not in text
    page.screenshot(path=str(artifacts / "4-error-line.png"), full_page=True)


def test_chat_panel(page, lab, fake, artifacts):
    start_notebook(page, lab, "panel.ipynb",
                   ["%cfai panel", "%%cfai --max-tokens 50\nContinue from a cell."])
    run_cell(page, 1)
    panel = page.locator(".cfai-panel")
    panel.wait_for()
    # choose a model
    select = panel.locator(".cfai-model select")
    labels = select.locator("option").all_inner_texts()
    mistral = next(label for label in labels if label.startswith("@cf/mistral/"))
    select.select_option(label=mistral)
    # type, send, watch it stream
    fake.enqueue(Reply.large(300, "tale ", drip=0.05))
    panel.locator(".cfai-input input").fill("Tell me a long story")
    panel.locator("button.cfai-send").click()
    answer = panel.locator(".cfai-transcript .cfai-message-assistant").last
    seen = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(seen) < 4:
        text = answer.inner_text()
        if text.count("tale") >= 3 and (not seen or text != seen[-1]):
            seen.append(text)
        time.sleep(0.1)
    assert len(seen) >= 3 and [s.count("tale") for s in seen] == sorted(s.count("tale") for s in seen)
    assert panel.locator("button.cfai-send").is_disabled()
    assert "⏳" in panel.locator(".cfai-status").inner_text()
    # stop mid-answer
    panel.locator("button.cfai-stop").click()
    wait_until(lambda: "interrupted" in answer.inner_text(), timeout=2)
    kept = answer.inner_text().count("tale")
    assert 3 <= kept < 300
    wait_until(lambda: not panel.locator("button.cfai-send").is_disabled(), timeout=2)
    assert fake.last.model == "@cf/mistral/mistral-7b-instruct-v0.1"
    assert fake.last.body["messages"][-1]["content"] == "Tell me a long story"
    page.screenshot(path=str(artifacts / "3a-panel-stopped.png"), full_page=True)
    # the conversation continues from a cell, and the panel shows it
    fake.enqueue("A reply to the cell, shown in the panel too:\n\n```python\nprint('inserted')\n```")
    run_cell(page, 2)
    wait_until(lambda: executed(page, 2))
    wait_until(lambda: "A reply to the cell, shown in the panel too" in
               panel.locator(".cfai-transcript").inner_text())
    transcript = panel.locator(".cfai-transcript").inner_text()
    assert "Continue from a cell." in transcript
    assert fake.last.model == "@cf/mistral/mistral-7b-instruct-v0.1"   # the panel's choice
    page.screenshot(path=str(artifacts / "3b-panel-after-cell.png"), full_page=True)
    # "Insert as cell" puts the answer's code in a new cell below the panel's cell
    cells_before = page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell").count()
    panel.locator(".cfai-message-assistant").last.locator("button.cfai-insert").click()
    wait_until(lambda: page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell").count()
               == cells_before + 1, timeout=10)
    assert cell(page, 2).locator(".jp-InputArea-editor").inner_text().strip() == "print('inserted')"
    page.screenshot(path=str(artifacts / "3c-panel-inserted-cell.png"), full_page=True)


def test_reasoning_is_collapsed_and_labelled(page, lab, fake, artifacts):
    thought = ("First I recall that sunlight holds every colour, and that air molecules "
               "scatter short wavelengths far more than long ones: Rayleigh scattering.")
    fake.enqueue(Reply(reasoning=thought, text="The sky is blue because air scatters blue "
                                                "light most.", drip=0.08))
    start_notebook(page, lab, "reasoning.ipynb",
                   ["%%cfai -m @cf/zai-org/glm-4.7-flash\nWhy is the sky blue?"])
    run_cell(page, 1)
    wait_until(lambda: "💭 Thinking…" in output_text(page, 1), timeout=15)
    wait_until(lambda: executed(page, 1) and "✓" in output_text(page, 1), timeout=20)
    out = cell(page, 1).locator(".jp-OutputArea-output").last
    details = out.locator("details")
    assert details.count() == 1 and details.get_attribute("open") is None
    assert details.locator("summary").inner_text().startswith(f"💭 Reasoning ({len(thought.split())} words)")
    assert not details.locator("pre").is_visible()                 # collapsed
    assert "Rayleigh" not in out.inner_text()
    assert "The sky is blue because air scatters blue light most." in out.inner_text()
    page.screenshot(path=str(artifacts / "5a-reasoning-collapsed.png"), full_page=True)
    details.locator("summary").click()
    wait_until(lambda: details.locator("pre").is_visible(), timeout=5)
    assert "Rayleigh scattering." in details.locator("pre").inner_text()
    page.screenshot(path=str(artifacts / "5b-reasoning-open.png"), full_page=True)


def test_panel_enter_after_fast_typing_sends_it_all(page, lab, fake, artifacts):
    start_notebook(page, lab, "typing.ipynb", ["%cfai panel"])
    run_cell(page, 1)
    panel = page.locator(".cfai-panel")
    panel.wait_for()
    box = panel.locator(".cfai-input input")
    for text in ("Name three uses of Python.", "And two more, briefly please?"):
        box.press_sequentially(text, delay=0)              # as fast as keys can come
        box.press("Enter")
        wait_until(lambda text=text: fake.requests and fake.last.kind == "run" and
                   fake.last.body["messages"][-1]["content"] == text, timeout=10)
        wait_until(lambda: box.input_value() == "", timeout=5)     # and the box is cleared
    page.screenshot(path=str(artifacts / "6-panel-enter.png"), full_page=True)
