"""What we know of each text-generation model before asking the service: the built-in table.

Facts of late 2026, from Cloudflare's own model pages (``cloudflare/cloudflare-docs``,
``src/content/workers-ai-models/*.json``) and changelogs: context window, prices in $ per million
tokens, flags, the plan a model needs, and retirements. A live refresh (catalog.py) wins over
this table wherever the service says something else.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

LOCAL_MODEL = "@local/gemma-3-270m"
DEFAULT_CLOUDFLARE = "@cf/zai-org/glm-4.7-flash"   # Cloudflare's recommended free-plan model
UNKNOWN_CONTEXT = 4096          # assumed when a model's context is not known: history is trimmed
NEURON_USD = 0.011 / 1000       # Workers AI bills $0.011 per 1,000 neurons
FREE_NEURONS = 10_000           # a day, on every plan; resets 00:00 UTC
RETIRED_SEEDS = "2026-05-30"
TEXT_RATE = 300.0               # requests a minute for text generation (platform/limits.mdx)


@dataclass(frozen=True)
class Model:
    id: str
    default_max_tokens: int = 256
    stream_max_tokens: int | None = None   # the service's default when streaming
    context_tokens: int | None = None
    sequence_tokens: int | None = None
    description: str = ""
    source: str = "built-in"               # built-in | live | unverified
    price_in: float | None = None          # $ per million input tokens
    price_out: float | None = None         # $ per million output tokens
    price_cached: float | None = None      # $ per million cached input tokens
    reasoning: bool = False
    tools: bool = False
    vision: bool = False
    paid: bool = False                     # needs the Workers Paid plan or AI Gateway credits
                                           # (require_workers_paid; ai-gateway 2026-08-07)
    batch: bool = False                    # the asynchronous Batch API (async_queue)
    json_mode: bool = False                # takes response_format (features/json-mode.mdx)
    retires: str | None = None             # ISO date it was or will be retired
    replacement: str | None = None
    dialect: str = "chat"                  # how /ai/run answers: chat (a chat.completion in
                                           # the envelope) or legacy ({"response": ...})
    rate: float | None = None              # requests a minute on standard billing (None: 300)
    rate_credits: float | None = None      # the same, billed with AI Gateway credits
    lora: bool = False                     # takes a LoRA adapter (fine-tunes/loras.mdx)

    @property
    def flags(self) -> list[str]:
        return [name for name in ("reasoning", "tools", "vision", "batch", "lora")
                if getattr(self, name)]

    @property
    def per_minute(self) -> float:
        """Requests a minute Cloudflare takes for this model (an account's, per model)."""
        return self.rate or TEXT_RATE

    def limit(self) -> str:
        """The rate limit in words: ``300/min``, ``20/min (50 with gateway credits)``."""
        text = f"{self.per_minute:g}/min"
        if self.rate_credits:
            text += f" ({self.rate_credits:g} with gateway credits)"
        return text

    def retired(self, today: dt.date | None = None) -> bool:
        if not self.retires:
            return False
        return dt.date.fromisoformat(self.retires) <= (today or dt.datetime.now(dt.UTC).date())

    def status(self, today: dt.date | None = None) -> str:
        if self.retired(today):
            return f"retired {self.retires}"
        bits = ["paid plan or gateway credits"] if self.paid else []
        if self.retires:
            bits.append(f"retires {self.retires}")
        return ", ".join(bits)

    @property
    def priced(self) -> bool:
        return self.price_in is not None and self.price_out is not None

    def cost(self, usage: dict | None) -> float | None:
        """What an answer's usage costs at this model's prices ($), if both are known."""
        if self.price_in is None or self.price_out is None or not usage \
                or usage.get("prompt_tokens") is None:
            return None
        prompt = usage.get("prompt_tokens") or 0
        cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
        cached_price = self.price_cached if self.price_cached is not None else self.price_in
        out = usage.get("completion_tokens") or 0
        return ((prompt - cached) * self.price_in + cached * cached_price
                + out * self.price_out) / 1e6

    def limits(self) -> str:
        """The limits a user meets, in words (those not known are left out)."""
        bits = []
        if self.context_tokens:
            bits.append(f"reads up to {self.context_tokens:,} tokens")
        bits.append(f"answers up to {self.default_max_tokens:,} unless --max-tokens says more")
        if self.sequence_tokens:
            bits.append(f"prompt and answer together at most {self.sequence_tokens:,}")
        return "; ".join(bits)

    def summary(self) -> str:
        """One line of facts: context, prices, flags, status."""
        bits = [f"{self.context_tokens // 1000}k context" if self.context_tokens
                else "context ?"]
        if self.priced:
            bits.append(f"${self.price_in:g}/${self.price_out:g} per M")
        bits += self.flags
        if self.status():
            bits.append(self.status())
        return " · ".join(bits)


def _retired_seed(id: str, max_tokens: int, stream: int, context: int | None,
                  sequence: int | None, description: str, price_in: float | None = None,
                  price_out: float | None = None) -> Model:
    # served now only by our backends (local, fake), which implement JSON mode
    return Model(id, max_tokens, stream, context, sequence, description=description,
                 retires=RETIRED_SEEDS, replacement=DEFAULT_CLOUDFLARE, json_mode=True,
                 dialect="legacy", price_in=price_in, price_out=price_out)


SEED = (
    # source: workers-ai-models/llama-2-7b-chat-fp16.json; retired: changelog/workers-ai/
    # 2026-05-08-planned-model-deprecations.mdx (as are the two below)
    _retired_seed("@cf/meta/llama-2-7b-chat-fp16", 256, 2500, 3072, 2500,
                  description="Full precision (fp16) Llama 2 7B chat",
                  price_in=0.556, price_out=6.667),
    # source: workers-ai-models/llama-2-7b-chat-int8.json
    _retired_seed("@cf/meta/llama-2-7b-chat-int8", 256, 1800, 2048, 1800,
                  description="Quantized (int8) Llama 2 7B chat"),
    # source: workers-ai-models/mistral-7b-instruct-v0.1.json
    _retired_seed("@cf/mistral/mistral-7b-instruct-v0.1", 256, 1800, None, None,
                  description="Mistral 7B Instruct v0.1", price_in=0.11, price_out=0.19),
)

# source: ours, the embedded backend (local/model.py: Gemma 3 270M on llama.cpp)
LOCAL = Model(LOCAL_MODEL, 256, 1024, 4096, 2048,
              "Gemma 3 270M (base model) served by the embedded local backend", json_mode=True,
              tools=True, dialect="legacy")    # calls tools through a grammar (local/calling.py)

# Each entry names its source: a file under cloudflare/cloudflare-docs src/content/
# (workers-ai-models/*.json unless a changelog says more); tests/test_models.py checks it.
FRONTIER = 20.0                 # requests a minute (changelog/ai-gateway/2026-08-07-...)
FRONTIER_CREDITS = 50.0

CURRENT = (
    # source: workers-ai-models/glm-4.7-flash.json
    Model(DEFAULT_CLOUDFLARE, context_tokens=131_072, price_in=0.0605, price_out=0.4,
          reasoning=True, tools=True,
          description="GLM-4.7-Flash: fast multilingual dialogue and tool calling"),
    # source: workers-ai-models/gemma-4-26b-a4b-it.json
    Model("@cf/google/gemma-4-26b-a4b-it", context_tokens=256_000, price_in=0.1, price_out=0.3,
          reasoning=True, tools=True, vision=True, batch=True,
          description="Gemma 4 26B A4B instruct"),
    # source: workers-ai-models/gpt-oss-20b.json
    Model("@cf/openai/gpt-oss-20b", context_tokens=128_000, price_in=0.2, price_out=0.3,
          reasoning=True, tools=True, description="OpenAI gpt-oss-20b, open weights"),
    # source: workers-ai-models/granite-4.0-h-micro.json
    Model("@cf/ibm-granite/granite-4.0-h-micro", context_tokens=131_000, price_in=0.017,
          price_out=0.11, description="IBM Granite 4.0 H Micro"),
    # source: workers-ai-models/llama-3.1-8b-instruct-fast.json
    Model("@cf/meta/llama-3.1-8b-instruct-fast", tools=True, json_mode=True, dialect="legacy",
          description="Llama 3.1 8B instruct, fast version"),
    # source: workers-ai-models/llama-3.3-70b-instruct-fp8-fast.json; LoRA: fine-tunes/loras.mdx
    Model("@cf/meta/llama-3.3-70b-instruct-fp8-fast", context_tokens=24_000, price_in=0.29,
          price_out=2.25, tools=True, batch=True, json_mode=True, dialect="legacy", lora=True,
          description="Llama 3.3 70B instruct, fp8, fast version"),
    # source: workers-ai-models/llama-3.2-11b-vision-instruct.json; LoRA: fine-tunes/loras.mdx
    # (the older vision model: a top-level "image", a license agreed to once)
    Model("@cf/meta/llama-3.2-11b-vision-instruct", context_tokens=128_000, price_in=0.049,
          price_out=0.68, vision=True, tools=True, dialect="legacy", lora=True,
          description="Llama 3.2 11B Vision instruct: images and text"),
    # source: workers-ai-models/qwen3.8-27b.json (changelog/workers-ai/2026-08-17-...)
    Model("@cf/qwen/qwen3.8-27b", context_tokens=262_144, price_in=0.45, price_out=3.2,
          price_cached=0.05, reasoning=True, tools=True, vision=True, batch=True,
          description="Qwen 3.8 27B: vision, reasoning and tool calling"),
    # source: workers-ai-models/kimi-k2.6.json; limit: changelog/ai-gateway/2026-08-07-...
    Model("@cf/moonshotai/kimi-k2.6", context_tokens=262_144, price_in=0.95, price_out=4.0,
          price_cached=0.16, reasoning=True, tools=True, vision=True, batch=True, paid=True,
          rate=FRONTIER, rate_credits=FRONTIER_CREDITS, description="Kimi K2.6, 1T parameters"),
    # source: workers-ai-models/kimi-k2.7-code.json; limit: changelog/ai-gateway/2026-08-07-...
    Model("@cf/moonshotai/kimi-k2.7-code", context_tokens=262_144, price_in=0.95, price_out=4.0,
          price_cached=0.19, reasoning=True, tools=True, vision=True, paid=True,
          rate=FRONTIER, rate_credits=FRONTIER_CREDITS,
          description="Kimi K2.7 Code: K2 tuned for code, 30% fewer reasoning tokens"),
    # source: workers-ai-models/glm-5.2.json; prices and limit: changelog/workers-ai/
    # 2026-08-28-glm-5.3-workers-ai.mdx ("the same as GLM-5.2") and ai-gateway/2026-08-07-...
    Model("@cf/zai-org/glm-5.2", price_in=1.4, price_out=4.4, price_cached=0.26, paid=True,
          rate=FRONTIER, rate_credits=FRONTIER_CREDITS, description="GLM-5.2"),
    # source: workers-ai-models/glm-5.3.json
    Model("@cf/zai-org/glm-5.3", context_tokens=1_310_720, price_in=1.4, price_out=4.4,
          price_cached=0.26, reasoning=True, tools=True, paid=True,
          description="GLM-5.3: Z.ai's agentic coding model, 1M-token context"),
    # source: workers-ai-models/glm-5.3-flash.json
    Model("@cf/zai-org/glm-5.3-flash", context_tokens=1_310_720, price_in=0.15, price_out=0.5,
          price_cached=0.03, reasoning=True, tools=True, vision=True, paid=True,
          description="GLM-5.3 Flash: 320B MoE (18B active), images and text"),
    # source: workers-ai-models/deepseek-v4-flash-0731.json
    Model("@cf/deepseek-ai/deepseek-v4-flash-0731", context_tokens=1_048_576, price_in=0.44,
          price_out=1.32, price_cached=0.014, reasoning=True, tools=True, batch=True, paid=True,
          description="DeepSeek V4 Flash: reasoning, 1,048,576-token context"),
    # source: workers-ai-models/deepseek-v4-pro-0813.json
    Model("@cf/deepseek-ai/deepseek-v4-pro-0813", context_tokens=1_048_576, price_in=1.32,
          price_out=3.96, price_cached=0.044, reasoning=True, tools=True, paid=True,
          description="DeepSeek V4 Pro: long-horizon reasoning, 1,048,576-token context"),
)

# Ids that now answer as another model: sent as the model they became, and said so.
# source: workers-ai-models/kimi-k2.5.json (deprecation 2026-05-30) and the second part of
# ../shared/workers-ai-api.md ("Kimi K2.5 is now an alias of K2.6 at K2.6's prices")
RENAMED = {"@cf/moonshotai/kimi-k2.5": "@cf/moonshotai/kimi-k2.6"}

# Models of Workers AI that are not text generation, and what they are instead.
# source: workers-ai-models/moondream3.1-9B-A2B.json (task Image-to-Text)
NOT_TEXT = {
    "@cf/moondream/moondream3.1-9B-A2B": "Moondream 3.1 is an Image-to-Text model with its own "
                                         "schema (query, caption, point, detect), not a chat "
                                         "model",
}

BUILT_IN = (*CURRENT, *SEED, LOCAL)

ALIASES = {
    "glm": DEFAULT_CLOUDFLARE,
    "glm5": "@cf/zai-org/glm-5.3",
    "qwen": "@cf/qwen/qwen3.8-27b",
    "deepseek": "@cf/deepseek-ai/deepseek-v4-flash-0731",
    "kimi": "@cf/moonshotai/kimi-k2.6",
    "gemma4": "@cf/google/gemma-4-26b-a4b-it",
    "gpt-oss": "@cf/openai/gpt-oss-20b",
    "llama3": "@cf/meta/llama-3.1-8b-instruct-fast",
    "llama-vision": "@cf/meta/llama-3.2-11b-vision-instruct",
    "llama2": "@cf/meta/llama-2-7b-chat-fp16",
    "llama2-fp16": "@cf/meta/llama-2-7b-chat-fp16",
    "llama2-int8": "@cf/meta/llama-2-7b-chat-int8",
    "mistral": "@cf/mistral/mistral-7b-instruct-v0.1",
    "gemma": LOCAL_MODEL,
    "local": LOCAL_MODEL,
}
