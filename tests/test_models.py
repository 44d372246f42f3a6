"""models.py alone: the built-in table's facts, a model's cost, status and limits in words."""
import datetime as dt

import pytest

from cfai_magic.models import ALIASES, BUILT_IN, DEFAULT_CLOUDFLARE, Model


def test_the_built_in_table_has_one_entry_per_id_and_aliases_that_resolve():
    ids = [m.id for m in BUILT_IN]
    assert len(ids) == len(set(ids)) and DEFAULT_CLOUDFLARE in ids
    assert set(ALIASES.values()) <= set(ids)


def test_cost_counts_cached_input_at_its_own_price():
    m = Model("@cf/x/y", price_in=1.0, price_out=4.0, price_cached=0.25)
    usage = {"prompt_tokens": 1000, "completion_tokens": 500,
             "prompt_tokens_details": {"cached_tokens": 200}}
    assert m.cost(usage) == pytest.approx((800 * 1.0 + 200 * 0.25 + 500 * 4.0) / 1e6)
    assert Model("@cf/x/y", price_in=1.0, price_out=4.0).cost(usage) == \
        pytest.approx((1000 + 2000) / 1e6)                      # no cached price: full price
    assert Model("@cf/x/y").cost(usage) is None                 # not priced: not known
    assert m.cost({}) is None and m.cost({"completion_tokens": 5}) is None


def test_status_says_retired_or_when_it_retires_and_the_plan():
    m = Model("@cf/x/y", retires="2026-05-30", paid=True)
    assert m.status(dt.date(2026, 5, 29)) == "paid plan or gateway credits, retires 2026-05-30"
    assert m.status(dt.date(2026, 5, 30)) == "retired 2026-05-30" and m.retired(
        dt.date(2026, 6, 1))
    assert Model("@cf/x/y").status() == ""


def test_limits_and_summary_in_words_leave_out_what_is_not_known():
    m = Model("@cf/x/y", 256, None, 131_072, None, price_in=0.06, price_out=0.4, tools=True)
    assert m.limits() == "reads up to 131,072 tokens; answers up to 256 unless --max-tokens " \
                         "says more"
    assert m.summary() == "131k context · $0.06/$0.4 per M · tools"
    assert Model("@cf/x/z").summary() == "context ?"


def test_every_entry_of_the_built_in_table_names_its_source():
    """Each Model(...) of the table (and each seed) has a '# source:' comment just above it."""
    import ast
    import inspect
    from cfai_magic import models
    text = inspect.getsource(models)
    lines = text.splitlines()
    calls = [node for node in ast.walk(ast.parse(text)) if isinstance(node, ast.Call)
             and getattr(node.func, "id", "") in ("Model", "_retired_seed")
             and node.col_offset in (4, 8)]           # entries and LOCAL, not the helper
    assert len(calls) == len(BUILT_IN)
    for call in calls:
        above = call.lineno - 2
        while lines[above].lstrip().startswith("#") and "source:" not in lines[above]:
            above -= 1                                           # a comment of several lines
        assert "# source:" in lines[above], f"line {call.lineno} has no source comment"


def test_limits_by_model_frontier_ones_at_twenty_a_minute():
    from cfai_magic.models import CURRENT
    limits = {m.id: m.per_minute for m in CURRENT}
    for frontier in ("@cf/moonshotai/kimi-k2.6", "@cf/moonshotai/kimi-k2.7-code",
                     "@cf/zai-org/glm-5.2"):
        assert limits[frontier] == 20.0
    assert limits[DEFAULT_CLOUDFLARE] == 300.0
    assert Model("@cf/x/y", rate=20, rate_credits=50).limit() == "20/min (50 with gateway credits)"


def test_renamed_and_non_text_ids_say_what_they_are():
    from cfai_magic.catalog import Catalog
    from cfai_magic.errors import UnknownModel
    catalog = Catalog()
    assert catalog.resolve("@cf/moonshotai/kimi-k2.5").id == "@cf/moonshotai/kimi-k2.6"
    assert "now answers as @cf/moonshotai/kimi-k2.6" in catalog.renamed(
        "@cf/moonshotai/kimi-k2.5")
    assert catalog.renamed(DEFAULT_CLOUDFLARE) is None
    with pytest.raises(UnknownModel, match="not a text-generation model"):
        catalog.resolve("@cf/moondream/moondream3.1-9B-A2B")
    # an engine that names its own models renames nothing
    assert catalog.resolve("@cf/moonshotai/kimi-k2.5", open=True).id == "@cf/moonshotai/kimi-k2.5"


def test_the_live_list_says_which_models_take_adapters():
    from cfai_magic.catalog import live_facts
    assert live_facts({"properties": [{"property_id": "lora", "value": "true"}]})["lora"]
    assert live_facts({"properties": [{"property_id": "lora", "value": [{"name": "x"}]}]})["lora"]
    assert not live_facts({"properties": [{"property_id": "lora", "value": "false"}]})["lora"]
    assert "lora" not in live_facts({"properties": []})
