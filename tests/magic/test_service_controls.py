"""Workers AI's own controls from a notebook (an InteractiveShell against FakeWorkersAI): AI
Gateway by header, its cache in the footer and in %cfai usage, the log's payload setting and the
metadata; rejectIfBusy on cells and not on batches; per-model limits in a batch; LoRA; the
catalog's renamed and non-text ids."""
import dataclasses
import json

import pytest

from cfai_magic import backends
from shellkit import cfai, run, session

GLM = "@cf/zai-org/glm-4.7-flash"
LLAMA70 = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"


def sent(request) -> dict:
    return {k.lower(): v for k, v in request.headers.items()}


@pytest.fixture
def gw(ip, fake):
    out = run(ip, "%cfai backend cloudflare --gateway class-gw")
    assert "through AI Gateway class-gw (cf-aig-gateway-id header)" in out.stdout
    return ip


def test_cells_go_through_the_gateway_by_header_with_metadata(gw, fake):
    session(gw).store.notebook = "/home/ada/course/week1.ipynb"
    out = cfai(gw, f"-m {GLM}", "private words")
    assert out.error is None
    headers = sent(fake.last)
    assert headers["cf-aig-gateway-id"] == "class-gw"
    tags = json.loads(headers["cf-aig-metadata"])
    assert tags == {"client": tags["client"], "notebook": "week1.ipynb", "chat": "default",
                    "via": "cell"}
    assert "private" not in headers["cf-aig-metadata"] and fake.token not in json.dumps(headers)
    assert "cf-aig-cache-ttl" not in headers and "cf-aig-collect-log-payload" not in headers


def test_a_cache_hit_shows_in_the_footer_and_costs_nothing_in_usage(gw, fake):
    fake.enqueue("A cached lesson answer.")
    first = cfai(gw, f"-m {GLM} --once --cache-ttl 3600", "What is a p-value?")
    second = cfai(gw, f"-m {GLM} --once --cache-ttl 3600", "What is a p-value?")
    assert sent(fake.asked[-2])["cf-aig-cache-ttl"] == "3600"
    assert "cache hit" not in first.final["data"]["text/plain"]
    footer = second.final["data"]["text/plain"].splitlines()[-1]
    assert "cache hit" in footer and "$0.0000" in footer
    assert second.final["metadata"]["cfai"]["cache"] == "hit"
    usage = run(gw, "%cfai usage").stdout
    assert "1 answer came from AI Gateway's cache and cost nothing" in usage
    entries = session(gw).ledger.entries
    assert entries[-1].usd == 0.0 and entries[-2].usd > 0


def test_no_cache_and_a_cache_key_per_cell(gw, fake):
    cfai(gw, f"-m {GLM} --once --no-cache --cache-key week-1")
    headers = sent(fake.last)
    assert headers["cf-aig-skip-cache"] == "true" and headers["cf-aig-cache-key"] == "week-1"


def test_settings_set_the_ttl_and_keep_payloads_out_of_the_log(gw, fake):
    run(gw, "%config CfaiMagics.cache_ttl = 600")
    run(gw, "%config CfaiMagics.log_payload = False")
    cfai(gw, f"-m {GLM} --once", "secret data")
    headers = sent(fake.last)
    assert headers["cf-aig-cache-ttl"] == "600"
    assert headers["cf-aig-collect-log-payload"] == "false"
    assert fake.gateway_log[-1]["request"] is None
    run(gw, "%config CfaiMagics.cache_ttl = 5")                  # refused (logged), kept
    assert gw.magics_manager.registry["CfaiMagics"].cache_ttl == 600


def test_the_cache_flags_without_a_gateway_are_one_line_and_nothing_is_sent(ip, fake):
    out = cfai(ip, f"-m {GLM} --cache-ttl 600")
    assert "AI Gateway's, and this backend has no gateway; nothing was sent" in out.stdout
    assert out.stdout.count("\n") == 1 and fake.asked == []
    out = cfai(ip, f"-m {GLM} --cache-ttl 5")                   # refused before any backend
    assert "out of range" in out.stdout and fake.asked == []


