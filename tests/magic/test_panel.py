"""ChatPanel without a browser: the widgets' state, against FakeWorkersAI."""

import pytest

from cfai_magic.testing import Reply, wait_for
from cfai_magic.widget import ChatPanel
from shellkit import cfai, run, session



@pytest.fixture
def panel(ip):
    p = ChatPanel(session=session(ip))
    yield p
    p.close()


def texts(panel):
    return [(m.role, m.text) for m in panel.transcript.children]


def test_send_streams_the_answer(panel, fake):
    fake.enqueue(chunks=["Hello", " from", " the", " panel"], drip=0.05)
    panel.message.value = "Hi there"
    worker = panel.submit()
    assert panel.message.value == "" and texts(panel)[0] == ("user", "Hi there")
    wait_for(lambda: panel.transcript.children[-1].text not in ("",))
    worker.join(5)
    assert texts(panel) == [("user", "Hi there"), ("assistant", "Hello from the panel")]
    assert panel.status.value.startswith("✓ @cf/zai-org/glm-4.7-flash · 6 in · 4 out · ≈$0")
    body = fake.last.body
    assert body["messages"] == [{"role": "user", "content": "Hi there"}]
    assert body["max_tokens"] == 256 and body["temperature"] == 0.6 and body["stream"] is True
    out = panel.transcript.children[-1].body.outputs[0]["data"]
    assert "text/markdown" not in out and "<p>Hello from the panel</p>" in out["text/html"]


def test_partial_answer_shows_while_streaming_and_send_is_disabled(panel, fake):
    fake.enqueue(Reply.large(40, "tok ", drip=0.03))
    worker = panel.submit("stream please")
    wait_for(lambda: "tok tok" in panel.transcript.children[-1].text)
    assert panel.send.disabled and not panel.stop.disabled
    assert panel.submit("a second message") is None          # ignored while streaming
    # the status line is updated on its own beat, after the transcript: wait for it
    wait_for(lambda: "⏳" in panel.status.value and "tok/s" in panel.status.value)
    worker.join(5)
    assert not panel.send.disabled and panel.stop.disabled
    assert panel.transcript.children[-1].text == "tok " * 40


def test_stop_mid_stream(panel, fake, ip):
    panel.submit("first").join(5)
    fake.enqueue(Reply.large(500, "w ", drip=0.02))
    worker = panel.submit("long one")
    wait_for(lambda: panel.transcript.children[-1].text.count("w ") >= 5)
    panel.stop_answer()
    assert not panel.send.disabled and panel.stop.disabled
    worker.join(5)                       # the whole answer would take 10 s
    assert not worker.is_alive()
    wait_for(lambda: fake.last.disconnected, timeout=5)
    answer = panel.transcript.children[-1].text
    assert answer.startswith("w w ") and answer.endswith("*⏹ interrupted*")
    assert "⏹ interrupted" in panel.status.value
    # what the user saw is what the chat holds: in history, after switching chats, when sent
    turns = session(ip).store.get().turns
    assert [t.messages[0]["content"] for t in turns] == ["first", "long one"]
    seen = answer.removesuffix("\n\n*⏹ interrupted*")
    assert turns[-1].interrupted and turns[-1].answer == seen
    assert f"assistant: {seen.strip()}" in run(ip, "%cfai history").stdout
    panel.start_new_chat()
    assert panel.transcript.children == ()
    panel.chats.value = "default"
    assert [m.text for m in panel.transcript.children][-1] == answer
    fake.reset()
    panel.submit("after stop").join(5)
    assert [m["content"] for m in fake.last.body["messages"]] == \
        ["first", "Echo: first", "long one", seen, "after stop"]


def test_reset_during_an_answer_wins(panel, fake, ip):
    panel.submit("first").join(5)
    panel.system.value = "be brief"
    fake.enqueue(Reply.large(200, "w ", drip=0.01))
    worker = panel.submit("long one")
    wait_for(lambda: panel.transcript.children[-1].text.count("w ") >= 3)
    assert run(ip, "%cfai reset").error is None
    worker.join(10)
    conversation = session(ip).store.get()
    assert conversation.turns == [] and conversation.system is None
    assert "is empty" in run(ip, "%cfai history").stdout


def test_stop_while_waiting_for_the_first_byte(panel, fake, ip):
    fake.enqueue("late", delay=30)
    panel.submit("slow server")
    wait_for(lambda: fake.requests)
    panel.stop_answer()
    assert not fake.last.finished            # the server's 30 s not waited out
    assert not panel.busy and not panel.send.disabled
    assert session(ip).store.get().turns == []


