from dataclasses import replace

import pytest

from cfai_magic import errors
from cfai_magic.catalog import ALIASES, SEED, Catalog


def test_seed_limits_match_the_reference():
    table = {m.id: (m.default_max_tokens, m.stream_max_tokens, m.context_tokens, m.sequence_tokens)
             for m in SEED}
    assert table["@cf/meta/llama-2-7b-chat-fp16"] == (256, 2500, 3072, 2500)
    assert table["@cf/meta/llama-2-7b-chat-int8"] == (256, 1800, 2048, 1800)
    assert table["@cf/mistral/mistral-7b-instruct-v0.1"] == (256, 1800, None, None)


@pytest.mark.parametrize("alias", ["llama2", "llama2-int8", "mistral"])
def test_aliases(alias):
    assert Catalog().resolve(alias).id == ALIASES[alias]


def test_unknown_names_the_closest():
    with pytest.raises(errors.UnknownModel) as info:
        Catalog().resolve("mistrall")
    assert "Did you mean mistral" in str(info.value)


def test_near_miss_of_a_full_id_is_a_typo():
    with pytest.raises(errors.UnknownModel, match="llama-2-7b-chat-fp16"):
        Catalog().resolve("@cf/meta/llama-2-7b-chat-fp61")


def test_new_full_ids_pass_until_the_catalog_is_live():
    assert Catalog().resolve("@cf/qwen/qwen3-30b-a3b-fp8").source == "unverified"
    with pytest.raises(errors.UnknownModel, match="Did you mean @cf/meta/llama-3.1-8b-instruct"
                                                  "-fast"):
        Catalog().resolve("@cf/meta/llama-3.1-8b-instruct-fas")      # a typo of a known id


def test_limits():
    cat = Catalog()
    int8 = cat.resolve("llama2-int8")
    cat.check(int8, max_tokens=1800, prompt="hi")
    with pytest.raises(errors.LimitExceeded, match="1800-token sequence limit"):
        cat.check(int8, max_tokens=1801, prompt="hi")
    with pytest.raises(errors.LimitExceeded, match="2048-token context"):
        cat.check(int8, messages=[{"role": "user", "content": "word " * 2000}])
    cat.check(cat.resolve("mistral"), max_tokens=100_000, prompt="no limits known")


def test_refresh_from_models_search(fake_workers_ai):
    fake_workers_ai.models.append({"name": "@cf/meta/llama-3.1-8b-instruct", "description": "new",
                                   "task": {"name": "Text Generation"},
                                   "properties": [{"property_id": "context_window", "value": "8000"}]})
    fake_workers_ai.models.append({"name": "@cf/openai/whisper", "task": {"name": "Speech Recognition"}})
    cat = Catalog()
    assert cat.refresh(fake_workers_ai.client())
    new = cat.resolve("@cf/meta/llama-3.1-8b-instruct")
    assert new.source == "live" and new.context_tokens == 8000
    assert "@cf/openai/whisper" not in cat
    assert cat.resolve("llama2").source == "live"
    with pytest.raises(errors.UnknownModel):        # live catalog: strict
        cat.resolve("@cf/meta/not-a-model")


def test_refresh_falls_back_when_unauthorised_or_offline(fake_workers_ai):
    from cfai_magic.client import WorkersAI
    cat = Catalog()
    bad = WorkersAI(fake_workers_ai.account_id, "wrong-token", base_url=fake_workers_ai.url)
    assert cat.refresh(bad) is False
    fake_workers_ai.stop()
    offline = fake_workers_ai.client(max_retries=0)
    assert cat.refresh(offline) is False
    assert not cat.live and cat.resolve("llama2").source == "built-in"


def test_history_is_trimmed_for_a_model_of_unknown_context():
    """10,000 turns with Mistral (whose context nobody published) send no more than with a
    model of the same assumed context; before, all 10,000 went (1.8 MB)."""
    import json

    from cfai_magic.models import UNKNOWN_CONTEXT
    from cfai_magic.state import Conversation, Turn
    cat = Catalog()
    mistral = cat.resolve("mistral")
    assert mistral.context_tokens is None
    known = replace(mistral, id="@cf/x/known", context_tokens=UNKNOWN_CONTEXT)
    chat = Conversation("long", turns=[
        Turn([{"role": "user", "content": f"question {i} " + "word " * 20}], f"answer {i} " * 10)
        for i in range(10_000)])
    new = [{"role": "user", "content": "and now?"}]
    unknown_plan = chat.plan(new, model=mistral)
    known_plan = chat.plan(new, model=known)
    size = len(json.dumps(unknown_plan.messages))
    assert size <= len(json.dumps(known_plan.messages)) and size < 20_000
    assert unknown_plan.trimmed > 9_900
    assert "(assumed: its context is not known)" in unknown_plan.notices[0]


def test_live_facts_from_a_models_search_item():
    from cfai_magic.catalog import live_facts
    facts = live_facts({"name": "@cf/a/b", "description": "d", "properties": [
        {"property_id": "context_window", "value": "131072"},
        {"property_id": "price", "value": [
            {"unit": "per M input tokens", "price": 0.95, "currency": "USD"},
            {"unit": "per M output tokens", "price": 4, "currency": "USD"},
            {"unit": "per M cached input tokens", "price": 0.16, "currency": "USD"}]},
        {"property_id": "function_calling", "value": "true"},
        {"property_id": "reasoning", "value": "false"},
        {"property_id": "vision", "value": "true"},
        {"property_id": "require_workers_paid", "value": "true"},
        {"property_id": "async_queue", "value": "true"},
        {"property_id": "planned_deprecation_date", "value": "2027-01-15"},
        {"property_id": "terms", "value": "https://example.com"}]})
    assert facts == {"description": "d", "context_tokens": 131072, "price_in": 0.95,
                     "price_out": 4.0, "price_cached": 0.16, "tools": True, "reasoning": False,
                     "vision": True, "paid": True, "batch": True, "retires": "2027-01-15"}
    model = replace(Catalog().resolve("glm"), **facts)
    usage = {"prompt_tokens": 1000, "completion_tokens": 100,
             "prompt_tokens_details": {"cached_tokens": 600}}
    assert model.cost(usage) == pytest.approx((400 * 0.95 + 600 * 0.16 + 100 * 4) / 1e6)
    assert model.status() == "paid plan or gateway credits, retires 2027-01-15"
