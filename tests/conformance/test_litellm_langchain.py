"""LiteLLM's ``cloudflare/`` provider and langchain-cloudflare's ``ChatCloudflareWorkersAI``
against our servers: completion and streaming; invoke, stream and bind_tools, on both of
langchain-cloudflare's endpoint formats."""
import os

import pytest

from cfai_magic.testing import Reply

MODEL = "@cf/zai-org/glm-4.7-flash"
ASK = [{"role": "user", "content": "Why is the sky blue?"}]


@pytest.fixture(scope="module")
def litellm():
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")   # no fetch at import
    return pytest.importorskip("litellm")


def test_litellm_completion_and_stream(litellm, server):
    kw = dict(model=f"cloudflare/{MODEL}", messages=ASK, api_base=server.cf_v1,
              api_key=server.token, max_tokens=40)
    whole = litellm.completion(**kw)
    assert whole.choices[0].message.content.strip() and whole.usage.completion_tokens > 0
    pieces = [c.choices[0].delta.content or "" for c in litellm.completion(**kw, stream=True)
              if c.choices]
    assert "".join(pieces).strip()


def test_litellm_says_what_failed(litellm, server):
    with pytest.raises(litellm.exceptions.BadRequestError) as info:
        litellm.completion(model="cloudflare/no-such-model", messages=ASK, api_base=server.cf_v1,
                           api_key=server.token)
    assert "No such model" in str(info.value)


@pytest.fixture(params=["workers_ai", "openai_compatible"])
def chat(request, server):
    lc = pytest.importorskip("langchain_cloudflare")
    return lc.ChatCloudflareWorkersAI(model=MODEL, account_id=server.account,
                                      api_token=server.token, base_url=server.api_root,
                                      endpoint_format=request.param, max_tokens=40)


def test_langchain_invoke_and_stream(chat):
    answer = chat.invoke("Why is the sky blue?")
    assert answer.content.strip()
    streamed = "".join(piece.content for piece in chat.stream("Why is the sky blue?"))
    assert streamed.strip()


def get_weather(city: str) -> str:
    """The weather in a city."""
    return "clear"


def test_langchain_bind_tools(chat, server):
    if server.fake is not None:
        server.fake.enqueue(Reply(tool_calls=[{"name": "get_weather",
                                               "arguments": {"city": "Paris"}}]))
    answer = chat.bind_tools([get_weather]).invoke("What is the weather in Paris?")
    sent = server.fake.last.body if server.fake is not None else None
    if sent is not None:
        names = [t.get("function", t).get("name") for t in sent["tools"]]
        assert names == ["get_weather"]
        assert [(c["name"], c["args"]) for c in answer.tool_calls] == [
            ("get_weather", {"city": "Paris"})]
    else:
        assert answer.content.strip()          # the embedded model answers in words
