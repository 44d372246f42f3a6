"""Today's models through %%cfai: reasoning shown apart and never sent back, the reasoning
flags, and answers with no text."""
import pytest

from cfai_magic.testing import Reply

from shellkit import cfai, run

GLM = "@cf/zai-org/glm-4.7-flash"


def test_reasoning_is_shown_apart_and_kept_out_of_the_answer(ip, fake):
    fake.enqueue(Reply(text="A cow is a mammal.", reasoning="The user asks <about> cows."))
    out = cfai(ip, f"-m {GLM}", "What is a cow?")
    assert out.error is None
    shown = out.final["data"]["text/html"]
    block, answer = shown.split("</details>\n\n", 1)
    assert block.startswith('<details class="cfai-reasoning"><summary>💭 Reasoning (5 words)')
    assert "The user asks &lt;about&gt; cows." in block           # escaped, collapsed
    assert "<p>A cow is a mammal.</p>" in answer.split("<sub>✓ " + GLM)[0]
    plain = out.final["data"]["text/plain"]
    assert plain.startswith("💭 reasoning: 5 words (in _cfai_answer.reasoning)\nA cow is")
    assert ip.user_ns["_cfai"] == "A cow is a mammal."
    assert ip.user_ns["_cfai_answer"].reasoning == "The user asks <about> cows."
    meta = out.final["metadata"]["cfai"]
    assert meta["reasoning"] == "The user asks <about> cows." and meta["finish_reason"] == "stop"
    # the next turn sends the answer, never the reasoning
    cfai(ip, f"-m {GLM} --out second", "And a horse?")
    sent = fake.last.body["messages"]
    assert sent[1] == {"role": "assistant", "content": "A cow is a mammal."}
    assert "cows." not in str(sent)
    assert ip.user_ns["second"] == "Echo: And a horse?"
    turn = ip.magics_manager.registry["CfaiMagics"].session.store.get().turns[0]
    assert turn.reasoning == "The user asks <about> cows."


def test_reasoning_streams_live_before_the_answer(ip, fake):
    fake.enqueue(Reply(reasoning="one two three four five six", text="Done.", drip=0.06))
    out = cfai(ip, f"-m {GLM}")
    live = [o["data"]["text/html"] for o in out.outputs[:-1] if "text/html" in o["data"]]
    thinking = [m for m in live if "💭 Thinking…" in m]
    assert thinking, live                      # the summary grows while the model thinks
    assert "Done." not in thinking[0]


def test_footer_shows_usage_with_reasoning_and_cached_tokens(ip, fake):
    usage = {"prompt_tokens": 13, "completion_tokens": 22, "total_tokens": 35,
             "prompt_tokens_details": {"cached_tokens": 8},
             "completion_tokens_details": {"reasoning_tokens": 10}}
    fake.enqueue(Reply(text="ok", reasoning="hm", usage=usage))
    out = cfai(ip, f"-m {GLM}")
    # (13 - 8) input tokens at $0.0605/M, 8 cached at the same (GLM has no cached price),
    # 22 out at $0.40/M: $0.0000096865
    assert f"✓ {GLM} · 13 in · 22 out (10 reasoning) · 8 cached · ≈$0.000010 · " \
        in out.final["data"]["text/plain"]


@pytest.mark.parametrize("line,sent", [
    ("--reasoning high", {"reasoning_effort": "high"}),
    ("--reasoning low", {"reasoning_effort": "low"}),
    ("--no-think", {"chat_template_kwargs": {"enable_thinking": False}}),
    ("-m @cf/openai/gpt-oss-20b --no-think", {"reasoning_effort": "low"}),
])
def test_reasoning_flags_reach_the_body(ip, fake, line, sent):
    model = "" if "-m" in line else f"-m {GLM} "
    cfai(ip, model + line)
    body = fake.last.body
    assert {k: body[k] for k in sent} == sent


def test_bad_reasoning_flag_is_a_usage_error(ip, fake):
    out = cfai(ip, "--reasoning extreme")
    assert type(out.error).__name__ == "UsageError"
    assert not fake.requests


