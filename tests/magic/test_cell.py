"""%%cfai through an InteractiveShell against FakeWorkersAI."""

import pytest

from cfai_magic.testing import Reply

from shellkit import cfai, run, session, set_cell_id


def test_streams_into_one_display(ip, fake):
    fake.enqueue(chunks=["Hello", " **world**"], drip=0.06)
    out = cfai(ip, "-m llama2", "Say hello")
    assert out.error is None
    ids = {o["transient"]["display_id"] for o in out.outputs}
    assert len(ids) == 1 and not out.outputs[0]["update"] and out.outputs[-1]["update"]
    final = out.final["data"]
    assert "text/markdown" not in final          # Markdown is rendered by us, through the door
    answer, footer = final["text/html"].split("</div>", 1)
    assert answer.endswith("<p>Hello <strong>world</strong></p>\n")
    assert footer.startswith('<div class="cfai-line"><sub>✓ @cf/meta/llama-2-7b-chat-fp16')
    # 7 prompt tokens at $0.556/M and 2 answer tokens at $6.667/M: an estimate (the fake is
    # not Cloudflare), at Workers AI prices
    assert final["text/plain"].startswith("Hello **world**\n✓ @cf/meta/llama-2-7b-chat-fp16 · "
                                          "7 in · 2 out · ≈$0.000017 · ")
    meta = out.final["metadata"]["cfai"]
    assert meta["model"] == "@cf/meta/llama-2-7b-chat-fp16" and meta["backend"] == "fake"
    assert meta["usage"]["completion_tokens"] == 2 and meta["status"] == "done"
    assert ip.user_ns["_cfai"] == "Hello **world**"
    assert fake.last.body == {"messages": [{"role": "user", "content": "Say hello"}], "stream": True,
                              "options": {"rejectIfBusy": True}}    # a cell does not queue


def test_status_line_while_streaming(ip, fake):
    fake.enqueue(chunks=["a"] * 6, drip=0.08)
    out = cfai(ip)
    streaming = [o["data"]["text/plain"] for o in out.outputs[:-1]]
    assert streaming[0].startswith("⏳ @cf/zai-org/glm-4.7-flash · 0 tokens")
    assert any("⏳" in s and " tokens" in s and "tok/s" in s for s in streaming[1:])


def test_updates_are_throttled_but_final_is_whole(ip, fake):
    fake.enqueue(Reply.large(400, "x", drip=0.001))
    out = cfai(ip)
    assert len(out.outputs) <= 2 + 20 * 1.0 + 5          # ~0.5 s of stream at <= 20 updates/s
    assert out.final["data"]["text/plain"].startswith("x" * 400 + "\n✓")


@pytest.mark.parametrize("flag,field,value", [
    ("--max-tokens 77", "max_tokens", 77), ("--temperature 0.3", "temperature", 0.3),
    ("--top-p 0.9", "top_p", 0.9), ("--top-k 40", "top_k", 40), ("--seed 42", "seed", 42)])
def test_sampling_options_reach_the_body(ip, fake, flag, field, value):
    cfai(ip, flag)
    assert fake.last.body[field] == value


def test_model_by_id_and_alias(ip, fake):
    cfai(ip, "-m @cf/mistral/mistral-7b-instruct-v0.1")
    assert fake.last.model == "@cf/mistral/mistral-7b-instruct-v0.1"
    cfai(ip, "--model llama2-int8")
    assert fake.last.model == "@cf/meta/llama-2-7b-chat-int8"


def test_system_prompt_is_kept_for_the_conversation(ip, fake):
    cfai(ip, "-s 'You are terse.'", "One")
    cfai(ip, "", "Two")
    msgs = fake.last.body["messages"]
    assert msgs[0] == {"role": "system", "content": "You are terse."}
    assert [m["content"] for m in msgs[1:]] == ["One", "Echo: One", "Two"]


def test_conversation_continues_and_named_chats_are_separate(ip, fake):
    cfai(ip, "", "first")
    cfai(ip, "--chat other", "elsewhere")
    cfai(ip, "", "second")
    assert [m["content"] for m in fake.last.body["messages"]] == \
        ["first", "Echo: first", "second"]
    cfai(ip, "--chat other", "again")
    assert [m["content"] for m in fake.last.body["messages"]] == \
        ["elsewhere", "Echo: elsewhere", "again"]


def test_new_starts_afresh(ip, fake):
    cfai(ip, "", "first")
    cfai(ip, "--new", "fresh")
    assert fake.last.body["messages"] == [{"role": "user", "content": "fresh"}]
    cfai(ip, "", "next")
    assert len(fake.last.body["messages"]) == 3


