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
    assert Catalog().resolve("@cf/meta/llama-3.1-8b-instruct").source == "unverified"


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
