"""The official ``cloudflare`` SDK against our servers: ai.run with a prompt and with
messages, in both answer dialects, streamed through with_streaming_response, models.list with
its pagination and filters, and its error classes."""
import json

import pytest

cloudflare = pytest.importorskip("cloudflare")

LEGACY = "@cf/meta/llama-2-7b-chat-int8"
CHAT = "@cf/zai-org/glm-4.7-flash"
HELLO = [{"role": "system", "content": "You are a friendly assistant"},
         {"role": "user", "content": "What is the origin of the phrase Hello, World"}]


@pytest.fixture
def cf(server):
    client = cloudflare.Cloudflare(api_token=server.token, base_url=server.api_root,
                                   max_retries=0)
    yield client
    client.close()


def test_run_with_a_prompt_answers_the_legacy_shape(cf, server):
    result = cf.ai.run(LEGACY, account_id=server.account, prompt="Tell me a story")
    assert isinstance(result["response"], str) and result["response"].strip()
    assert result["usage"]["completion_tokens"] > 0


def test_run_with_messages_on_todays_model_answers_a_chat_completion(cf, server):
    result = cf.ai.run(CHAT, account_id=server.account, messages=HELLO, max_tokens=40)
    assert result["object"] == "chat.completion"
    message = result["choices"][0]["message"]
    assert message["role"] == "assistant" and message["content"].strip()
    assert result["choices"][0]["finish_reason"] in ("stop", "length")


@pytest.mark.parametrize("model, dialect", [(LEGACY, "legacy"), (CHAT, "chat")])
def test_with_streaming_response(cf, server, model, dialect):
    with cf.ai.with_streaming_response.run(model, account_id=server.account, messages=HELLO,
                                           stream=True, max_tokens=40) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    data = [json.loads(e) for e in events[:-1]]
    if dialect == "legacy":
        text = "".join(d.get("response") or "" for d in data)
        assert "usage" in data[-1]
    else:
        text = "".join((d["choices"][0]["delta"].get("content") or "") for d in data
                       if d.get("choices"))
        assert data[-1]["choices"] == [] and data[-1]["usage"]["completion_tokens"] > 0
        assert all("usage" in d for d in data)              # a running total on each chunk
    assert text.strip()


def test_models_list_pages_to_its_end(cf, server):
    everything = list(cf.ai.models.list(account_id=server.account))   # follows every page
    names = [m["name"] for m in everything]
    assert len(names) == len(set(names)) >= 5 and LEGACY in names
    page = cf.ai.models.list(account_id=server.account, per_page=2, page=2)
    assert len(page.result) == 2 and page.result_info.page == 2
    assert page.result_info.per_page == 2 and page.result_info.total_count == len(names)
    assert page.result_info.count == 2
    meta = [m["name"] for m in cf.ai.models.list(account_id=server.account, author="meta")]
    assert meta and all(n.split("/")[1] == "meta" for n in meta)
    found = list(cf.ai.models.list(account_id=server.account, search="glm"))
    assert CHAT in [m["name"] for m in found]
    assert all("glm" in (m["name"] + m.get("description", "")).lower() for m in found)
    text = list(cf.ai.models.list(account_id=server.account, task="Text Generation"))
    assert len(text) == len(names)
    assert list(cf.ai.models.list(account_id=server.account, task="Translation")) == []


def test_its_error_classes(cf, server):
    with pytest.raises(cloudflare.BadRequestError) as info:
        cf.ai.run("@cf/nobody/no-such-model", account_id=server.account, prompt="x")
    assert "No such model" in str(info.value)
    with pytest.raises(cloudflare.BadRequestError):
        cf.ai.run(LEGACY, account_id=server.account, prompt="x", max_tokens=999_999)
    wrong = cloudflare.Cloudflare(api_token="wrong-token-000000", base_url=server.api_root,
                                  max_retries=0)
    with pytest.raises(cloudflare.AuthenticationError):
        wrong.ai.run(LEGACY, account_id=server.account, prompt="x")
    wrong.close()


@pytest.mark.real
def test_the_real_model_through_the_sdk(cf, server):
    result = cf.ai.run(CHAT, account_id=server.account, messages=HELLO, max_tokens=24,
                       seed=1)
    assert result["object"] == "chat.completion" and result["choices"][0]["message"]["content"]
    assert result["choices"][0]["message"].get("reasoning_content") in (None, "")   # Gemma
