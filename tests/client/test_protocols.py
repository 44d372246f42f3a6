"""Both /ai/run dialects and the OpenAI-compatible protocol, over real HTTP against the fake."""
import json

import pytest

from cfai_magic import errors
from cfai_magic.client import Done, Reasoning, Text, ToolCall, Usage
from cfai_magic.client.protocols import openai, workers_ai
from cfai_magic.testing import Reply

GLM = "@cf/zai-org/glm-4.7-flash"
LLAMA = "@cf/meta/llama-3.1-8b-instruct-fast"
ASK = [{"role": "user", "content": "What is a cow?"}]


@pytest.fixture(params=["workers-ai", "openai"])
def any_client(request, fake_workers_ai):
    c = fake_workers_ai.client(protocol=request.param)
    yield c
    c.close()


def test_chat_completion_dialect_streams_text_and_reasoning_apart(client, fake_workers_ai):
    fake_workers_ai.enqueue(Reply(text="A cow is a mammal.", reasoning="Okay, the user asks."))
    answer = client.stream(GLM, messages=ASK)
    events = list(answer.events())
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["Reasoning"] * 4 + ["Text"] * 5 + ["Usage", "Done"]   # the last total
    assert answer.text == "A cow is a mammal." and answer.reasoning == "Okay, the user asks."
    assert answer.usage["completion_tokens"] == 9          # 4 words of reasoning, 5 of text
    assert answer.usage["completion_tokens_details"] == {"reasoning_tokens": 4}
    assert answer.finish_reason == "stop" and answer.done
    # what arrived was the chat.completion.chunk dialect, in the v4 API's /ai/run
    assert fake_workers_ai.last.path.endswith(f"/ai/run/{GLM}")


def test_chat_completion_dialect_whole(client, fake_workers_ai):
    fake_workers_ai.enqueue(Reply(text="A **cow** is ...", reasoning="Okay, ..."))
    answer = client.run(GLM, messages=ASK)
    assert answer.text == "A **cow** is ..." and answer.reasoning == "Okay, ..."
    assert answer.usage["total_tokens"] == answer.usage["prompt_tokens"] + 6


def test_reasoning_field_named_reasoning():
    decoder = workers_ai.Decoder()
    obj = {"result": {"choices": [{"message": {"reasoning": "think", "content": "x"},
                                   "finish_reason": "stop"}]}}
    assert decoder.whole(obj)[:2] == [Reasoning("think"), Text("x")]
    assert decoder.chunk({"choices": [{"delta": {"reasoning": "t"}}]}) == [Reasoning("t")]


def test_text_completion_dialect(client, fake_workers_ai):
    fake_workers_ai.enqueue(Reply(text="Once upon a time", dialect="text"),
                            Reply(text="Once upon a time", dialect="text"))
    assert list(client.stream(GLM, prompt="Tell a story")) == ["Once ", "upon ", "a ", "time"]
    assert client.run(GLM, prompt="Tell a story").text == "Once upon a time"


def test_json_answer_to_a_streaming_request_is_one_chunk(client, fake_workers_ai):
    fake_workers_ai.enqueue(Reply(text="Whole answer at once", reasoning="r",
                                  json_for_stream=True))
    answer = client.stream("@cf/openai/gpt-oss-20b", messages=ASK)
    assert list(answer) == ["Whole answer at once"]
    assert answer.reasoning == "r" and answer.done and answer.usage["completion_tokens"] == 5


def test_legacy_dialect_padding_json_mode_and_tool_calls(client, fake_workers_ai):
    fake_workers_ai.enqueue(Reply(chunks=["Hel", "lo"], extra={"p": "abcdefgh"}))
    assert "".join(client.stream(LLAMA, prompt="x")) == "Hello"
    calls = [{"name": "get_weather", "arguments": {"city": "Lisbon"}}]
    fake_workers_ai.enqueue(Reply(chunks=[], tool_calls=calls))
    answer = client.stream(LLAMA, messages=ASK)
    events = list(answer.events())
    assert ToolCall("get_weather", {"city": "Lisbon"}) in events
    assert answer.finish_reason == "tool_calls" and answer.text == ""
    fake_workers_ai.enqueue(Reply(chunks=[], tool_calls=calls))
    assert client.run(LLAMA, messages=ASK).tool_calls == [ToolCall("get_weather",
                                                                   {"city": "Lisbon"})]
    # JSON mode: result.response is an object
    obj = {"result": {"response": {"name": "cow", "legs": 4}}, "success": True}
    assert workers_ai.Decoder().whole(obj)[0] == Text('{"name": "cow", "legs": 4}')


