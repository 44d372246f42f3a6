"""Workers AI ``/ai/run/{model}`` (and AI Gateway's ``/workers-ai/{model}``), both dialects.

Legacy models answer ``result.response`` (a string, or an object in JSON mode) and stream
``data: {"response": "tok"}`` (with a padding field ``p``, ``tool_calls`` events and a last event
carrying ``usage``). Today's models answer an OpenAI ``chat.completion`` inside the v4 envelope
and stream ``chat.completion.chunk`` events: those go to the OpenAI decoder.
"""
from __future__ import annotations

import json

from ...errors import StreamError
from ..events import Done, Event, Text, ToolCall, Usage, new_text
from ...messages import for_legacy, legacy_tools, text_of
from . import openai
from .paths import account_segment, model_path

NAME = "workers-ai"
ACCOUNT_IN_PATH = True
ANY_MODEL = False


def root(api_root: str, account_id: str) -> str:
    return api_root


def url(base_url: str, account_id: str | None, model: str, gateway: str | None) -> str:
    account, path = account_segment(account_id), model_path(model)
    if gateway:
        return f"{base_url}/{account}/{account_segment(gateway, 'gateway name')}/workers-ai/{path}"
    return f"{base_url}/accounts/{account}/ai/run/{path}"


def models_url(base_url: str, account_id: str | None, page: int = 1) -> str:
    return (f"{base_url}/accounts/{account_segment(account_id)}/ai/models/search"
            f"?task=Text%20Generation&per_page=100&page={int(page)}")


def more_pages(data) -> bool:
    """Whether models/search has pages after this one (its result_info says)."""
    info = data.get("result_info") if isinstance(data, dict) else None
    if not isinstance(info, dict):
        return False
    try:
        return int(info["page"]) * int(info["per_page"]) < int(info["total_count"])
    except (KeyError, TypeError, ValueError):
        return False


def model_names(data) -> list[dict]:
    found = data.get("result") if isinstance(data, dict) else None
    return [m for m in found or [] if isinstance(m, dict) and isinstance(m.get("name"), str)
            and (m.get("task") or {}).get("name", "Text Generation") == "Text Generation"]


def body(model: str, request: dict, stream: bool, dialect: str = "chat") -> dict:
    """Today's models take OpenAI's tools and messages on /ai/run; the older (legacy) ones
    take ``tools: [{name, description, parameters}]`` and no null content."""
    out = {**request, "stream": stream}
    if dialect == "legacy":
        if out.get("tools"):
            out["tools"] = legacy_tools(out["tools"])
        if "messages" in out:
            out["messages"], image = image_field(for_legacy(out["messages"]))
            if image is not None:
                out["image"] = image
    return out


def image_field(messages: list[dict]):
    """The older vision model's shape: text content, and the last image sent as a top-level
    ``image`` of byte values (its schema takes one image, as an array of integers)."""
    from ...images import pictures_in
    pictures = pictures_in(messages)
    if not pictures:
        return messages, None
    flat = [{**m, "content": text_of(m.get("content"))} for m in messages]
    return flat, list(pictures[-1].data)


def _legacy_calls(calls) -> list:
    out = []
    for call in calls if isinstance(calls, list) else ():
        if isinstance(call, dict):
            fn: dict = call["function"] if isinstance(call.get("function"), dict) else call
            out.append(ToolCall(fn.get("name", ""), openai.arguments(fn.get("arguments")),
                                call.get("id")))
    return out


class Decoder(openai.Decoder):
    _chat = openai.Decoder.chunk             # called as a plain method: super() costs a token
    def whole(self, obj: dict) -> list:
        result = obj.get("result", obj if "choices" in obj else None)
        if not isinstance(result, dict):
            raise StreamError("The answer has no result in its envelope")
        if "choices" in result:
            return super().whole(result)
        events: list[Event] = []
        text = result.get("response")
        if text is not None and not isinstance(text, str):
            text = json.dumps(text)                       # JSON mode answers an object
        if text:
            events.append(Text(text))
        calls = _legacy_calls(result.get("tool_calls"))
        events.extend(calls)
        if isinstance(result.get("usage"), dict):
            events.append(Usage(result["usage"]))
        events.append(Done("tool_calls" if calls else openai.finish(result.get("finish_reason"))))
        return events

    def chunk(self, obj: dict) -> list:
        if "choices" in obj and "response" not in obj:
            return self._chat(obj)                          # a chat.completion model
        piece = obj.get("response")
        if type(piece) is str and "usage" not in obj and "finish_reason" not in obj:
            return [new_text((piece,))] if piece else []     # the common case, kept fast
        if "choices" in obj:
            return self._chat(obj)
        events: list[Event] = []
        if piece is not None and piece != "":
            events.append(Text(piece if isinstance(piece, str) else json.dumps(piece)))
        events.extend(_legacy_calls(obj.get("tool_calls")))
        if obj.get("finish_reason"):
            self._finish = obj["finish_reason"]
        if isinstance(obj.get("usage"), dict):
            events.append(Usage(obj["usage"]))
            self._final_usage = True         # a legacy stream's last event carries the usage
        return events