@pytest.mark.parametrize("reply", [
    Reply(chunks=[], finish_reason="stop"),
    Reply(chunks=["", " ", "\n"], finish_reason="stop"),
    Reply(chunks=[], json_for_stream=True, times=2),     # asked again without streaming
    Reply(chunks=[], dialect="legacy"),
    Reply(chunks=[], usage=False, dialect="legacy"),                 # a stream of only [DONE]
], ids=["empty-chat", "blank-chat", "empty-json", "empty-legacy", "only-done"])
def test_an_answer_with_no_text_is_one_line_and_no_turn(ip, fake, reply):
    cfai(ip, f"-m {GLM}", "first")
    fake.enqueue(reply)
    out = cfai(ip, f"-m {GLM}", "second")
    assert type(out.error).__name__ == "EmptyAnswer"
    assert out.stdout.count("\n") == 1 and "returned no text (finish reason: " in out.stdout
    assert "Traceback" not in out.stdout
    session = ip.magics_manager.registry["CfaiMagics"].session
    assert [t.answer for t in session.store.get().turns] == ["Echo: first"]
    assert ip.user_ns["_cfai"] == "Echo: first"


def test_reasoning_only_answer_says_the_budget_went_on_thinking(ip, fake):
    fake.enqueue(Reply(chunks=[], reasoning="Let me think about this " * 5,
                       finish_reason="length"))
    out = cfai(ip, f"-m {GLM} --max-tokens 25", "Prove it")
    assert type(out.error).__name__ == "EmptyAnswer"
    line = out.stdout.strip()
    assert "\n" not in line
    assert f"{GLM} spent all 25 tokens reasoning and wrote no answer (finish reason: length)" \
        in line
    assert "--reasoning low or --no-think" in line and "--max-tokens" in line
    assert "💭 Reasoning (25 words)" in out.final["data"]["text/html"]   # still visible
    session = ip.magics_manager.registry["CfaiMagics"].session
    assert session.store.get().turns == []
    assert ip.user_ns["_cfai_answer"].reasoning.startswith("Let me think")


def test_unexpected_exception_is_one_line_and_the_turn_is_kept(ip, fake, monkeypatch):
    cfai(ip, "", "first")
    from cfai_magic.client.protocols import workers_ai

    def broken(self, obj):
        raise RecursionError("maximum recursion depth exceeded")
    with monkeypatch.context() as patch:
        patch.setattr(workers_ai.Decoder, "chunk", broken)
        out = cfai(ip, "", "second")
    assert type(out.error).__name__ == "Unexpected"
    assert out.stdout.count("\n") == 1 and "Unexpected RecursionError" in out.stdout
    assert "print(_cfai_answer.error.details)" in out.stdout
    details = ip.user_ns["_cfai_answer"].error.details          # the traceback, on request
    assert details.startswith("Traceback") and "in broken" in details and \
        details.rstrip().endswith("RecursionError: maximum recursion depth exceeded")
    session = ip.magics_manager.registry["CfaiMagics"].session
    assert len(session.store.get().turns) == 1
    assert cfai(ip, "", "third").error is None
    assert len(session.store.get().turns) == 2


def test_terminal_print_mode_dims_the_reasoning(ip, fake):
    fake.enqueue(Reply(text="Answer.", reasoning="thinking"))
    ip.run_line_magic("config", "CfaiMagics.display_mode = 'print'")
    out = run(ip, f"%%cfai -m {GLM}\nq")
    assert out.stdout.startswith("\x1b[2m💭 thinking\x1b[0m\nAnswer.\n✓ ")


def test_backend_protocol_switch_reaches_chat_completions(ip, fake, monkeypatch):
    out = run(ip, f"%cfai backend {fake.openai_url} --protocol openai --key-env "
                  "CLOUDFLARE_API_TOKEN")          # on purpose: the fake takes that token
    assert out.stdout == (f"Backend: {fake.openai_url} (protocol openai), key from "
                          "CLOUDFLARE_API_TOKEN\n")
    fake.enqueue(Reply(text="Through the v1 endpoint.", reasoning="ok"))
    assert cfai(ip, f"-m {GLM}", "hello").error is None
    assert fake.last.path.endswith("/ai/v1/chat/completions") and fake.last.body["model"] == GLM
    assert ip.user_ns["_cfai"] == "Through the v1 endpoint."
    # an engine names its own models: any id goes through to it
    cfai(ip, "-m my-org/my-finetune")
    assert fake.last.body["model"] == "my-org/my-finetune"
    config = run(ip, "%cfai config").stdout
    assert "protocol           openai" in config and fake.token not in config
    monkeypatch.setenv("OPENAI_API_KEY", "sk-never-shown")
    assert "sk-never-shown" not in run(ip, "%cfai config").stdout
    assert type(run(ip, "%cfai backend auto --protocol grpc").error).__name__ == "UsageError"
    assert run(ip, "%cfai backend auto --protocol workers-ai").stdout == "Backend: auto\n"
    cfai(ip, "-m llama2")
    assert "/ai/run/" in fake.last.path