def test_chat_tool_calls_are_put_together_from_pieces(any_client, fake_workers_ai):
    calls = [{"name": "lookup", "arguments": {"q": "cows", "n": 3}},
             {"name": "add", "arguments": {"a": 1}}]
    fake_workers_ai.enqueue(Reply(chunks=[], tool_calls=calls, dialect="chat"))
    answer = any_client.stream(GLM, messages=ASK)
    answer.consume()
    assert answer.tool_calls == [ToolCall("lookup", {"q": "cows", "n": 3}, "call_0"),
                                 ToolCall("add", {"a": 1}, "call_1")]
    assert answer.finish_reason == "tool_calls"


def test_usage_with_cached_and_reasoning_details(client, fake_workers_ai):
    usage = {"prompt_tokens": 13, "completion_tokens": 22, "total_tokens": 35,
             "prompt_tokens_details": {"cached_tokens": 8},
             "completion_tokens_details": {"reasoning_tokens": 10}}
    fake_workers_ai.enqueue(Reply(text="ok", usage=usage), Reply(text="ok", usage=usage))
    assert client.stream(GLM, messages=ASK).consume().usage == usage
    assert client.run(GLM, messages=ASK).usage == usage


def test_openai_protocol_request_shape(fake_workers_ai):
    client = fake_workers_ai.client(protocol="openai")
    fake_workers_ai.enqueue(Reply(text="A cow.", reasoning="think"))
    answer = client.stream(GLM, prompt="What is a cow?", max_tokens=50, temperature=0.1)
    assert list(answer) == ["A ", "cow."] and answer.reasoning == "think"
    req = fake_workers_ai.last
    assert req.path.endswith(f"/accounts/{fake_workers_ai.account_id}/ai/v1/chat/completions")
    assert req.body == {"model": GLM, "messages": [{"role": "user", "content": "What is a cow?"}],
                        "max_tokens": 50, "temperature": 0.1, "stream": True,
                        "stream_options": {"include_usage": True}}
    assert answer.usage["completion_tokens"] == 3          # from the last, usage-only chunk
    fake_workers_ai.enqueue(Reply(text="Moo."))
    whole = client.run(GLM, messages=ASK)
    assert whole.text == "Moo." and fake_workers_ai.last.body["stream"] is False
    assert "stream_options" not in fake_workers_ai.last.body


def test_openai_protocol_any_model_name(fake_workers_ai):
    """An engine names its own models: the catalog does not refuse them."""
    client = fake_workers_ai.client(protocol="openai")
    with pytest.raises(errors.ModelNotFound):     # the server is the judge
        client.run("meta-llama/Llama-3.1-8B-Instruct", prompt="x")


@pytest.mark.parametrize("root", ["v1", "v4"])
def test_openai_protocol_errors_in_both_shapes(fake_workers_ai, root):
    host = fake_workers_ai.url.rsplit("/client/v4", 1)[0]
    base = f"{host}/v1" if root == "v1" else fake_workers_ai.openai_url
    from cfai_magic.client import WorkersAI
    client = WorkersAI(None, "wrong-token", base_url=base, protocol="openai", max_retries=0)
    with pytest.raises(errors.AuthError) as info:
        client.run(GLM, prompt="x")
    assert "Authentication error" in str(info.value)
    assert "wrong-token" not in str(info.value)


def test_openai_error_body_is_read():
    err = errors.from_response(400, {"error": {"message": "model not loaded",
                                               "type": "invalid_request_error", "code": None}})
    assert isinstance(err, errors.InvalidRequest) and str(err).startswith("model not loaded")


def test_openai_protocol_retries_and_drops_like_workers_ai(fake_workers_ai):
    client = fake_workers_ai.client(protocol="openai")
    fake_workers_ai.enqueue(Reply(status=429, code=3040, retry_after=0.05),
                            Reply(text="after a wait"))
    assert client.run(GLM, messages=ASK).text == "after a wait"
    assert client.transport.attempts == 2
    fake_workers_ai.enqueue(Reply(text="one two three four", drop_after=3))
    answer = client.stream(GLM, messages=ASK)
    with pytest.raises(errors.StreamError) as info:
        list(answer)
    assert info.value.partial == "one two three " and answer.status == "error"