def test_once_sends_a_prompt_and_leaves_history(ip, fake):
    cfai(ip, "", "first")
    cfai(ip, "--once", "standalone")
    assert fake.last.body == {"prompt": "standalone", "stream": True,
                              "options": {"rejectIfBusy": True}}
    cfai(ip, "--once", "user: as messages")
    assert fake.last.body["messages"] == [{"role": "user", "content": "as messages"}]
    cfai(ip, "", "second")
    assert [m["content"] for m in fake.last.body["messages"]] == ["first", "Echo: first", "second"]


def test_no_stream(ip, fake):
    fake.enqueue("whole answer")
    out = cfai(ip, "--no-stream")
    assert fake.last.body["stream"] is False
    assert out.final["data"]["text/plain"].startswith("whole answer\n✓")
    assert ip.user_ns["_cfai"] == "whole answer"


def test_format_text(ip, fake):
    fake.enqueue("plain *text*")
    out = cfai(ip, "-f text")
    assert set(out.final["data"]) == {"text/plain"}


def test_format_code_puts_the_code_in_a_new_cell(ip, fake):
    fake.enqueue("Here:\n```python\nprint('hi')\n```\nand\n```\nx = 1\n```\n")
    cfai(ip, "-f code", "write code")
    assert ip.rl_next_input == "print('hi')\n\nx = 1"


def test_format_json_and_out(ip, fake):
    fake.enqueue('Sure:\n```json\n{"a": [1, 2]}\n```')
    out = cfai(ip, "-f json --out answer", "give json")
    assert out.final["data"]["application/json"] == {"a": [1, 2]}
    assert ip.user_ns["answer"] == {"a": [1, 2]}
    assert ip.user_ns["_cfai"].startswith("Sure:")


def test_out_holds_text(ip, fake):
    fake.enqueue("forty-two")
    cfai(ip, "--out answer")
    assert ip.user_ns["answer"] == "forty-two"


def test_role_lines_become_messages(ip, fake):
    cfai(ip, "", "system: Be brief.\nuser: Line one\nline two\nassistant: Ok.\nuser: And?")
    assert fake.last.body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Line one\nline two"},
        {"role": "assistant", "content": "Ok."}, {"role": "user", "content": "And?"}]


def test_json_cell_with_interpolation(ip, fake):
    ip.user_ns["topic"] = 'quotes " and \n newlines'
    cell = '[{"role": "system", "content": "Answer in {{lang}}"},\n {"role": "user", "content": "About {topic}: {\\"k\\": 1}"}]'
    cfai(ip, "", cell)
    assert fake.last.body["messages"] == [
        {"role": "system", "content": "Answer in {lang}"},
        {"role": "user", "content": 'About quotes " and \n newlines: {"k": 1}'}]


def test_interpolation_in_text(ip, fake):
    class Obj:
        name = "attr-value"
    ip.user_ns.update(obj=Obj(), data={"k": "key-value", 0: "int-key"}, items=["a", "b"])
    cfai(ip, "", "{obj.name} {data[k]} {data[0]} {items[-1]} {missing} {{obj}} "
                 'json {"a": {"b": 1}} code { x: 1 } f"{a!r}"')
    assert fake.last.body["messages"][-1]["content"] == (
        'attr-value key-value int-key b {missing} {obj} json {"a": {"b": 1}} code { x: 1 } '
        'f"{a!r}"')


def test_no_vars(ip, fake):
    ip.user_ns["x"] = 1
    cfai(ip, "--no-vars", "{x}")
    assert fake.last.body["messages"][-1]["content"] == "{x}"


@pytest.mark.parametrize("cell,message", [
    ("   \n  ", "InputError: The cell is empty"),
    ("user: hi\nhuman: hello", "InputError: Unknown role 'human' on line 2"),
    ("Human: hi", "InputError: Unknown role 'Human' on line 1"),
    ("user: hi\nassistant:", "InputError: The assistant: message on line 2 is empty"),
    ('[{"role": "user", "content": "hi"', "InputError: The cell looks like a JSON list of messages but is not valid JSON"),
    ('[{"role": "robot", "content": "hi"}]', "InputError: Message 1 has unknown role 'robot'"),
])
def test_bad_input_is_one_line_and_nothing_is_sent(ip, fake, cell, message):
    out = cfai(ip, "", cell)
    assert out.error is not None
    assert out.stdout.count("\n") == 1 and message in out.stdout
    assert "Traceback" not in out.stdout and fake.requests == []


