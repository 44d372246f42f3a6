"""Our client reads the streams Cloudflare's own provider is tested with (cloudflare/ai,
packages/workers-ai-provider/test/stream-text.test.ts, its REST fixtures: the bytes as they
come), with the same results: text, reasoning, tool calls, finish reason, usage."""
import pytest

from cfai_magic.testing import Reply

MODEL = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"
DONE = "data: [DONE]\n\n"


def sse(*events: str, done: str = DONE) -> bytes:
    return ("".join(f"data: {e}\n\n" for e in events) + done).encode()


def chunk(delta: str, finish="null", usage: str = "") -> str:
    return ('{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1751570976,'
            f'"model":"{MODEL}","choices":[{{"index":0,"delta":{delta},"logprobs":null,'
            f'"finish_reason":{finish}}}]' + (f',"usage":{usage}' if usage else "") + "}")


def usage(prompt: int, done: int) -> str:
    return f'{{"prompt_tokens":{prompt},"total_tokens":{prompt + done},"completion_tokens":{done}}}'


WEATHER = '{\\"location\\": \\"London\\"}'
FIXTURES = {
    "legacy": (sse('{"response":"Hello chunk1"}', '{"response":"Hello chunk2"}'),
               dict(text="Hello chunk1Hello chunk2", finish="stop")),
    "no-response-field": (sse('{"response":"Hello chunk1"}', '{"tool_calls":[],"p":"abdefgh"}'),
                          dict(text="Hello chunk1", calls=[], finish="stop")),
    "native-tool-calls": (
        sse('{"tool_calls":[{"id":"call123","type":"function","index":0,"function":'
            f'{{"name":"get_weather","arguments":"{WEATHER}"}}}}]}}', '{"finish_reason":"tool_calls"}'),
        dict(text="", calls=[("get_weather", {"location": "London"}, "call123")],
             finish="tool_calls")),
    "openai-tool-calls": (
        sse('{"choices":[{"delta":{"tool_calls":[{"id":"chatcmpl-tool-abc","type":"function",'
            f'"index":0,"function":{{"name":"get_weather","arguments":"{WEATHER}"}}}}]}},'
            '"finish_reason":null}]}', '{"choices":[{"delta":{},"finish_reason":"tool_calls"}]}'),
        dict(text="", calls=[("get_weather", {"location": "London"}, "chatcmpl-tool-abc")],
             finish="tool_calls")),
    # ends with a bare "[DONE]" line, which is no SSE data field: the body just ends cleanly
    "reasoning-content-running-usage": (
        sse(chunk('{"role":"assistant","content":""}', usage=usage(13, 0)),
            chunk('{"reasoning_content":"Okay"}', usage=usage(13, 3)),
            chunk('{"reasoning_content":","}', usage=usage(13, 4)),
            chunk('{"reasoning_content":" the"}', usage=usage(13, 5)),
            chunk('{"reasoning_content":" user is asking"}', usage=usage(13, 6)),
            chunk('{"content":"A"}', usage=usage(13, 448)),
            chunk('{"content":" **"}', usage=usage(13, 449)),
            chunk('{"content":"cow is cool"}', usage=usage(13, 450)),
            f'{{"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[],'
            f'"usage":{usage(13, 1022)}}}', done="[DONE]\n\n"),
        dict(text="A **cow is cool", reasoning="Okay, the user is asking", finish="stop",
             completion_tokens=1022)),
    "reasoning-field": (
        sse(chunk('{"role":"assistant","content":""}'), chunk('{"reasoning":"Think"}'),
            chunk('{"reasoning":"ing..."}'), chunk('{"content":"Hello"}'),
            chunk('{"content":""}', finish='"stop"'),
            '{"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[]}',
            done="[DONE]\n\n"),
        dict(text="Hello", reasoning="Thinking...", finish="stop")),
}
for reason, expected in (("stop", "stop"), ("length", "length"), ("model_length", "length"),
                         ("error", "error")):
    FIXTURES[f"finish-{reason}"] = (
        sse('{"choices":[{"delta":{"content":"Hello"},"finish_reason":null}]}',
            f'{{"choices":[{{"delta":{{"content":" world"}},"finish_reason":"{reason}"}}]}}'),
        dict(text="Hello world", finish=expected))
FIXTURES["finish-tool-calls"] = (
    sse('{"choices":[{"delta":{"content":"Calling weather"},"finish_reason":null}]}',
        '{"choices":[{"delta":{},"finish_reason":"tool_calls"}]}'),
    dict(text="Calling weather", finish="tool_calls"))
FIXTURES["finish-none"] = (
    sse('{"choices":[{"delta":{"content":"Hello"},"finish_reason":null}]}',
        '{"choices":[{"delta":{"content":" world"},"finish_reason":null}]}'),
    dict(text="Hello world", finish="stop"))
FIXTURES["finish-direct-legacy"] = (
    sse('{"response":"Hello","finish_reason":null}', '{"response":" world","finish_reason":"stop"}'),
    dict(text="Hello world", finish="stop"))
FIXTURES["finish-last-wins"] = (
    sse('{"choices":[{"delta":{"content":"Hello"},"finish_reason":"length"}]}',
        '{"choices":[{"delta":{"content":" world"},"finish_reason":"stop"}]}'),
    dict(text="Hello world", finish="stop"))


@pytest.mark.parametrize("name", list(FIXTURES))
def test_the_providers_fixture(client, fake_workers_ai, name):
    wire, expected = FIXTURES[name]
    fake_workers_ai.enqueue(Reply(wire=wire))
    answer = client.stream(MODEL, prompt="test")
    text = "".join(answer)
    assert answer.done, answer.error
    assert text == expected["text"]
    assert answer.reasoning == expected.get("reasoning", "")
    if "calls" in expected:
        assert [(c.name, c.arguments, c.id) for c in answer.tool_calls] == expected["calls"]
    assert answer.finish_reason == expected["finish"]
    if "completion_tokens" in expected:
        assert answer.usage["completion_tokens"] == expected["completion_tokens"]


def test_an_empty_json_answer_to_a_stream_is_asked_again_unstreamed(client, fake_workers_ai):
    fake_workers_ai.enqueue(
        Reply(json={"result": {}, "success": True, "errors": [], "messages": []}),
        Reply(json={"result": {"response": "Hello from non-streaming fallback!"}}))
    answer = client.stream(MODEL, prompt="Hello")
    assert "".join(answer) == "Hello from non-streaming fallback!" and answer.done
    assert [r.body["stream"] for r in fake_workers_ai.requests] == [True, False]
    assert answer.finish_reason == "stop"