def test_the_url_form_and_leaving_the_gateway(ip, fake):
    out = run(ip, "%cfai backend --gateway g2 --gateway-url")
    assert "through AI Gateway g2 (its own URL)" in out.stdout
    assert session(ip).chooser.gateway_form == "url"
    out = run(ip, "%cfai backend --no-gateway")
    assert "AI Gateway" not in out.stdout and session(ip).chooser.gateway is None
    out = run(ip, "%cfai backend --gateway ../x")
    assert "gateway name '../x' is not valid" in out.stdout


# rejectIfBusy -----------------------------------------------------------------------------------
def test_a_busy_model_fails_a_cell_at_once_in_one_line(ip, fake):
    fake.busy.add(GLM)
    out = cfai(ip, f"-m {GLM}", "hello")
    assert len(fake.asked) == 1                                     # not retried
    assert fake.last.body["options"] == {"rejectIfBusy": True}
    line = out.stdout.strip()
    assert line.count("\n") == 0 and "is busy" in line and "--wait" in line and "-m" in line
    assert "Traceback" not in out.stdout and session(ip).store.get("default").turns == []
    assert out.error.__context__ is None and out.error.__cause__ is None    # chained to nothing


def test_wait_queues_for_capacity_instead(ip, fake):
    fake.busy.add(GLM)
    out = cfai(ip, f"-m {GLM} --wait", "hello")
    assert out.error is None and "options" not in fake.last.body
    assert fake.waited == [fake.last]


def test_a_batch_waits_rather_than_fails_on_a_busy_model(ip, fake):
    fake.busy.add(GLM)
    ip.user_ns["rows"] = ["a", "b", "c"]
    out = cfai(ip, f"--map rows -m {GLM} --out answers", "Say {row}")
    assert out.error is None and ip.user_ns["answers"] == ["Echo: Say a", "Echo: Say b",
                                                           "Echo: Say c"]
    assert all("options" not in r.body for r in fake.requests if r.kind == "run")
    assert len(fake.waited) == 3


# per-model limits ---------------------------------------------------------------------------
def test_a_frontier_models_batch_is_paced_at_its_own_limit(ip, fake, monkeypatch):
    real = backends.cloudflare                 # the fake, paced as Cloudflare is
    monkeypatch.setattr(backends, "cloudflare",
                        lambda *a, **k: dataclasses.replace(real(*a, **k), rate=300.0))
    ip.user_ns["rows"] = ["only"]
    out = cfai(ip, "--map rows -m @cf/moonshotai/kimi-k2.6 --out answers", "Say {row}")
    assert out.error is None
    stats = ip.user_ns["_cfai_batch"].stats
    assert stats.per_minute == 20.0                  # the limiter's plan: 3 s between requests
    assert "takes 20/min (50 with gateway credits) on Cloudflare: 1 rows take at least" \
        in out.stdout
    assert "paced at 20/min, @cf/moonshotai/kimi-k2.6's limit" in out.stdout
    ip.user_ns["rows"] = ["other"]
    cfai(ip, f"--map rows -m {GLM} --out answers", "Say {row}")
    assert ip.user_ns["_cfai_batch"].stats.per_minute == 300.0


def test_models_lists_the_new_models_and_their_limits(ip, fake):
    out = run(ip, "%cfai models")
    text = repr(out.outputs[-1]["data"]["text/plain"])
    for model in ("@cf/zai-org/glm-5.3", "@cf/qwen/qwen3.8-27b",
                  "@cf/deepseek-ai/deepseek-v4-flash-0731", "@cf/zai-org/glm-5.3-flash"):
        assert model in text
    html = out.outputs[-1]["data"]["text/html"]
    assert "<th>requests</th>" in html and "20/min (50 with gateway credits)" in html


