"""A message's content: a string, a list of parts (text now, images next), or null beside an
assistant's tool calls. Everything that reads a message's text reads it through here, and
the messages a tool loop adds are made here.

Messages are kept in one neutral shape, OpenAI's (``tool_calls`` with JSON-string arguments,
``tool`` messages with ``tool_call_id``), which today's models take on ``/ai/run`` and every
engine takes on ``/chat/completions``; :func:`for_legacy` writes them for the older
``/ai/run`` models, as Cloudflare's own provider does.
"""
from __future__ import annotations

import json
from typing import Any


def text_of(content) -> str:
    """A message's text: the string, the text parts joined, or '' for null."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p["text"] for p in content
                         if isinstance(p, dict) and p.get("type") == "text"
                         and isinstance(p.get("text"), str))
    return str(content)


def images_in(message: dict) -> int:
    """How many image parts a message holds."""
    content = message.get("content")
    return sum(1 for p in content if isinstance(p, dict) and p.get("type") == "image_url") \
        if isinstance(content, list) else 0


def shown(content) -> str:
    """A message as text for a terminal: its text, each image as ``[image W×H]``."""
    if not isinstance(content, list):
        return text_of(content)
    from .images import of_part
    out, after_text = [], False
    for part in content:
        if isinstance(part, dict) and part.get("type") == "image_url":
            picture = of_part(part)
            out.append(f"[{picture.label()}]" if picture else "[image]")
            after_text = False
        elif isinstance(part, dict) and part.get("type") == "text":
            out.append(("\n" if after_text else "") + str(part.get("text", "")))
            after_text = True
    return "".join(out)


def without_images(message: dict, note: str) -> dict:
    """The message with its image parts replaced by ``note`` (a text part)."""
    content = message.get("content")
    if not isinstance(content, list) or not images_in(message):
        return message
    kept = [p if not (isinstance(p, dict) and p.get("type") == "image_url")
            else {"type": "text", "text": note} for p in content]
    return {**message, "content": kept}


def size_of(message: dict) -> str:
    """All the text a message sends (its content and its calls' arguments), for estimates."""
    calls = "".join(str((c.get("function") or {}).get("arguments", ""))
                    for c in message.get("tool_calls") or () if isinstance(c, dict))
    return text_of(message.get("content")) + calls


def call_id(call, index: int) -> str:
    """A call's id: the model's, or one made up in its turn (legacy models give none)."""
    return call.id or f"call_{index}"


def assistant(text: str, calls=()) -> dict:
    """The assistant message of an answer: its text and/or the calls it asked for."""
    message: dict[str, Any] = {"role": "assistant",
                               "content": text if (text or not calls) else None}
    if calls:
        message["tool_calls"] = [
            {"id": call_id(c, i), "type": "function",
             "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
            for i, c in enumerate(calls)]
    return message


def tool_result(step) -> dict:
    """A tool's result (or its error) as the message that answers its call."""
    content = step.result if step.error is None else f"Error: {step.error}"
    return {"role": "tool", "tool_call_id": step.id, "name": step.name, "content": content}


def for_legacy(messages: list[dict]) -> list[dict]:
    """The older /ai/run models' shape: no null content, an assistant's call also written as
    its JSON ``{"name", "parameters"}``, each tool result naming its tool."""
    out = []
    for m in messages:
        m = dict(m)
        calls = m.get("tool_calls") or ()
        if m.get("content") is None:
            said = [{"name": c["function"]["name"],
                     "parameters": _decoded(c["function"]["arguments"])} for c in calls]
            m["content"] = json.dumps(said[0] if len(said) == 1 else said) if said else ""
        out.append(m)
    return out


def legacy_tools(specs: list[dict]) -> list[dict]:
    """Tools as the older /ai/run models take them: ``{name, description, parameters}``."""
    return [s.get("function", s) for s in specs]


def _decoded(arguments):
    try:
        return json.loads(arguments) if isinstance(arguments, str) else arguments
    except ValueError:
        return arguments


def forced(tool_choice) -> bool:
    """Whether the request demanded a tool call (``required`` or a named function)."""
    return tool_choice == "required" or (isinstance(tool_choice, dict)
                                         and tool_choice.get("type") == "function")


def leaked_calls(text: str, names) -> list[tuple[str, dict]]:
    """Calls a model wrote as JSON text instead of tool_calls (gpt-oss does, when a call was
    forced): objects whose ``name`` is one of the tools, their arguments wrapped
    (``arguments``/``parameters``) or beside the name. As Cloudflare's provider recovers
    them (cloudflare/ai #560); anything else is not a call."""
    try:
        parsed = json.loads(text.strip())
    except (ValueError, RecursionError):
        return []
    found = []
    for item in parsed if isinstance(parsed, list) else [parsed]:
        if not isinstance(item, dict) or item.get("name") not in names:
            continue
        if "arguments" in item:
            args = item["arguments"]
        elif "parameters" in item:
            args = item["parameters"]
        else:
            args = {k: v for k, v in item.items() if k != "name"}
        args = _decoded(args)
        found.append((item["name"], args if isinstance(args, dict) else {"_value": args}))
    return found
