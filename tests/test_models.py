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
    assert m.status(dt.date(2026, 5, 29)) == "paid plan, retires 2026-05-30"
    assert m.status(dt.date(2026, 5, 30)) == "retired 2026-05-30" and m.retired(
        dt.date(2026, 6, 1))
    assert Model("@cf/x/y").status() == ""


def test_limits_and_summary_in_words_leave_out_what_is_not_known():
    m = Model("@cf/x/y", 256, None, 131_072, None, price_in=0.06, price_out=0.4, tools=True)
    assert m.limits() == "reads up to 131,072 tokens; answers up to 256 unless --max-tokens " \
                         "says more"
    assert m.summary() == "131k context · $0.06/$0.4 per M · tools"
    assert Model("@cf/x/z").summary() == "context ?"