# LoRA ---------------------------------------------------------------------------------------
def test_lora_is_sent_with_raw_to_a_model_that_takes_it(ip, fake):
    fake.finetunes["my-tutor"] = LLAMA70
    out = cfai(ip, f"-m {LLAMA70} --lora my-tutor --raw", "hello")
    assert out.error is None
    assert fake.last.body["lora"] == "my-tutor" and fake.last.body["raw"] is True


def test_lora_on_a_model_without_adapters_is_refused_before_sending(ip, fake):
    out = cfai(ip, f"-m {GLM} --lora my-tutor", "hello")
    assert f"{GLM} takes no LoRA adapters; nothing was sent" in out.stdout
    assert LLAMA70 in out.stdout and fake.requests == []
    out = cfai(ip, f"-m {LLAMA70} --lora 'bad name'", "hello")
    assert "fine-tune's name or id" in out.stdout and fake.requests == []


def test_an_adapter_the_account_lacks_is_the_services_one_line(ip, fake):
    out = cfai(ip, f"-m {LLAMA70} --lora missing", "hello")
    assert "no fine-tune 'missing'" in out.stdout and out.stdout.count("\n") == 1


# renamed and non-text ids -------------------------------------------------------------------
def test_a_renamed_id_is_sent_as_what_it_became_and_says_so(ip, fake):
    out = cfai(ip, "-m @cf/moonshotai/kimi-k2.5", "hello")
    assert fake.last.path.endswith("/ai/run/@cf/moonshotai/kimi-k2.6")
    assert "kimi-k2.5 now answers as @cf/moonshotai/kimi-k2.6" in out.final["data"]["text/plain"]


def test_a_vision_model_with_its_own_schema_is_not_a_chat_model(ip, fake):
    out = cfai(ip, "-m @cf/moondream/moondream3.1-9B-A2B", "hello")
    assert "is not a text-generation model" in out.stdout and "caption" in out.stdout
    assert fake.requests == []


# the first cell does not wait for the model list -----------------------------------------------
def test_the_first_request_goes_while_the_model_list_is_still_coming(ip, fake):
    import threading

    from cfai_magic.testing import wait_for
    gate, seen = threading.Event(), {}
    fake.model_list_gate = gate                  # the list is held until the answer was asked

    def release():
        try:
            wait_for(lambda: any(r.kind == "run" for r in fake.requests), timeout=10)
            seen["list done first"] = any(r.kind == "search" and r.finished
                                          for r in fake.requests)
        finally:
            gate.set()
    helper = threading.Thread(target=release)
    helper.start()
    out = cfai(ip, f"-m {GLM}", "hello")
    helper.join()
    assert seen == {"list done first": False}                       # the answer did not wait
    session(ip).settle()
    assert out.error is None and session(ip).catalog.live           # and the list came in
    assert [r.kind for r in fake.requests].count("search") == 1


def test_an_engine_of_ones_own_answers_after_its_list(ip, fake, monkeypatch):
    """llama.cpp's server stops an answer it streams when another request comes in, so an
    engine's list is fetched first: the answer is asked only once the list is in."""
    import threading
    import time

    from cfai_magic.testing import wait_for
    monkeypatch.setenv("OPENAI_API_KEY", fake.token)
    run(ip, f"%cfai backend {fake.openai_url} --protocol openai")
    gate, seen = threading.Event(), {}
    fake.model_list_gate = gate

    def release():
        try:
            wait_for(lambda: any(r.kind == "models" for r in fake.requests), timeout=10)
            seen["asked before the list"] = bool(fake.asked)
        finally:
            seen["released"] = time.time()
            gate.set()
    helper = threading.Thread(target=release)
    helper.start()
    out = cfai(ip, f"-m {GLM}", "hello")
    helper.join()
    assert out.error is None and seen["asked before the list"] is False
    assert fake.last.kind == "chat" and fake.last.time >= seen["released"]
