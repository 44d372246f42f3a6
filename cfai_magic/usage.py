"""The notebook's usage: every answer's tokens and cost, totalled by model and by chat, and
today's estimated neurons against the free daily allocation."""
from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass, field

from .models import FREE_NEURONS, NEURON_USD


def money(usd: float | None, estimated: bool = False) -> str:
    """``$0.0012``; ``≈$0.0012`` for an estimate at Workers AI prices."""
    if usd is None:
        return ""
    digits = 2 if usd >= 0.01 else 4 if usd >= 0.0001 else 6
    return f"{'≈' if estimated else ''}${usd:.{digits}f}"


def cost_of(model, answer) -> dict | None:
    """The cost of an answer at its model's prices: ``{"usd", "billed"}`` (billed: Cloudflare
    answered it, so this is what it charges; otherwise an estimate at its prices)."""
    if getattr(answer, "cached", False):          # AI Gateway's cache: the model did not run
        return {"usd": 0.0, "billed": True}
    usd = model.cost(answer.usage)
    if usd is None:
        return None
    return {"usd": usd, "billed": answer.billed}


@dataclass
class Entry:
    model: str
    chat: str | None
    prompt: int
    completion: int
    reasoning: int
    cached: int
    usd: float | None
    billed: bool
    cached_answer: bool = False       # from AI Gateway's cache: costs nothing
    usage: dict = field(default_factory=dict)
    time: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))


class Ledger:
    def __init__(self):
        self.entries: list[Entry] = []
        self._lock = threading.Lock()

    def add(self, answer, model, chat: str | None) -> Entry | None:
        usage = answer.usage or {}
        if not usage:
            return None
        cost = cost_of(model, answer)
        entry = Entry(answer.model, chat, usage.get("prompt_tokens") or 0,
                      usage.get("completion_tokens") or 0,
                      (usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0,
                      (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0,
                      cost["usd"] if cost else None, bool(cost and cost["billed"]),
                      bool(getattr(answer, "cached", False)), usage)
        with self._lock:
            self.entries.append(entry)
        return entry

    def reprice(self, lookup) -> None:
        """Price every answer again with ``lookup(model_id)``'s facts: the live model list
        comes beside the first request, so the first answers may have been priced with the
        built-in facts."""
        with self._lock:
            for e in self.entries:
                model = None if e.cached_answer else lookup(e.model)
                usd = model.cost(e.usage) if model is not None else None
                if usd is not None:
                    e.usd = usd

    def totals(self, key: str) -> list[dict]:
        """Rows of answers, tokens and cost grouped by ``model`` or ``chat``."""
        rows: dict = {}
        with self._lock:
            entries = list(self.entries)
        for e in entries:
            name = getattr(e, key) or "(once)"
            row = rows.setdefault(name, {key: name, "answers": 0, "in": 0, "out": 0,
                                         "reasoning": 0, "cached": 0, "usd": None,
                                         "estimated": False})
            row["answers"] += 1
            for field_, value in (("in", e.prompt), ("out", e.completion),
                                  ("reasoning", e.reasoning), ("cached", e.cached)):
                row[field_] += value
            if e.usd is not None:
                row["usd"] = (row["usd"] or 0.0) + e.usd
                row["estimated"] |= not e.billed
        return list(rows.values())

    def neurons_today(self, now: dt.datetime | None = None) -> float:
        """Neurons Cloudflare billed since 00:00 UTC (estimated from the prices)."""
        now = now or dt.datetime.now(dt.timezone.utc)
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        with self._lock:
            usd = sum(e.usd for e in self.entries
                      if e.billed and e.usd is not None and e.time >= midnight)
        return usd / NEURON_USD

    def report(self) -> str:
        """The totals as aligned text."""
        if not self.entries:
            return "No answers with usage yet."
        parts = []
        for key in ("model", "chat"):
            rows = self.totals(key)
            width = max(len(key), *(len(str(r[key])) for r in rows))
            lines = [f"{'by ' + key:{width}}  answers        in       out  reasoning    cached"
                     "        cost"]
            for r in rows:
                lines.append(f"{str(r[key]):{width}}  {r['answers']:7}  {r['in']:8,}  "
                             f"{r['out']:8,}  {r['reasoning']:9,}  {r['cached']:8,}  "
                             f"{money(r['usd'], r['estimated']) or '-':>10}")
            parts.append("\n".join(lines))
        hits = sum(e.cached_answer for e in self.entries)
        if hits:
            parts.append(f"{hits} answer{'s' if hits != 1 else ''} came from AI Gateway's cache "
                         "and cost nothing (counted at $0)")
        neurons = self.neurons_today()
        parts.append(f"Cloudflare today: about {neurons:,.0f} of the {FREE_NEURONS:,} free "
                     f"neurons ({neurons / FREE_NEURONS:.1%}); ≈ marks estimates at Workers AI "
                     "prices for answers Cloudflare did not bill")
        return "\n\n".join(parts)
