"""usage.py alone: money as shown, the ledger's totals, today's neurons."""
import datetime as dt
from types import SimpleNamespace

import pytest

from cfai_magic.models import Model
from cfai_magic.usage import Ledger, money

PRICED = Model("@cf/x/priced", price_in=1.0, price_out=2.0, price_cached=0.5)


def answer(model="@cf/x/priced", billed=True, **usage):
    return SimpleNamespace(model=model, usage=usage, billed=billed)


@pytest.mark.parametrize("usd, estimated, shown", [
    (None, False, ""), (0.5, False, "$0.50"), (0.0012, False, "$0.0012"),
    (0.000012, True, "≈$0.000012")])
def test_money(usd, estimated, shown):
    assert money(usd, estimated) == shown


def test_totals_by_model_and_chat_with_cached_and_reasoning_tokens_apart():
    ledger = Ledger()
    ledger.add(answer(prompt_tokens=1000, completion_tokens=100,
                      prompt_tokens_details={"cached_tokens": 400},
                      completion_tokens_details={"reasoning_tokens": 60}), PRICED, "default")
    ledger.add(answer(billed=False, prompt_tokens=10, completion_tokens=5), PRICED, None)
    assert ledger.add(answer(), PRICED, "default") is None          # no usage: not counted
    [row] = ledger.totals("model")
    assert (row["answers"], row["in"], row["out"], row["cached"], row["reasoning"]) == \
        (2, 1010, 105, 400, 60)
    # 600 × $1 + 400 × $0.5 + 100 × $2 per million, then 10 × $1 + 5 × $2
    assert row["usd"] == pytest.approx((600 + 200 + 200 + 10 + 10) / 1e6)
    assert row["estimated"] is True                                   # one was not billed
    assert [r["chat"] for r in ledger.totals("chat")] == ["default", "(once)"]


def test_an_unpriced_model_costs_nothing_known():
    ledger = Ledger()
    ledger.add(answer(prompt_tokens=5, completion_tokens=5), Model("@cf/x/free"), "c")
    assert ledger.totals("model")[0]["usd"] is None
    assert "-" in ledger.report().splitlines()[1]


def test_neurons_today_count_billed_answers_since_midnight_utc():
    ledger = Ledger()
    ledger.add(answer(prompt_tokens=1_000_000, completion_tokens=0), PRICED, "c")   # $1
    ledger.add(answer(billed=False, prompt_tokens=1_000_000, completion_tokens=0), PRICED, "c")
    old = ledger.add(answer(prompt_tokens=1_000_000, completion_tokens=0), PRICED, "c")
    old.time = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=2)
    from cfai_magic.usage import NEURON_USD
    assert ledger.neurons_today() == pytest.approx(1.0 / NEURON_USD)


def test_the_report_is_aligned_text():
    assert Ledger().report() == "No answers with usage yet."
    ledger = Ledger()
    ledger.add(answer(prompt_tokens=1234, completion_tokens=56), PRICED, "default")
    lines = ledger.report().splitlines()
    assert lines[0].split() == ["by", "model", "answers", "in", "out", "reasoning", "cached",
                                "cost"]
    assert lines[1].split()[:4] == ["@cf/x/priced", "1", "1,234", "56"]


def test_answers_priced_before_the_live_list_came_are_priced_again_when_it_does():
    """The live list comes beside the first request: an answer priced with the built-in facts
    is priced again with the live ones, an answer from the gateway's cache stays at $0."""
    ledger = Ledger()
    ledger.add(answer(prompt_tokens=1_000_000, completion_tokens=0), PRICED, "default")
    cached = SimpleNamespace(model="@cf/x/priced", usage={"prompt_tokens": 5}, billed=True,
                             cached=True)
    ledger.add(cached, PRICED, "default")
    live = Model("@cf/x/priced", price_in=3.0, price_out=2.0)
    ledger.reprice({"@cf/x/priced": live}.get)
    assert [e.usd for e in ledger.entries] == [3.0, 0.0]
    ledger.reprice({}.get)                              # a model the list does not know: kept
    assert [e.usd for e in ledger.entries] == [3.0, 0.0]
