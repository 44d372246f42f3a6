"""The catalog: the built-in table (models.py) and the live list, limits and aliases; checks
made before anything is sent."""
from __future__ import annotations

import difflib
import re
import threading
from typing import Any
from dataclasses import replace

from .errors import CfaiError, InputError, LimitExceeded, UnknownModel
from .models import (ALIASES, BUILT_IN, DEFAULT_CLOUDFLARE, LOCAL, LOCAL_MODEL, NOT_TEXT,
                     RENAMED, UNKNOWN_CONTEXT, Model)
from .models import SEED as _SEED

SEED = (*_SEED, LOCAL)     # the models the first version knew; ours to serve offline

_FULL_ID = re.compile(r"^@(cf|hf)/[\w.-]+/[\w.-]+$")


def no_think(model_id: str) -> dict:
    """The parameters that ask a reasoning model not to think, as its family expects: gpt-oss
    cannot stop, so it thinks least; the others (GLM, Qwen, Granite...) read the chat template's
    ``enable_thinking``."""
    if "gpt-oss" in model_id:
        return {"reasoning_effort": "low"}
    return {"chat_template_kwargs": {"enable_thinking": False}}


def estimate_tokens(text: str) -> int:
    """A tokenizer-free estimate (about 4 characters a token, rounded up)."""
    return -(-len(text) // 4)


IMAGE_TOKENS = 1024       # an image's share of the context, as estimated before sending


def estimate_messages(messages: list[dict]) -> int:
    from .messages import images_in, size_of
    return sum(estimate_tokens(size_of(m)) + 4 + IMAGE_TOKENS * images_in(m)
               for m in messages)


def context_of(model: Model) -> int:
    """The context to trim history to: the model's, or a conservative default."""
    return model.context_tokens or UNKNOWN_CONTEXT


class Catalog:
    """The models we know. Starts from the built-in table; :meth:`refresh` merges the live list
    (live facts win) and remembers which ids the backend serves."""

    def __init__(self, models=BUILT_IN):
        self._lock = threading.Lock()
        self._models = {m.id: m for m in models}
        self.live = False
        self.served: set[str] = set()     # ids the live list named

    def __iter__(self):
        """The recommended model, the other current free-plan ones, paid-plan ones, the
        embedded one, then retired ones."""
        return iter(sorted(self._models.values(),
                           key=lambda m: (m.retired(), m.paid, m.id == LOCAL_MODEL,
                                          m.id != DEFAULT_CLOUDFLARE, m.id)))

    def __contains__(self, name: str) -> bool:
        return ALIASES.get(name, name) in self._models

    def get(self, model_id: str) -> Model | None:
        return self._models.get(model_id)

    def ids(self) -> list[str]:
        return sorted(self._models)

    def names(self) -> list[str]:
        """Ids and aliases, for completion."""
        return sorted(ALIASES) + self.ids()

    def resolve(self, name: str, open: bool = False) -> Model:
        """The model for an id or alias, or :class:`UnknownModel` naming the closest ids.

        A full Workers AI id (``@cf/...``, ``@hf/...``) that the built-in table lacks is allowed
        (the service is the judge) unless it is a near miss of a known id, which is a typo.
        ``open`` allows any id (an OpenAI-compatible engine names its own models).
        """
        name = (name or "").strip()
        key = (None if open else RENAMED.get(name)) or ALIASES.get(name, name)
        if key in self._models:
            return self._models[key]
        if open and name:
            return Model(name, source="unverified")
        if name in NOT_TEXT:
            raise UnknownModel(f"{name} is not a text-generation model",
                               hint=NOT_TEXT[name] + "; %cfai models lists the chat models")
        close = difflib.get_close_matches(name, self.names(), n=3, cutoff=0.4)
        near = difflib.get_close_matches(name, self.ids(), n=1, cutoff=0.9)
        if _FULL_ID.match(name) and not self.live and not near:
            return Model(name, source="unverified")
        hint = f"Did you mean {', '.join(close)}?" if close else "See %cfai models for the list"
        raise UnknownModel(f"Unknown model {name!r}", hint=hint)

    @staticmethod
    def renamed(name: str | None) -> str | None:
        """What to say when a cell names an id that now answers as another model."""
        name = (name or "").strip()
        became = RENAMED.get(name)
        return f"{name} now answers as {became} (at its prices): sent as {became}." \
            if became else None

    def check(self, model: Model, *, max_tokens: int | None = None,
              messages: list[dict] | None = None, prompt: str | None = None,
              lora: str | None = None) -> None:
        """Refuse what the service would refuse, before it is sent."""
        if lora is not None:
            check_lora(self, model, lora)
        if messages and not model.vision and model.source != "unverified":
            from .images import pictures_in
            if pictures_in(messages):
                seeing = ", ".join(m.id for m in self if m.vision and not m.retired())
                local = " (the embedded local model cannot see images)" \
                    if model.id == LOCAL_MODEL else ""
                raise InputError(f"{model.id} cannot see images{local}; nothing was sent",
                                 hint=f"Use a model that can: {seeing}")
        if max_tokens is not None:
            if max_tokens < 1:
                raise LimitExceeded(f"max_tokens must be at least 1, not {max_tokens}")
            if model.sequence_tokens and max_tokens > model.sequence_tokens:
                raise LimitExceeded(
                    f"max_tokens {max_tokens} is over the {model.sequence_tokens}-token sequence "
                    f"limit of {model.id}",
                    hint=f"Use --max-tokens {model.sequence_tokens} or less")
        if model.context_tokens:
            used = estimate_messages(messages) if messages else estimate_tokens(prompt or "")
            room = model.context_tokens - (max_tokens or model.default_max_tokens)
            if used > room:
                raise LimitExceeded(
                    f"The input is about {used} tokens; {model.id} has room for {room} "
                    f"({model.context_tokens}-token context minus the answer)",
                    hint="Shorten the input, lower --max-tokens, or start afresh with --new")

    def refresh(self, client) -> bool:
        """Merge the live text-generation models (their facts win); keep the built-in table if
        that fails. Ids from the server are checked before they can reach a URL."""
        from .client.protocols.paths import model_path
        try:
            found = client.models()
        except CfaiError:
            return False
        fresh = {}
        for item in found:
            try:
                model_path(item["name"])
            except (InputError, TypeError):
                continue                          # never used, never shown
            old = self._models.get(item["name"]) or Model(item["name"])
            fresh[item["name"]] = replace(old, **live_facts(item), source="live")
        with self._lock:
            self._models.update(fresh)
            self.served = set(fresh)
            self.live = bool(fresh)
        return True


_ADAPTER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")    # a fine-tune's name or id


def check_lora(catalog: Catalog, model: Model, lora) -> None:
    """A LoRA adapter only on a base model that takes one, named as fine-tunes are named."""
    if not isinstance(lora, str) or not _ADAPTER.fullmatch(lora):
        raise InputError(f"--lora needs a fine-tune's name or id, not {str(lora)[:60]!r}",
                         hint="Names hold letters, digits, '-', '_' and '.' (wrangler ai "
                              "finetune list shows yours)")
    if not model.lora and model.source != "unverified":
        bases = ", ".join(m.id for m in catalog if m.lora and not m.retired()) or "none known"
        raise InputError(f"{model.id} takes no LoRA adapters; nothing was sent",
                         hint=f"Run the adapter on the base model it was trained for: {bases}")


def live_facts(item: dict) -> dict:
    """The Model fields that a models/search item gives (values are strings there)."""
    props = {p.get("property_id"): p.get("value") for p in item.get("properties") or []
             if isinstance(p, dict)}
    facts: dict[str, Any] = {}
    if item.get("description"):
        facts["description"] = str(item["description"])
    context = _int(props.get("context_window") or props.get("max_input_tokens"))
    if context:
        facts["context_tokens"] = context
    for unit, field in (("input", "price_in"), ("output", "price_out"),
                        ("cached input", "price_cached")):
        prices = props.get("price")
        for price in prices if isinstance(prices, list) else ():
            if isinstance(price, dict) and price.get("unit") == f"per M {unit} tokens" \
                    and price.get("currency", "USD") == "USD":
                value = _float(price.get("price"))
                if value is not None:             # a price not believed is not known
                    facts[field] = value
    for prop, field in (("function_calling", "tools"), ("reasoning", "reasoning"),
                        ("vision", "vision"), ("require_workers_paid", "paid"),
                        ("async_queue", "batch")):
        if prop in props:
            facts[field] = str(props[prop]).lower() == "true"
    if "lora" in props:                   # "true", or the adapters' list
        facts["lora"] = props["lora"] not in (None, False, "", "false", [])
    when = props.get("planned_deprecation_date")
    if isinstance(when, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", when[:10]):
        facts["retires"] = when[:10]
    return facts


MAX_CONTEXT = 100_000_000      # tokens: a live number above this (or below 1) is not believed
MAX_PRICE = 10_000.0           # dollars per million tokens


def _int(value) -> int | None:
    """A context size from the live list, or None when it is not a sane one."""
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if 1 <= number <= MAX_CONTEXT else None


def _float(value) -> float | None:
    """A price from the live list, or None (unknown) when it is not a sane one: never $nan."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if 0.0 <= number <= MAX_PRICE else None
