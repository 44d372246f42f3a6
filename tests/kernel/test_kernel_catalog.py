"""The 2026 catalog in a real kernel, against a fake serving a live catalog as Cloudflare does
today: today's models only (the seed models are gone), with their properties. One price differs
from the built-in table, so the live value is seen to win."""
from dataclasses import replace

import pytest

from cfai_magic.apiserver import search_item
from cfai_magic.models import CURRENT
from cfai_magic.testing import FakeWorkersAI, Reply
from kernelkit import Kernel, displays, stdout

pytestmark = pytest.mark.kernel
GLM = "@cf/zai-org/glm-4.7-flash"
LIVE = [search_item(replace(m, price_out=0.5) if m.id == GLM else m) for m in CURRENT] + [
    {"name": "@cf/qwen/qwen3-30b-a3b-fp8", "task": {"name": "Text Generation"},
     "properties": [{"property_id": "context_window", "value": "32768"}]}]   # live only


@pytest.fixture
def cloudflare(tmp_path):
    with FakeWorkersAI(models=LIVE) as fake:
        k = Kernel(fake.env(), cwd=str(tmp_path))
        k.run("%load_ext cfai_magic")
        yield k, fake
        k.close()


def one_line(reply) -> str:
    assert reply["content"]["status"] == "error"
    (line,) = reply["content"]["traceback"]
    return line


def test_the_default_with_credentials_is_current_and_costs_what_live_says(cloudflare):
    k, fake = cloudflare
    _, reply = k.run("%%cfai\nHi")
    assert reply["content"]["status"] == "ok"
    # the live list is fetched beside the first request, not before it; once it is in, its
    # prices count
    k.run("from cfai_magic.session import current; current().settle()")
    assert fake.last.model == GLM and [r.kind for r in fake.requests].count("search") == 1
    fake.enqueue(Reply(text="Hello there.", usage={"prompt_tokens": 1000,
                                                   "completion_tokens": 2000,
                                                   "total_tokens": 3000}))
    messages, reply = k.run("%%cfai\nAgain")
    final = displays(messages)[-1]["content"]
    # 1000 in at $0.0605/M + 2000 out at the live $0.50/M (built-in says $0.40) = $0.0010605
    assert f"✓ {GLM} · 1000 in · 2000 out · ≈$0.0011 · " in final["data"]["text/plain"]
    assert final["metadata"]["cfai"]["cost"] == {"usd": pytest.approx(0.0010605),
                                                 "billed": False}
    assert "retired" not in stdout(k.run("%cfai model")[0])


def test_a_retired_model_is_one_line_and_nothing_is_sent_or_lost(cloudflare):
    k, fake = cloudflare
    k.run("%%cfai\nfirst")
    sent = len(fake.asked)
    _, reply = k.run("%%cfai -m llama2\nHello")
    line = one_line(reply)
    assert "ModelRetired: @cf/meta/llama-2-7b-chat-fp16 was retired on 2026-05-30; nothing " \
           "was sent" in line
    assert f"Use -m {GLM} instead" in line
    assert len(fake.asked) == sent                            # not even to fail
    k.run("%%cfai\nsecond")
    assert [m["content"] for m in fake.last.body["messages"]] == ["first", "Echo: first",
                                                                  "second"]


@pytest.mark.parametrize("code,status,expect", [
    (5028, 410, ["This model was deprecated on 2026-05-30", f"Use -m {GLM} instead"]),
    (5035, 403, ["needs the Workers Paid plan", f"-m {GLM}"]),
    (3036, 429, ["daily free allocation (10,000 neurons) is used up",
                 "resets at 00:00 UTC ("]),
])
def test_service_refusals_are_one_line(cloudflare, code, status, expect):
    k, fake = cloudflare
    k.run("%%cfai\nfirst")
    message = {5028: "AiError: 5028: This model was deprecated on 2026-05-30. Please use an "
                     "alternative model",
               5035: "This model requires the Workers Paid plan",
               3036: "You have used up your daily free allocation of 10,000 neurons"}[code]
    fake.enqueue(Reply(status=status, code=code, message=message))
    _, reply = k.run("%%cfai -m @cf/moonshotai/kimi-k2.6\nHello")
    line = one_line(reply)
    for part in expect:
        assert part in line, line
    assert f"code {code}" in line
    assert len(fake.asked) == 2                     # the first, this one: never retried
    k.run("%%cfai\nsecond")
    assert len(fake.last.body["messages"]) == 3


def test_models_shows_the_live_properties(cloudflare):
    k, fake = cloudflare
    messages, _ = k.run("%cfai models --refresh")
    data = displays(messages)[0]["content"]["data"]
    lines = data["text/plain"].splitlines()
    glm = next(line for line in lines if GLM in line).split()
    assert glm == ["*", GLM, "131,072", "0.0605", "0.5", "300/min", "reasoning,", "tools", "-",
                   "live"]
    kimi = next(line for line in lines if "kimi-k2.6" in line).split()
    assert kimi[1:6] == ["262,144", "0.95", "4", "20/min", "(50"]
    assert "paid" in kimi and "<td>0.5</td>" in data["text/html"]
    assert "qwen3-30b-a3b-fp8" in data["text/plain"]
    code = "%%cfai -m @cf/qwen/q"
    k.kc.complete(code, len(code))
    reply = k.kc.get_shell_msg(timeout=10)
    assert "cf/qwen/qwen3-30b-a3b-fp8" in reply["content"]["matches"]     # a live-only id


def test_usage_adds_up_three_cells(cloudflare):
    k, fake = cloudflare
    usages = [(100, 10), (200, 20), (300, 30)]
    for n_in, n_out in usages:
        fake.enqueue(Reply(text="ok", usage={"prompt_tokens": n_in, "completion_tokens": n_out,
                                             "total_tokens": n_in + n_out}))
    k.run("%%cfai\none")
    k.run("%%cfai --chat other\ntwo")
    k.run("%%cfai -m @cf/google/gemma-4-26b-a4b-it\nthree")
    report = stdout(k.run("%cfai usage")[0])
    rows = {line.split()[0]: line.split()[1:] for line in report.splitlines() if line.strip()}
    glm_cost = (100 * 0.0605 + 10 * 0.5 + 200 * 0.0605 + 20 * 0.5) / 1e6
    gemma_cost = (300 * 0.1 + 30 * 0.3) / 1e6
    assert rows[GLM] == ["2", "300", "30", "0", "0", f"≈${glm_cost:.6f}"]
    assert rows["@cf/google/gemma-4-26b-a4b-it"] == ["1", "300", "30", "0", "0",
                                                     f"≈${gemma_cost:.6f}"]
    assert rows["default"][:3] == ["2", "400", "40"] and rows["other"][:3] == ["1", "200", "20"]
    assert "Cloudflare today: about 0 of the 10,000 free neurons" in report   # the fake is free


def test_each_conversation_keeps_its_own_affinity(cloudflare, tmp_path):
    k, fake = cloudflare
    k.run(f"%cfai record {tmp_path / 'c.json'}")
    k.run("%%cfai\none")
    k.run("%%cfai\ntwo")
    k.run("%%cfai --chat other\nthree")
    runs = fake.asked
    ids = [{k.lower(): v for k, v in r.headers.items()}["x-session-affinity"] for r in runs]
    assert ids[0] == ids[1] != ids[2] and len(ids[0]) == 32
    assert fake.token not in ids[0]
    assert ids[0] not in (tmp_path / "c.json").read_text()      # never in a cassette
