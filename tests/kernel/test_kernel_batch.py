"""cfai_magic.map in a real kernel: an interrupt returns at once with what was answered, the
same call then sends only the rest, and cache=PATH outlives the kernel."""
import re
import threading

import pytest

from cfai_magic.testing import Reply
from kernelkit import Kernel, stdout

pytestmark = pytest.mark.kernel
ROWS = "rows = [f'r{i}' for i in range(40)]"
CALL = "out = cfai_magic.map('Q {row}', rows, model='llama3', concurrency=2)"



def test_interrupt_returns_what_was_answered_and_a_rerun_sends_only_the_rest(kernel,
                                                                           fake_workers_ai):
    fake = fake_workers_ai
    fake.default = lambda req: Reply(text=f"A:{req.input_text}", delay=0.1)
    kernel.run(f"import cfai_magic\n{ROWS}")
    sent = {}

    def interrupt_after_some_rows(msg):
        if len(fake.asked) >= 8 and "at" not in sent:
            sent["at"] = True
            threading.Thread(target=kernel.km.interrupt_kernel).start()

    messages, reply = kernel.collect(kernel.send(CALL), on_message=interrupt_after_some_rows)
    assert "at" in sent, "the interrupt was never sent"
    assert reply["content"]["status"] == "ok"            # the batch returns, it does not fail
    assert len(fake.asked) < 40                          # before the rest was sent
    printed = stdout(messages)
    assert "Interrupted: the answered rows are kept" in printed
    answered = int(re.search(r"(\d+) answered", printed).group(1))
    assert 4 <= answered < 40
    assert kernel.value("sum(v is not None for v in out)") == str(answered)
    fake.reset()
    messages, _ = kernel.run(CALL)
    kept = int(re.search(r"\((\d+) kept from before\)", stdout(messages)).group(1))
    assert kept >= answered
    assert len(fake.asked) == 40 - kept                  # only the rows without an answer
    assert kernel.value("out == [f'A:Q r{i}' for i in range(40)]") == "True"


def test_cache_file_outlives_a_kernel_restart(fake_workers_ai, tmp_path):
    fake = fake_workers_ai
    code = (f"import cfai_magic\n{ROWS}\nout = cfai_magic.map('Q {{row}}', rows[:6], "
            f"model='llama3', cache='answers.jsonl')")
    first = Kernel(fake.env(), cwd=str(tmp_path))
    try:
        first.run(code)
        assert first.value("len([v for v in out if v])") == "6"
    finally:
        first.close()
    assert len(fake.asked) == 6
    fake.reset()
    second = Kernel(fake.env(), cwd=str(tmp_path))
    try:
        messages, _ = second.run(code)
        assert "6 kept from before" in stdout(messages)
        assert second.value("out == [f'Echo: Q r{i}' for i in range(6)]") == "True"
    finally:
        second.close()
    assert fake.asked == []


def test_the_progress_bar_is_a_widget_with_rows_failures_and_tokens(kernel, fake_workers_ai):
    fake_workers_ai.enqueue(status=400, code=5004, message="Invalid input")
    kernel.run("import cfai_magic")
    messages, reply = kernel.run("out = cfai_magic.map('Q {row}', ['a', 'b', 'c'], "
                                 "model='llama3', concurrency=1)")
    assert reply["content"]["status"] == "ok"
    state = {}
    for m in messages:
        if m["msg_type"] in ("comm_open", "comm_msg"):
            data = m["content"]["data"]
            state.setdefault(m["content"]["comm_id"], {}).update(data.get("state", {}))
    bars = [s for s in state.values() if s.get("_model_name") in ("FloatProgressModel",
                                                                    "IntProgressModel")]
    assert bars and bars[-1]["value"] == 3 and bars[-1]["max"] == 3
    texts = " ".join(str(s.get("value", "")) for s in state.values()
                     if s.get("_model_name") == "HTMLModel").replace("\u2007", " ")
    assert "1 failed" in texts and "tokens" in texts and "3/3" in texts
    assert "cfai map: 3 rows · 2 answered · 1 failed" in stdout(messages)


def test_interrupt_while_preparing_100000_rows(kernel, fake_workers_ai):
    """Preparing 100,000 rows takes seconds before the first is sent: an interrupt then is
    one line, and --out still gets the rows (none answered), in order."""
    kernel.run("%load_ext cfai_magic\nrows = [f'r{i}' for i in range(100_000)]")
    sent = []

    def interrupt_when_it_starts(msg):
        if msg["msg_type"] == "stream" and "Preparing 100,000 rows" in msg["content"]["text"] \
                and not sent:
            sent.append(True)
            threading.Thread(target=kernel.km.interrupt_kernel).start()

    msg_id = kernel.send("%%cfai --map rows --out out -m llama3\nQ {row}")
    messages, reply = kernel.collect(msg_id, on_message=interrupt_when_it_starts)
    assert sent and reply["content"]["status"] == "ok", reply["content"]
    printed = stdout(messages)
    assert "Traceback" not in printed and "KeyboardInterrupt" not in printed
    assert "Interrupted while preparing the rows (" in printed
    assert "before any was sent" in printed and "100,000 rows · 0 answered" in printed
    assert fake_workers_ai.asked == []
    assert kernel.value("(len(out), out.count(None))") == "(100000, 100000)"
