"""What a raw HTTP client sees: both roots' error shapes, other methods, chunked request bodies,
streaming defaults per model, and each id answered in its own dialect on /ai/run."""
import json

import pytest
import requests

LEGACY = "@cf/meta/llama-2-7b-chat-fp16"
CHAT = "@cf/zai-org/glm-4.7-flash"


def post(server, url, body, **kw):
    return requests.post(url, json=body, headers={"Authorization": f"Bearer {server.token}"},
                         timeout=30, **kw)


@pytest.mark.parametrize("root", ["v1", "cf_v1"])
def test_errors_at_both_openai_roots_have_the_openai_shape(server, root):
    r = post(server, f"{getattr(server, root)}/chat/completions",
             {"model": "no-such-model", "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 400
    error = r.json()["error"]
    assert "No such model" in error["message"] and error["type"] == "invalid_request_error"


def test_errors_on_ai_run_have_the_v4_envelope(server):
    r = post(server, server.run_url + "@cf/nobody/nothing", {"prompt": "x"})
    body = r.json()
    assert r.status_code == 400 and body["success"] is False and body["errors"][0]["code"] == 5007


@pytest.mark.parametrize("method", ["HEAD", "OPTIONS", "PUT", "DELETE", "PATCH"])
def test_other_methods_get_405(server, method):
    r = requests.request(method, server.run_url + LEGACY, timeout=10,
                         headers={"Authorization": f"Bearer {server.token}"})
    assert r.status_code == 405 and r.headers["Allow"] == "GET, POST"
    if method != "HEAD":
        assert r.json()["errors"][0]["message"].startswith(f"Method {method} not allowed")
    else:
        assert r.content == b""


def test_a_chunked_request_body_is_read(server):
    payload = json.dumps({"prompt": "Tell me a story", "max_tokens": 8}).encode()
    r = requests.post(server.run_url + LEGACY, data=iter([payload[:10], payload[10:]]),
                      headers={"Authorization": f"Bearer {server.token}",
                               "Content-Type": "application/json"}, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["result"]["response"]


@pytest.mark.parametrize("model, dialect", [(LEGACY, "legacy"), (CHAT, "chat"),
                                            ("@cf/google/gemma-4-26b-a4b-it", "chat"),
                                            ("@cf/meta/llama-3.1-8b-instruct-fast", "legacy")])
def test_each_id_in_its_own_dialect(server, model, dialect):
    whole = post(server, server.run_url + model, {"prompt": "hi", "max_tokens": 8}).json()
    if dialect == "legacy":
        assert isinstance(whole["result"]["response"], str)
    else:
        assert whole["result"]["object"] == "chat.completion"
        assert whole["result"]["choices"][0]["message"]["content"]
    r = post(server, server.run_url + model, {"prompt": "hi", "max_tokens": 8, "stream": True},
             stream=True)
    events = [line[6:] for line in r.iter_lines(decode_unicode=True) if line.startswith("data: ")]
    first = json.loads(events[0])
    assert ("response" in first) == (dialect == "legacy")
    assert events[-1] == "[DONE]"


def test_the_options_field_is_accepted(server):
    r = post(server, server.run_url + CHAT,
             {"prompt": "hi", "max_tokens": 8, "options": {"rejectIfBusy": True}})
    assert r.status_code == 200


def test_streaming_defaults_come_from_the_model(server):
    """The seed pages: 256 tokens by default, 2500 (fp16) or 1800 (int8) when streaming; a
    default never refuses a request, it fits the context."""
    from cfai_magic.apicheck import check_limits
    from cfai_magic.models import SEED
    fp16, int8, _ = SEED
    assert check_limits(fp16, {}, 10) == 256 and check_limits(fp16, {}, 10, stream=True) == 2500
    assert check_limits(int8, {}, 10, stream=True) == 1800
    assert check_limits(fp16, {}, 1000, stream=True) == 3072 - 1000
    r = post(server, server.run_url + LEGACY, {"prompt": "x", "max_tokens": 2501, "stream": True})
    assert r.status_code == 400 and "over the 2500-token limit" in r.text
    if server.model is not None:            # what the local backend asked its model for
        int8 = server.run_url + "@cf/meta/llama-2-7b-chat-int8"
        post(server, int8, {"prompt": "x", "stream": True}).close()
        post(server, int8, {"prompt": "x"}).close()
        assert server.model.asked[-2:] == [1800, 256]