def test_openai_protocol_needs_no_token_for_a_local_engine(monkeypatch):
    from cfai_magic.client import WorkersAI
    from cfai_magic.testing import FakeWorkersAI
    with FakeWorkersAI(token=None) as engine:            # an engine that wants no key
        url = f"{engine.url.rsplit('/client/v4', 1)[0]}/v1"
        client = WorkersAI(base_url=url, protocol="openai")
        assert client.backend.kind == "engine" and client.backend.token is None
        client.run(GLM, prompt="x")
        assert engine.last.credential == "none"          # no Authorization header at all
        monkeypatch.setenv("OPENAI_API_KEY", "sk-local-key")
        client = WorkersAI(base_url=url, protocol="openai")
        client.run(GLM, prompt="x")
        assert engine.last.credential == "ours"
        assert "sk-local-key" not in repr(client) + repr(client.backend)


def test_openai_protocol_default_root_is_cloudflare_v1(monkeypatch):
    from cfai_magic.client import WorkersAI
    monkeypatch.setenv("CLOUDFLARE_ACCOUNT_ID", "abc123")
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", "t")
    client = WorkersAI(protocol="openai")
    assert client.url(GLM) == \
        "https://api.cloudflare.com/client/v4/accounts/abc123/ai/v1/chat/completions"
    monkeypatch.setenv("CFAI_PROTOCOL", "openai")
    assert WorkersAI().protocol is openai


@pytest.mark.parametrize("model", ["@cf/../..", "@cf/meta/../../x", "@cf/a b/c", "@cf/x?y=1",
                                   "@cf/x#frag", "../x", "@cf/meta/x%2F..", ""])
def test_model_ids_that_would_change_the_path_are_refused(client, fake_workers_ai, model):
    with pytest.raises(errors.InputError):
        client.url(model)
    assert not fake_workers_ai.requests


@pytest.mark.parametrize("account", ["../../other", "a/b", "x?y", ""])
def test_account_ids_and_gateways_are_checked(fake_workers_ai, account):
    from cfai_magic.client import WorkersAI
    import dataclasses
    with pytest.raises(errors.InputError):        # a bad gateway name: refused when made
        client = WorkersAI(account or "ok", "t", base_url=fake_workers_ai.url,
                           gateway=None if account else "../gw")
        client = WorkersAI(backend=dataclasses.replace(client.backend, account_id=account))
        client.run("llama2", prompt="x")
    assert not fake_workers_ai.requests


def test_ids_are_percent_encoded(client):
    assert client.url("@cf/meta/llama-3.1-8b-instruct:fast").endswith(
        "/ai/run/@cf/meta/llama-3.1-8b-instruct%3Afast")


def test_decoders_tolerate_odd_but_valid_events():
    d = openai.Decoder()
    assert d.chunk({"choices": [], "usage": None}) == []
    assert d.chunk({"choices": [], "usage": {"completion_tokens": 3}}) == []   # kept for the end
    assert d.chunk({"choices": [{"delta": {"content": None}, "finish_reason": None}]}) == []
    assert d.chunk({"choices": [{"delta": {}, "finish_reason": "length"}]}) == []
    assert d.end() == [Usage({"completion_tokens": 3}), Done("length")]
    w = workers_ai.Decoder()
    assert w.chunk({"response": "", "usage": {"completion_tokens": 1}}) == \
        [Usage({"completion_tokens": 1})]
    assert w.chunk({"response": "", "p": "xx"}) == []
    with pytest.raises(errors.StreamError):
        w.whole({"success": True})
    with pytest.raises(errors.StreamError):
        openai.Decoder().whole({"object": "chat.completion"})


def test_tool_call_arguments_not_json_are_kept():
    assert openai.arguments('{"a": 1}') == {"a": 1}
    assert openai.arguments("not json") == {"_raw": "not json"}
    assert openai.arguments("[1, 2]") == {"_value": [1, 2]}
    assert json.loads(json.dumps(openai.arguments({"x": [1]}))) == {"x": [1]}


def test_the_model_list_is_read_page_by_page(client, fake_workers_ai):
    from cfai_magic.apiserver import search_item
    from cfai_magic.models import Model
    fake_workers_ai.models = [search_item(Model(f"@cf/test/model-{i}")) for i in range(250)]
    names = [m["name"] for m in client.models()]
    assert names == [f"@cf/test/model-{i}" for i in range(250)]
    assert [r.query["page"] for r in fake_workers_ai.requests] == ["1", "2", "3"]