def test_a_cell_with_no_body_is_a_usage_error(ip, fake):
    from IPython.core.error import UsageError
    out = run(ip, "%%cfai\n")
    assert isinstance(out.error, UsageError) and fake.requests == []


def test_bad_flags_are_a_usage_error(ip, fake):
    from IPython.core.error import UsageError
    out = cfai(ip, "--bogus")
    assert isinstance(out.error, UsageError)
    out = cfai(ip, "--max-tokens many")
    assert isinstance(out.error, UsageError)
    out = cfai(ip, "-f yaml")
    assert isinstance(out.error, UsageError)
    assert fake.requests == []


def test_help_lists_every_option(ip):
    out = run(ip, "%%cfai?")
    doc = ip.find_cell_magic("cfai").__doc__
    for flag in ("--model", "--system", "--max-tokens", "--temperature", "--top-p", "--top-k",
                 "--seed", "--chat", "--new", "--once", "--no-stream", "--format", "--out"):
        assert flag in doc
    assert out.error is None
    line_doc = ip.find_line_magic("cfai").__doc__
    for command in ("model", "models", "history", "reset", "chats", "save", "load", "login",
                    "config", "backend"):
        assert f"%cfai {command}" in line_doc


def test_unknown_model_names_the_closest(ip, fake):
    out = cfai(ip, "-m mistal")
    assert "UnknownModel: Unknown model 'mistal'. Did you mean mistral" in out.stdout
    assert fake.requests == []


def test_limits_are_checked_before_sending(ip, fake):
    out = cfai(ip, "-m llama2-int8 --max-tokens 5000")
    assert "1800-token sequence limit" in out.stdout and fake.requests == []


def test_api_error_is_one_red_line_and_history_is_kept(ip, fake):
    cfai(ip, "", "first")
    fake.enqueue(status=401, code=10000, message="Authentication error")
    out = cfai(ip, "", "second")
    assert out.stdout.strip() == ("\x1b[0;31mAuthError: Authentication error (HTTP 401, code 10000). "
                                  "Check CLOUDFLARE_API_TOKEN (or run %cfai login); the token needs "
                                  "Workers AI permission\x1b[0m")
    assert not out.result.success
    cfai(ip, "", "third")
    assert [m["content"] for m in fake.last.body["messages"]] == ["first", "Echo: first", "third"]


def test_stream_error_keeps_partial_answer_and_history(ip, fake):
    cfai(ip, "", "first")
    fake.enqueue(text="partial answer here", drop_after=2)
    out = cfai(ip, "", "second")
    assert out.final["data"]["text/plain"].startswith("partial answer \n✗ failed")
    assert "StreamError: The connection dropped mid-stream" in out.stdout
    assert out.stdout.count("\n") == 1
    assert ip.user_ns["_cfai"] == "Echo: first"      # the last complete answer, not a part
    assert ip.user_ns["_cfai_answer"].text == "partial answer "
    assert ip.user_ns["_cfai_answer"].status == "error"
    cfai(ip, "", "third")
    assert [m["content"] for m in fake.last.body["messages"]] == ["first", "Echo: first", "third"]


def test_interrupt_keeps_partial_and_history(ip, fake, monkeypatch, interruptible):
    """Interrupted after the sixth chunk is shown: on an event, not a timer (a timer failed 1
    run in 4 on a busy machine, landing before the stream began)."""
    import os
    import signal

    from cfai_magic.render import StreamRenderer
    cfai(ip, "", "first")
    fake.enqueue(Reply.large(200, "w ", drip=0.02))
    feed = StreamRenderer.feed

    def feed_then_interrupt(self, event):
        feed(self, event)
        if self.tokens == 6:
            os.kill(os.getpid(), signal.SIGINT)
    with monkeypatch.context() as patch:
        patch.setattr(StreamRenderer, "feed", feed_then_interrupt)
        out = cfai(ip, "", "second")
    assert out.stdout.startswith("\x1b[0;31mInterrupted: Stopped after 6 chunks. What had "
                                 "arrived is kept in the conversation, marked interrupted")
    final = out.final["data"]["text/plain"]
    assert final.startswith("w w ") and "⏹ interrupted" in final
    assert 5 < final.count("w ") < 200
    kept = session(ip).store.get().turns[-1]          # what the user saw is what the chat holds
    assert kept.interrupted and kept.answer.startswith("w w ") and kept.answer in final
    history = run(ip, "%cfai history").stdout
    assert f"assistant: {kept.answer.strip()}" in history and "⏹ interrupted" in history
    cfai(ip, "", "third")
    assert [m["content"] for m in fake.last.body["messages"]] == \
        ["first", "Echo: first", "second", kept.answer, "third"]


