"""Text-generation models, their limits and aliases; checks made before anything is sent."""
from __future__ import annotations

import difflib
import re
import threading
from dataclasses import dataclass, replace

from .errors import CfaiError, LimitExceeded, UnknownModel

LOCAL_MODEL = "@local/gemma-3-270m"


@dataclass(frozen=True)
class Model:
    id: str
    default_max_tokens: int = 256
    stream_max_tokens: int | None = None   # the service's default when streaming
    context_tokens: int | None = None
    sequence_tokens: int | None = None
    description: str = ""
    source: str = "built-in"               # built-in | live | unverified

    def limits(self) -> str:
        def show(n):
            return f"{n:,}" if n else "?"
        return (f"max_tokens {self.default_max_tokens} (stream {show(self.stream_max_tokens)}), "
                f"context {show(self.context_tokens)}, sequence {show(self.sequence_tokens)}")


SEED = (
    Model("@cf/meta/llama-2-7b-chat-fp16", 256, 2500, 3072, 2500,
          "Full precision (fp16) Llama 2 7B chat"),
    Model("@cf/meta/llama-2-7b-chat-int8", 256, 1800, 2048, 1800,
          "Quantized (int8) Llama 2 7B chat"),
    Model("@cf/mistral/mistral-7b-instruct-v0.1", 256, 1800, None, None,
          "Mistral 7B Instruct v0.1"),
    Model(LOCAL_MODEL, 256, 1024, 4096, 2048,
          "Gemma 3 270M (base model) served by the embedded local backend"),
)

ALIASES = {
    "llama2": "@cf/meta/llama-2-7b-chat-fp16",
    "llama2-fp16": "@cf/meta/llama-2-7b-chat-fp16",
    "llama2-int8": "@cf/meta/llama-2-7b-chat-int8",
    "mistral": "@cf/mistral/mistral-7b-instruct-v0.1",
    "gemma": LOCAL_MODEL,
    "local": LOCAL_MODEL,
}

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


def estimate_messages(messages: list[dict]) -> int:
    return sum(estimate_tokens(m.get("content", "")) + 4 for m in messages)


class Catalog:
    """The models we know. Starts from :data:`SEED`; :meth:`refresh` adds the live list."""

    def __init__(self, models=SEED):
        self._lock = threading.Lock()
        self._models = {m.id: m for m in models}
        self.live = False

    def __iter__(self):
        return iter(sorted(self._models.values(), key=lambda m: m.id))

    def __contains__(self, name: str) -> bool:
        return ALIASES.get(name, name) in self._models

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
        key = ALIASES.get(name, name)
        if key in self._models:
            return self._models[key]
        if open and name:
            return Model(name, source="unverified")
        close = difflib.get_close_matches(name, self.names(), n=3, cutoff=0.6)
        near = difflib.get_close_matches(name, self.ids(), n=1, cutoff=0.9)
        if _FULL_ID.match(name) and not self.live and not near:
            return Model(name, source="unverified")
        hint = f"Did you mean {', '.join(close)}?" if close else "See %cfai models for the list"
        raise UnknownModel(f"Unknown model {name!r}", hint=hint)

    def check(self, model: Model, *, max_tokens: int | None = None,
              messages: list[dict] | None = None, prompt: str | None = None) -> None:
        """Refuse what the service would refuse, before it is sent."""
        if max_tokens is not None:
            if max_tokens < 1:
                raise LimitExceeded(f"max_tokens must be at least 1, not {max_tokens}")
            if model.sequence_tokens and max_tokens > model.sequence_tokens:
                raise LimitExceeded(
                    f"max_tokens {max_tokens} is over the {model.sequence_tokens}-token sequence "
                    f"limit of {model.id}", hint=f"Use --max-tokens {model.sequence_tokens} or less")
        if model.context_tokens:
            used = estimate_messages(messages) if messages else estimate_tokens(prompt or "")
            room = model.context_tokens - (max_tokens or model.default_max_tokens)
            if used > room:
                raise LimitExceeded(
                    f"The input is about {used} tokens; {model.id} has room for {room} "
                    f"({model.context_tokens}-token context minus the answer)",
                    hint="Shorten the input, lower --max-tokens, or start afresh with --new")

    def refresh(self, client) -> bool:
        """Add the live text-generation models; keep the built-in table if that fails."""
        try:
            found = client.models()
        except CfaiError:
            return False
        with self._lock:
            for item in found:
                old = self._models.get(item["name"])
                props = {p.get("property_id"): p.get("value") for p in item.get("properties", [])
                         if isinstance(p, dict)}
                ctx = _int(props.get("context_window") or props.get("max_input_tokens"))
                new = old or Model(item["name"], context_tokens=ctx)
                self._models[item["name"]] = replace(
                    new, description=item.get("description") or new.description, source="live")
            self.live = bool(found)
        return True


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
