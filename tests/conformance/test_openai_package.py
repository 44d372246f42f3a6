"""The official ``openai`` package against both OpenAI-compatible roots of both servers: chat,
streaming with usage, response_format, a full tool round trip, content as parts, models.list,
and errors that carry their messages."""
import json

import pytest

from cfai_magic.testing import Reply

openai = pytest.importorskip("openai")

MODEL = "@cf/zai-org/glm-4.7-flash"
ASK = [{"role": "user", "content": "Why is the sky blue?"}]
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}


@pytest.fixture(params=["v1", "cloudflare-v1"])
def client(request, server):
    root = server.v1 if request.param == "v1" else server.cf_v1
    c = openai.OpenAI(base_url=root, api_key=server.token, max_retries=0)
    yield c
    c.close()


def test_chat(client):
    whole = client.chat.completions.create(model=MODEL, messages=ASK, max_tokens=40)
    assert whole.object == "chat.completion" and whole.choices[0].message.role == "assistant"
    assert whole.choices[0].message.content.strip()
    assert whole.usage.prompt_tokens > 0 and whole.usage.completion_tokens > 0


def test_stream_with_usage(client):
    chunks = list(client.chat.completions.create(
        model=MODEL, messages=ASK, max_tokens=40, stream=True,
        stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip()
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] in ("stop", "length")


def test_response_format(client, server):
    schema = {"type": "object", "properties": {"answer": {"type": "string"},
                                               "sure": {"type": "boolean"}},
              "required": ["answer", "sure"]}
    whole = client.chat.completions.create(
        model=MODEL, messages=ASK, max_tokens=40,
        response_format={"type": "json_schema",
                         "json_schema": {"name": "answer", "schema": schema}})
    content = whole.choices[0].message.content
    if server.kind == "local":
        assert set(json.loads(content)) == {"answer", "sure"}
    else:
        assert content.startswith("Echo: ")


def test_a_full_tool_round_trip(client, server):
    """The second request of every tool loop: an assistant message with content null and
    tool_calls, then the tool's result."""
    if server.fake is not None:               # the fake plays a model that calls the tool
        server.fake.enqueue(Reply(tool_calls=[{"name": "get_weather",
                                               "arguments": {"city": "Paris"}}]))
    first = client.chat.completions.create(model=MODEL, messages=ASK, tools=[WEATHER],
                                           tool_choice="auto", max_tokens=40)
    message = first.choices[0].message
    if server.fake is not None:
        assert message.content in ("", None) and first.choices[0].finish_reason == "tool_calls"
        assert json.loads(message.tool_calls[0].function.arguments) == {"city": "Paris"}
        assert server.fake.last.body["tools"] == [WEATHER]
    call_id = message.tool_calls[0].id if message.tool_calls else "call_0"
    second = client.chat.completions.create(model=MODEL, max_tokens=40, tools=[WEATHER],
                                            messages=[*ASK, {
        "role": "assistant", "content": None, "tool_calls": [
            {"id": call_id, "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "tool_call_id": call_id, "content": '{"sky": "clear"}'}])
    assert second.choices[0].message.content.strip()


def test_content_as_parts(client, server):
    whole = client.chat.completions.create(model=MODEL, max_tokens=40, messages=[
        {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
        {"role": "user", "content": [{"type": "text", "text": "Why is the sky"},
                                     {"type": "text", "text": "blue?"}]}])
    assert whole.choices[0].message.content.strip()
    if server.kind == "fake":
        assert whole.choices[0].message.content == "Echo: Why is the sky\nblue?"


def test_an_image_to_a_model_that_cannot_see(client, server):
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="@cf/meta/llama-3.1-8b-instruct-fast",
                                       max_tokens=10, messages=[
            {"role": "user", "content": [{"type": "text", "text": "What is this?"}, image]}])
    assert "takes no image input" in str(info.value)
    assert "/messages/0/content/1" in str(info.value)


def test_models_list(client):
    ids = [m.id for m in client.models.list()]
    assert MODEL in ids and "@cf/meta/llama-2-7b-chat-int8" in ids


def test_errors_carry_their_messages(client, server):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="no-such-model", messages=ASK)
    assert "No such model" in info.value.message
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="@cf/meta/llama-2-7b-chat-int8", messages=ASK,
                                       max_tokens=99_999)
    assert "over the 1800-token limit" in info.value.message
    wrong = openai.OpenAI(base_url=str(client.base_url), api_key="wrong-key-0000000",
                          max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        wrong.chat.completions.create(model=MODEL, messages=ASK)
    assert "Authentication error" in info.value.message
    wrong.close()


@pytest.mark.real
def test_the_real_model_at_both_roots(client, server):
    whole = client.chat.completions.create(model=MODEL, messages=ASK, max_tokens=16, seed=3,
                                           temperature=0)
    assert whole.choices[0].message.content.strip()
