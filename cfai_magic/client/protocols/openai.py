"""The OpenAI-compatible protocol: ``POST {base}/chat/completions`` with the model in the body.

Spoken by Cloudflare's ``/ai/v1``, vLLM, llama.cpp's server, Ollama and LiteLLM. The answer is a
``chat.completion`` (or ``text_completion``), streamed as ``chat.completion.chunk`` events. The
same shape comes inside the v4 envelope from today's models on ``/ai/run``, so
:class:`Decoder` is shared with workers_ai.py.
"""
from __future__ import annotations

import json
import re

from ...errors import StreamError
from ..events import Done, Event, Reasoning, Text, ToolCall, Usage, new_text

NAME = "openai"
ACCOUNT_IN_PATH = False
ANY_MODEL = True


def root(api_root: str, account_id: str) -> str:
    """Cloudflare serves this protocol at ``/accounts/{id}/ai/v1`` under its v4 API root."""
    from .paths import account_segment
    return f"{api_root}/accounts/{account_segment(account_id)}/ai/v1"


def url(base_url: str, account_id: str | None, model: str, gateway: str | None) -> str:
    return f"{base_url}/chat/completions"


def models_url(base_url: str, account_id: str | None, page: int = 1) -> str:
    return f"{base_url}/models"


def more_pages(data) -> bool:
    return False                      # /models is one list


def model_names(data) -> list[dict]:
    items = data.get("data") if isinstance(data, dict) else None
    return [{"name": m["id"]} for m in items or []
            if isinstance(m, dict) and isinstance(m.get("id"), str)]


def body(model: str, request: dict, stream: bool, dialect: str = "chat") -> dict:
    """The request body: chat messages (a prompt becomes one user message), usage asked for.
    Messages and tools are already in this protocol's shape (messages.py)."""
    request = dict(request)
    if "prompt" in request:
        request["messages"] = [{"role": "user", "content": request.pop("prompt")}]
    fmt = request.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema" \
            and "schema" not in (fmt.get("json_schema") or {}):
        # Workers AI's /ai/run takes the schema itself; OpenAI wants it named and wrapped
        schema = fmt.get("json_schema") or {}
        request["response_format"] = {"type": "json_schema", "json_schema": {
            "name": re.sub(r"[^A-Za-z0-9_-]", "_", str(schema.get("title") or "answer"))[:64],
            "schema": schema}}
    out = {"model": model, **request, "stream": stream}
    if stream:
        out["stream_options"] = {"include_usage": True}
    return out


def arguments(value) -> dict:
    """Tool-call arguments: a JSON string decoded, an object kept."""
    if isinstance(value, dict):
        return value
    try:
        decoded = json.loads(value or "{}")
    except (TypeError, ValueError):
        return {"_raw": value}
    return decoded if isinstance(decoded, dict) else {"_value": decoded}


PLAIN = frozenset({"role", "content"})      # a delta with nothing but text


def _reasoning(part: dict):
    return part.get("reasoning_content") or part.get("reasoning")


def finish(reason) -> str:
    """The finish reason as Cloudflare's provider reads it: ``model_length`` is ``length``, and
    an answer that ended without saying why stopped (``stop``)."""
    if not isinstance(reason, str) or not reason:
        return "stop"
    return "length" if reason == "model_length" else reason


class Decoder:
    """chat.completion(.chunk) objects into events. Streamed tool calls come in pieces keyed
    by ``index`` and are put together until the stream ends."""

    def __init__(self):
        self._calls: dict[int, dict] = {}
        self._finish: str | None = None
        self._usage: dict | None = None       # a running total on each chunk: the last wins
        self._final_usage = False             # a usage-only last chunk (choices: []) came

    @property
    def finished(self) -> bool:
        """The answer said it had finished: a finish reason, or the final usage chunk."""
        return self._finish is not None or self._final_usage

    def whole(self, obj: dict) -> list:
        if "choices" not in obj and isinstance(obj.get("result"), dict):
            obj = obj["result"]                         # inside a v4 envelope
        if not isinstance(obj.get("choices"), list):
            raise StreamError("The answer has no choices")
        events: list[Event] = []
        choices = obj.get("choices") or []
        choice = choices[0] if choices and isinstance(choices[0], dict) else {}
        message: dict = choice["message"] if isinstance(choice.get("message"), dict) else {}
        thought = _reasoning(message)
        if isinstance(thought, str) and thought:
            events.append(Reasoning(thought))
        text = message.get("content") if message else choice.get("text")
        if isinstance(text, str) and text:
            events.append(Text(text))
        for call in message.get("tool_calls") or []:
            fn = call.get("function") or {}
            events.append(ToolCall(fn.get("name", ""), arguments(fn.get("arguments")),
                                   call.get("id")))
        if isinstance(obj.get("usage"), dict):
            events.append(Usage(obj["usage"]))
        events.append(Done(finish(choice.get("finish_reason"))))
        return events

    def chunk(self, obj: dict) -> list:
        choices = obj.get("choices")
        choice = choices[0] if type(choices) is list and choices else None
        if type(choice) is not dict:
            return self._usage_of(obj, choices, [])
        delta = choice.get("delta")
        if type(delta) is dict and delta.keys() <= PLAIN and not choice.get("finish_reason"):
            text = delta.get("content")         # nearly every chunk: text only, kept short
            usage = obj.get("usage")
            if type(usage) is dict:
                self._usage = usage
            return [new_text((text,))] if text else []
        events: list[Event] = []
        if type(delta) is dict:
            thought = _reasoning(delta)
            if thought:
                events.append(Reasoning(thought))
            text = delta.get("content")
            if text:
                events.append(Text(text))
            for call in delta.get("tool_calls") or ():
                self._add_call(call)
        elif isinstance(choice.get("text"), str) and choice["text"]:
            events.append(Text(choice["text"]))          # text_completion chunks
        if choice.get("finish_reason"):
            self._finish = choice["finish_reason"]
        return self._usage_of(obj, choices, events)

    def _usage_of(self, obj: dict, choices, events: list) -> list:
        """``events``, having kept the usage the chunk carries: a running total on each
        chunk (the last wins), or a last chunk of its own (``choices: []``)."""
        usage = obj.get("usage")
        if isinstance(usage, dict):
            self._usage = usage
            if choices == []:
                self._final_usage = True
        return events

    def _add_call(self, part: dict) -> None:
        slot = self._calls.setdefault(part.get("index", len(self._calls)),
                                      {"id": None, "name": "", "arguments": ""})
        fn = part.get("function") or {}
        slot["id"] = part.get("id") or slot["id"]
        slot["name"] += fn.get("name") or ""
        args = fn.get("arguments")
        if isinstance(args, dict):
            slot["arguments"] = args
        elif args:
            slot["arguments"] += args

    def end(self) -> list:
        calls = [ToolCall(c["name"], arguments(c["arguments"]), c["id"])
                 for _, c in sorted(self._calls.items())]
        usage = [Usage(self._usage)] if self._usage is not None else []
        return [*calls, *usage, Done(finish(self._finish))]