def test_model_choice_is_the_notebooks_default(panel, ip, fake):
    panel.model.value = "@cf/mistral/mistral-7b-instruct-v0.1"
    out = run(ip, "%cfai model")
    assert "Default model: @cf/mistral/mistral-7b-instruct-v0.1" in out.stdout
    cfai(ip)
    assert fake.last.model == "@cf/mistral/mistral-7b-instruct-v0.1"
    run(ip, "%cfai model llama2")
    assert panel.model.value == "@cf/meta/llama-2-7b-chat-fp16"
    assert "Reads up to 3,072 tokens; answers up to 256 unless --max-tokens says more; prompt " \
        "and answer together at most 2,500." in panel.limits.value
    assert "retired 2026-05-30" in panel.limits.value
    labels = [label for label, _ in panel.model.options]
    assert labels[0] == ("@cf/zai-org/glm-4.7-flash  (131k context · $0.0605/$0.4 per M · "
                         "reasoning · tools)")
    assert any("kimi-k2.6" in label and "paid plan" in label for label in labels)


def test_magic_and_panel_share_one_conversation(panel, ip, fake):
    cfai(ip, "", "from a cell")
    assert texts(panel) == [("user", "from a cell"), ("assistant", "Echo: from a cell")]
    panel.submit("from the panel").join(5)
    out = run(ip, "%cfai history")
    assert out.stdout.splitlines()[-2:] == ["user: from the panel",
                                           "assistant: Echo: from the panel"]
    cfai(ip, "", "back in a cell")
    assert [m["content"] for m in fake.last.body["messages"]] == [
        "from a cell", "Echo: from a cell", "from the panel", "Echo: from the panel",
        "back in a cell"]


def test_two_panels_stay_in_sync(panel, ip, fake):
    other = ChatPanel(session=session(ip))
    try:
        panel.submit("hello").join(5)
        assert texts(other) == texts(panel) == [("user", "hello"), ("assistant", "Echo: hello")]
        name = other.start_new_chat()
        assert name in panel.chats.options
        panel.chats.value = name
        other.submit("in the new chat").join(5)
        assert texts(panel) == [("user", "in the new chat"), ("assistant", "Echo: in the new chat")]
        assert fake.last.body["messages"] == [{"role": "user", "content": "in the new chat"}]
        cfai(ip, f"--chat {name}", "cell turn")
        assert texts(panel)[-1] == texts(other)[-1] == ("assistant", "Echo: cell turn")
    finally:
        other.close()


def test_error_mid_stream_is_one_line_and_changes_nothing(panel, ip, fake):
    panel.submit("first").join(5)
    fake.enqueue(text="half an answer then", drop_after=2)
    panel.submit("second").join(5)
    assert "StreamError: The connection dropped mid-stream" in panel.error.value
    assert "\n" not in panel.error.value
    assert [t.messages[0]["content"] for t in session(ip).store.get().turns] == ["first"]
    assert panel.transcript.children[-1].text == "half an "          # the partial stays shown
    assert not panel.send.disabled
    panel.submit("third").join(5)
    assert panel.error.value == ""
    assert [m["content"] for m in fake.last.body["messages"]] == ["first", "Echo: first", "third"]


def test_bad_input_in_the_panel(panel, fake):
    panel.max_tokens.value = 5000
    panel.model.value = "@cf/meta/llama-2-7b-chat-int8"
    assert panel.submit("too long an answer") is None
    assert "LimitExceeded" in panel.error.value and fake.requests == []


def test_system_prompt_and_new_chat(panel, fake, ip):
    panel.system.value = "Answer in French."
    panel.submit("hello").join(5)
    assert fake.last.body["messages"][0] == {"role": "system", "content": "Answer in French."}
    assert session(ip).store.get().system == "Answer in French."
    panel.start_new_chat()
    assert panel.chat_name == "chat-1" and texts(panel) == [] and panel.system.value == ""


def test_insert_as_cell_falls_back_to_percent_cfai_insert(panel, fake, ip):
    fake.enqueue("Here you go:\n```python\nprint(42)\n```")
    panel.submit("code please").join(5)
    panel.transcript.children[-1].insert.click()
    assert "%cfai insert" in panel.status.value
    run(ip, "%cfai insert")
    assert ip.rl_next_input == "print(42)"


def test_panel_magic_displays_a_panel(ip, fake):
    out = run(ip, "%cfai panel --chat side")
    assert out.error is None
    assert any("application/vnd.jupyter.widget-view+json" in o["data"] for o in out.outputs)
    assert "side" in session(ip).store.names()


