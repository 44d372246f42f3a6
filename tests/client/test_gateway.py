"""AI Gateway through the client, against FakeWorkersAI over real HTTP: the header form (the
unified REST API) and the URL form, the cache's headers and its HIT, the log's payload setting
and the metadata; what a backend without a gateway refuses."""
import json

import pytest

from cfai_magic import backends, errors
from cfai_magic.client import WorkersAI
from cfai_magic.config import Secret
from cfai_magic.gateway import Options, headers, metadata
from cfai_magic.usage import cost_of
from cfai_magic.models import CURRENT

GLM = "@cf/zai-org/glm-4.7-flash"


def gateway_client(fake, **kw):
    kw.setdefault("backoff", 0.01)
    return WorkersAI(fake.account_id, fake.token, base_url=fake.url, gateway="my-gw", **kw)


def sent(request) -> dict:
    return {k.lower(): v for k, v in request.headers.items()}


def test_the_header_form_goes_to_cloudflares_api_with_the_gateway_named(fake_workers_ai):
    fake = fake_workers_ai
    fake.enqueue("via gateway")
    with gateway_client(fake) as client:
        assert client.run("llama2", prompt="x").text == "via gateway"
    req = fake.last
    assert req.path == (f"/client/v4/accounts/{fake.account_id}/ai/run/"
                        "@cf/meta/llama-2-7b-chat-fp16")
    assert sent(req)["cf-aig-gateway-id"] == "my-gw" and req.gateway == "my-gw"
    assert req.authorized                                  # the token went with it: Cloudflare's


def test_the_url_form_is_kept_as_an_option(fake_workers_ai):
    fake = fake_workers_ai
    with WorkersAI(fake.account_id, fake.token, base_url=fake.gateway_url, gateway="my-gw",
                   gateway_form="url") as client:
        client.run("llama2", prompt="x")
    req = fake.last
    assert req.path == f"/v1/{fake.account_id}/my-gw/workers-ai/@cf/meta/llama-2-7b-chat-fp16"
    assert "cf-aig-gateway-id" not in sent(req) and req.gateway == "my-gw"


def test_the_default_roots_of_both_forms():
    header = WorkersAI("acct", "tok", gateway="gw")
    assert header.url("@cf/x/y") == "https://api.cloudflare.com/client/v4/accounts/acct/ai/run/@cf/x/y"
    assert header.backend.kind == "gateway" and header.backend.billed
    url = WorkersAI("acct", "tok", gateway="gw", gateway_form="url")
    assert url.url("@cf/x/y") == "https://gateway.ai.cloudflare.com/v1/acct/gw/workers-ai/@cf/x/y"


def test_the_cache_headers_are_sent_as_set_and_a_hit_costs_nothing(fake_workers_ai):
    fake = fake_workers_ai
    fake.enqueue("cached words")
    options = Options(cache_ttl=3600, cache_key="lesson-1").check()
    with gateway_client(fake, gateway_options=options) as client:
        first = client.run(GLM, prompt="same question")
        second = client.run(GLM, prompt="same question")
    assert sent(fake.requests[0])["cf-aig-cache-ttl"] == "3600"
    assert sent(fake.requests[0])["cf-aig-cache-key"] == "lesson-1"
    assert (first.cache, second.cache) == ("MISS", "HIT")
    assert second.text == first.text == "cached words" and fake.pending() == 0   # one answer
    model = next(m for m in CURRENT if m.id == GLM)
    assert cost_of(model, first)["usd"] > 0 and cost_of(model, second) == {"usd": 0.0,
                                                                            "billed": True}
    assert second.metadata()["cache"] == "hit"


def test_no_cache_skips_it_and_an_expired_answer_is_asked_again(fake_workers_ai):
    fake = fake_workers_ai
    now = [1000.0]
    fake.clock = lambda: now[0]
    fake.enqueue("one", "two", "three")
    ttl = Options(cache_ttl=60)
    with gateway_client(fake, gateway_options=ttl) as client:
        assert client.run(GLM, prompt="q").text == "one"
        client.gateway_options = Options(no_cache=True)
        skipped = client.run(GLM, prompt="q")
        assert skipped.text == "two" and skipped.cache is None
        assert sent(fake.last)["cf-aig-skip-cache"] == "true"
        client.gateway_options = ttl
        assert client.run(GLM, prompt="q").cache == "HIT"
        now[0] += 61
        assert client.run(GLM, prompt="q").text == "three"


def test_log_payload_and_metadata_reach_the_gateway_log(fake_workers_ai):
    fake = fake_workers_ai
    tags = metadata("/home/ada/lessons/week 3.ipynb", "default", "cell")
    options = Options(log_payload=False, metadata=tags)
    with gateway_client(fake, gateway_options=options) as client:
        client.run(GLM, prompt="a private prompt")
    headers_sent = sent(fake.last)
    assert headers_sent["cf-aig-collect-log-payload"] == "false"
    assert json.loads(headers_sent["cf-aig-metadata"]) == tags
    assert tags["notebook"] == "week 3.ipynb" and set(tags) == {"client", "notebook", "chat", "via"}
    log = fake.gateway_log[-1]
    assert log["request"] is None and log["metadata"]["notebook"] == "week 3.ipynb"
    assert fake.token not in json.dumps(log) and "private" not in headers_sent["cf-aig-metadata"]


def test_metadata_keeps_five_entries_and_escapes_what_a_header_cannot_hold():
    backend = backends.cloudflare("acct", Secret("t" * 40), "workers-ai", gateway="gw")
    many = {f"k{i}": i for i in range(8)} | {"name": "line\r\nX-Evil: 1 ünïcode"}
    out = headers(backend, Options(metadata=many))
    value = out["cf-aig-metadata"]
    assert len(json.loads(value)) == 5 and "\r" not in value and "\n" not in value
    assert value.isascii()


@pytest.mark.parametrize("bad, words", [
    (Options(cache_ttl=10, asked=True), "out of range"),
    (Options(cache_key="has space", asked=True), "printable"),
])
def test_bad_cache_settings_are_refused_before_sending(bad, words):
    with pytest.raises(errors.InputError, match=words):
        bad.check()


def test_the_cache_without_a_gateway_is_one_line_and_nothing_is_sent(fake_workers_ai):
    fake = fake_workers_ai
    with fake.client(gateway_options=Options(cache_ttl=600, asked=True)) as client, \
            pytest.raises(errors.InputError, match="no gateway; nothing was sent"):
        client.run(GLM, prompt="x")
    assert fake.requests == []


def test_an_engine_has_no_gateway_and_a_bad_name_is_refused():
    with pytest.raises(errors.ConfigError, match="AI Gateway is Cloudflare's"):
        WorkersAI(base_url="http://127.0.0.1:9/v1", protocol="openai", gateway="gw")
    with pytest.raises(errors.InputError, match="gateway name"):
        WorkersAI("acct", "tok", gateway="a/../b")
    with pytest.raises(errors.ConfigError, match="URL form serves /ai/run only"):
        WorkersAI("acct", "tok", gateway="gw", gateway_form="url", protocol="openai")


def test_the_batch_api_names_the_gateway_too(fake_workers_ai):
    fake = fake_workers_ai
    with gateway_client(fake) as client:
        result = client.queue("@cf/meta/llama-3.3-70b-instruct-fp8-fast",
                              {"requests": [{"prompt": "a", "external_reference": "row-0"}]})
    assert result["status"] == "queued" and sent(fake.last)["cf-aig-gateway-id"] == "my-gw"