def test_rerun_of_a_cell_rewinds(ip, fake):
    set_cell_id(ip, "cell-A")
    cfai(ip, "", "question v1")
    set_cell_id(ip, "cell-B")
    cfai(ip, "", "follow-up")
    set_cell_id(ip, "cell-A")
    out = cfai(ip, "", "question v2")
    assert fake.last.body["messages"] == [{"role": "user", "content": "question v2"}]
    assert "Re-run: this cell's earlier turn and the 1 after it will be replaced." in \
        out.final["data"]["text/plain"]
    set_cell_id(ip, "cell-B")
    cfai(ip, "", "follow-up v2")
    assert [m["content"] for m in fake.last.body["messages"]] == \
        ["question v2", "Echo: question v2", "follow-up v2"]
    assert len(ip.magics_manager.registry["CfaiMagics"].session.store.get().turns) == 2


def test_failed_rerun_leaves_the_old_turn(ip, fake):
    set_cell_id(ip, "cell-A")
    cfai(ip, "", "v1")
    fake.enqueue(status=500, times=4)
    cfai(ip, "", "v2")
    store = ip.magics_manager.registry["CfaiMagics"].session.store
    assert [t.messages[0]["content"] for t in store.get().turns] == ["v1"]


def test_history_is_trimmed_to_the_context(ip, fake):
    long = "word " * 400       # about 500 tokens a turn with its echo
    for i in range(6):
        fake.enqueue(f"answer {i}")
        cfai(ip, "-m llama2-int8", f"{i} {long}")
    out = cfai(ip, "-m llama2-int8", "last")
    sent = fake.last.body["messages"]
    assert sent[-1]["content"] == "last"
    assert sent[0]["content"].startswith("3 ")      # the oldest turns were left out
    assert "Sent the last 3 of 6 turns: the 3 oldest do not fit the 2,048-token context" \
        in out.final["data"]["text/plain"]
    store = ip.magics_manager.registry["CfaiMagics"].session.store
    assert len(store.get().turns) == 7               # the conversation keeps everything


def test_trimming_keeps_the_system_message(ip, fake):
    cfai(ip, "-m llama2-int8 -s 'Stay on topic.'", "a " * 1500)
    cfai(ip, "-m llama2-int8", "b " * 1500)
    sent = fake.last.body["messages"]
    assert sent[0] == {"role": "system", "content": "Stay on topic."}
    assert sent[1]["content"].startswith("b ")


def test_print_mode_prints_chunks_as_they_come(ip, fake, monkeypatch):
    import builtins

    import cfai_magic.render
    printed = []
    monkeypatch.setattr(cfai_magic.render, "print",
                        lambda *a, **kw: (printed.append(a[0]), builtins.print(*a, **kw)),
                        raising=False)
    run(ip, '%config CfaiMagics.display_mode = "print"')
    fake.enqueue(chunks=["one ", "two ", "three"])
    out = cfai(ip)
    assert printed[:3] == ["one ", "two ", "three"]          # one print a chunk, as it came
    assert out.stdout.startswith("one two three\n✓ @cf/zai-org/glm-4.7-flash · 5 in · 3 out")
    assert out.outputs == []


def test_notices_come_before_the_answer_and_code_is_fenced(ip, fake):
    """In JupyterLab the no-credentials notice came below the answer, in a terminal above it;
    -f code showed unfenced code as a paragraph."""
    set_cell_id(ip, "cell-A")
    cfai(ip, "", "one")
    fake.enqueue("def f(x):\n    return x * 2")
    out = cfai(ip, "-f code", "again")                   # a re-run: a notice
    shown, plain = out.final["data"]["text/html"], out.final["data"]["text/plain"]
    notice, rest = shown.split("</div>", 1)
    assert notice == ('<div class="cfai-line"><sub>Re-run: this cell&#x27;s earlier turn will '
                      'be replaced.</sub>')
    assert '<pre><code class="language-python">def f(x):\n    return x * 2\n</code></pre>' in rest
    assert rest.index("</pre>") < rest.index("<sub>✓ ")
    assert plain.startswith("Re-run: this cell's earlier turn will be replaced.\ndef f(x):")


def test_ten_cells_in_a_row_use_one_connection(ip, fake):
    for i in range(10):
        assert cfai(ip, "", f"cell {i}").error is None
    assert [r.kind for r in fake.requests].count("run") == 10
    # the ten answers share one connection; the model list, fetched beside the first answer,
    # may open its own
    assert fake.connections <= 2