def test_reasoning_streams_apart_in_the_panel_and_is_not_sent_back(panel, fake, ip):
    glm = "@cf/zai-org/glm-4.7-flash"
    panel.model.options = [*panel.model.options, (glm, glm)]
    panel.model.value = glm
    fake.enqueue(Reply(reasoning="Cows are <b>bovines</b>, think.", text="A cow moos.",
                       drip=0.05))
    seen = []

    def watch(change):      # runs in submit(), before the worker starts: nothing is missed
        if change["new"]:
            change["new"][-1].thinking.observe(lambda c: seen.append(c["new"]), "value")
    panel.transcript.observe(watch, "children")
    worker = panel.submit("What is a cow?")
    panel.transcript.unobserve(watch, "children")
    worker.join(5)
    assert any("💭 Thinking…" in v for v in seen)               # live, while thinking
    final = panel.transcript.children[-1]       # re-rendered from the conversation
    assert final.text == "A cow moos."
    assert final.thinking.value.startswith('<details class="cfai-reasoning"><summary>'
                                           "💭 Reasoning (4 words)")
    assert "&lt;b&gt;bovines&lt;/b&gt;" in final.thinking.value
    assert "<p>A cow moos.</p>" in final.body.outputs[0]["data"]["text/html"]
    assert "(4 reasoning)" in panel.status.value
    panel.submit("And a bull?").join(5)
    assert "bovines" not in str(fake.last.body["messages"])
    cfai(ip, f"-m {glm}", "and a calf?")                         # a cell continues it too
    assert "bovines" not in str(fake.last.body["messages"])


def test_panel_shows_an_empty_answer_as_one_error_line(panel, fake):
    fake.enqueue(Reply(chunks=[], reasoning="hmm", finish_reason="length",
                       dialect="chat"))
    panel.submit("Think hard").join(5)
    assert "EmptyAnswer" in panel.error.value and "spent all 256 tokens" in panel.error.value
    assert panel.conversation.turns == []


def test_panel_on_the_openai_protocol_streams_and_stops(panel, fake, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", fake.token)         # an engine's own key
    panel.session.set_backend(fake.openai_url, "openai")
    fake.enqueue(Reply.large(300, "tale ", drip=0.02))
    worker = panel.submit("A long story")
    wait_for(lambda: panel.transcript.children[-1].text.count("tale") >= 3)
    panel.stop_answer()
    worker.join(5)
    assert "interrupted" in panel.status.value
    assert 3 <= panel.transcript.children[-1].text.count("tale") < 300
    assert fake.last.path.endswith("/ai/v1/chat/completions")
    kept, = panel.conversation.turns
    assert kept.interrupted and kept.answer.count("tale") == \
        panel.transcript.children[-1].text.count("tale")
    fake.enqueue(Reply(text="Short one."))
    panel.submit("A short story").join(5)
    assert [t.answer for t in panel.conversation.turns] == [kept.answer, "Short one."]


def test_cells_run_while_the_panel_streams_keep_their_turns(panel, ip, fake):
    """The panel streams slowly; two cells complete meanwhile; nothing is lost."""
    fake.enqueue(Reply.large(40, "drop ", drip=0.05))
    worker = panel.submit("long one")
    wait_for(lambda: any(r.kind == "run" and (r.body.get("messages") or [{}])[-1].get("content")
                         == "long one" for r in list(fake.requests)))
    cfai(ip, "", "cell one")
    cfai(ip, "", "cell two")
    worker.join(10)
    assert [t.messages[-1]["content"] for t in panel.conversation.turns] == [
        "cell one", "cell two", "long one"]
    history = run(ip, "%cfai history").stdout
    assert "user: cell one" in history and "user: cell two" in history


def test_a_long_conversation_does_not_pile_up_widgets(panel, ip, fake):
    """Each change re-created the whole transcript and never closed the old widgets: widgets
    (and kernel memory) grew with the square of the turns."""
    from ipywidgets.widgets.widget import _instances
    for i in range(10):
        cfai(ip, "", f"question {i}")
    at_ten = len(_instances)
    for i in range(10, 20):
        cfai(ip, "", f"question {i}")
    per_turn = (len(_instances) - at_ten) / 10
    assert len(panel.transcript.children) == 40
    assert per_turn <= 24, per_turn     # two messages' widgets, with their layouts and styles
    at_twenty = len(_instances)
    panel.render_transcript()                       # nothing changed: nothing made
    assert len(_instances) == at_twenty
    panel.start_new_chat()                          # everything closed...
    panel.chats.value = "default"                   # ...and made again, no more than before
    assert len(_instances) <= at_twenty
    panel.submit("one more").join(5)
    assert len(panel.transcript.children) == 42


def test_the_panel_shows_the_latest_turns_of_a_long_conversation(panel, ip, fake, monkeypatch):
    from ipywidgets.widgets.widget import _instances

    from cfai_magic import widget
    monkeypatch.setattr(widget, "SHOWN_TURNS", 5)
    for i in range(5):
        cfai(ip, "", f"q{i}")
    full = len(_instances)
    for i in range(5, 12):
        cfai(ip, "", f"q{i}")
    assert len(_instances) == full               # older turns' widgets closed as new come
    kids = panel.transcript.children
    assert "7 earlier turns" in kids[0].value and len(kids) == 1 + 5 * 2
    assert [m.text for m in kids[1:]][:2] == ["q7", "Echo: q7"]
    assert len(panel.conversation.turns) == 12
