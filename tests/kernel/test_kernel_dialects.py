"""Today's Workers AI in a real kernel: the chat.completion dialect (streamed, whole, as
text_completion, as JSON to a streaming request) and the OpenAI-compatible protocol. Each
answer's text streams; reasoning shows apart and is absent from _cfai and from the next
request; usage lands in the footer."""
import pytest

from cfai_magic.testing import Reply
from kernelkit import Kernel, displays

pytestmark = pytest.mark.kernel
GLM = "@cf/zai-org/glm-4.7-flash"
TEXT = "A cow is a large domesticated mammal. " * 6
THOUGHT = "The user asks about cows, so I will describe them."


@pytest.fixture(params=["workers-ai", "openai"])
def protocol_kernel(request, fake_workers_ai, tmp_path):
    k = Kernel(fake_workers_ai.env(request.param), cwd=str(tmp_path))
    k.protocol = request.param
    yield k
    k.close()


@pytest.mark.parametrize("flags,reply,streams", [
    ("", Reply(text=TEXT, reasoning=THOUGHT, drip=0.02), True),
    ("--no-stream", Reply(text=TEXT, reasoning=THOUGHT), False),
    ("", Reply(text=TEXT, reasoning=THOUGHT, dialect="text", drip=0.02), True),
    ("", Reply(text=TEXT, reasoning=THOUGHT, json_for_stream=True), False),
], ids=["stream", "no-stream", "text_completion", "json-for-stream"])
def test_todays_answers_in_a_kernel(protocol_kernel, fake_workers_ai, flags, reply, streams):
    kernel = protocol_kernel
    if kernel.protocol == "openai" and reply.dialect == "text":
        reply.dialect = "chat"       # /chat/completions always answers chat.completion
    kernel.run("%load_ext cfai_magic")
    fake_workers_ai.enqueue(reply)
    messages, result = kernel.run(f"%%cfai -m {GLM} {flags}\nWhat is a cow?")
    assert result["content"]["status"] == "ok", result["content"]
    shown = displays(messages)
    final = shown[-1]["content"]
    md, plain = final["data"]["text/html"], final["data"]["text/plain"]
    thought = THOUGHT if reply.dialect != "text" else ""
    if streams:                          # the text grew over several updates
        partial = [m["content"]["data"]["text/html"] for m in shown[1:-1]]
        assert any("A cow is" in p and TEXT.strip() not in p for p in partial), len(partial)
    if thought:
        block, rest = md.split("</details>\n\n", 1)
        assert "💭 Reasoning (10 words)" in block and thought in block
        assert f"<p>{TEXT.strip()}</p>" in rest.split("<sub>✓")[0]
    else:
        assert f"<p>{TEXT.strip()}</p>" in md.split("<sub>✓")[0]
    tokens = len(TEXT.split()) + (len(THOUGHT.split()) if thought else 0)
    assert f"✓ {GLM} · " in plain and f" in · {tokens} out" in plain
    if thought:
        assert f"{tokens} out ({len(THOUGHT.split())} reasoning)" in plain
    assert kernel.value("_cfai") == repr(TEXT)
    assert kernel.value("_cfai_answer.reasoning") == repr(thought)
    assert final["metadata"]["cfai"]["usage"]["completion_tokens"] == tokens
    # the next turn carries the answer and not the reasoning
    kernel.run(f"%%cfai -m {GLM}\nAnd a horse?")
    last = fake_workers_ai.last
    sent = last.body["messages"]
    assert sent == [{"role": "user", "content": "What is a cow?"},
                    {"role": "assistant", "content": TEXT},
                    {"role": "user", "content": "And a horse?"}]
    if kernel.protocol == "openai":
        assert last.path.endswith("/ai/v1/chat/completions") and last.body["model"] == GLM
        assert last.body["stream_options"] == {"include_usage": True}
    else:
        assert last.path.endswith(f"/ai/run/{GLM}")


def test_empty_and_reasoning_only_answers_end_in_one_line(protocol_kernel, fake_workers_ai):
    kernel = protocol_kernel
    kernel.run("%load_ext cfai_magic")
    kernel.run(f"%%cfai -m {GLM}\nfirst")
    fake_workers_ai.enqueue(Reply(chunks=[]),
                            Reply(chunks=[], reasoning="hmm " * 30, finish_reason="length"))
    _, empty = kernel.run(f"%%cfai -m {GLM}\nsecond")
    _, thinking = kernel.run(f"%%cfai -m {GLM} --max-tokens 30\nthird")
    for reply in (empty, thinking):
        assert reply["content"]["status"] == "error"
        assert reply["content"]["ename"] == "EmptyAnswer"
        assert len(reply["content"]["traceback"]) == 1
    assert "returned no text (finish reason: stop)" in empty["content"]["traceback"][0]
    assert "spent all 30 tokens reasoning" in thinking["content"]["traceback"][0]
    assert kernel.value("len(__import__('cfai_magic').session.current().store.get().turns)") \
        == "1"


def test_interrupt_keeps_the_partial_on_both_protocols(protocol_kernel, fake_workers_ai):
    import threading
    kernel = protocol_kernel
    kernel.run("%load_ext cfai_magic")
    fake_workers_ai.enqueue(Reply(reasoning="think " * 20, chunks=["tok "] * 3000,
                                  drip=0.002))
    started = threading.Event()

    def interrupt_when_answering(msg):
        data = msg["content"].get("data", {})
        if msg["msg_type"] == "update_display_data" and "tok tok" in data.get("text/plain", "") \
                and not started.is_set():
            started.set()
            threading.Timer(0.3, kernel.km.interrupt_kernel).start()

    msg_id = kernel.send(f"%%cfai -m {GLM}\nlong")
    messages, reply = kernel.collect(msg_id, on_message=interrupt_when_answering)
    assert reply["content"]["ename"] == "Interrupted"
    assert len(reply["content"]["traceback"]) == 1
    final = displays(messages)[-1]["content"]["data"]
    assert "⏹ interrupted" in final["text/plain"] and "💭 Reasoning (20 words)" in \
        final["text/html"]
    assert 0 < final["text/plain"].count("tok ") < 3000
    kernel.run(f"%%cfai -m {GLM}\nnext")
    sent = [m["content"] for m in fake_workers_ai.last.body["messages"]]
    assert sent[0] == "long" and sent[2] == "next"          # what was shown is the context
    assert set(sent[1].split()) == {"tok"} and \
        sent[1].count("tok ") == final["text/plain"].count("tok ")
