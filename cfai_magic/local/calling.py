"""Tool calls from the embedded model: a base model cannot choose a function by itself, so when
it is offered tools (and has no result yet) its output is held to a llama.cpp grammar made from
the tools' schemas: it can only write a well-formed call to one of them. Once a tool's result
is in the conversation it answers in words."""
from __future__ import annotations

import json


def offered(body: dict) -> list[dict]:
    """The tools to call now: those offered, unless tool_choice is none or the last message
    is already a tool's result. Each as ``{name, description, parameters}``."""
    tools = body.get("tools")
    if not isinstance(tools, list) or not tools or body.get("tool_choice") == "none":
        return []
    messages = body.get("messages") or []
    if messages and isinstance(messages[-1], dict) and messages[-1].get("role") == "tool":
        return []
    flat = [t.get("function", t) for t in tools if isinstance(t, dict)]
    return [t for t in flat if isinstance(t.get("name"), str)]


def schema(tools: list[dict]) -> dict:
    """One JSON object naming a tool and its arguments, for each tool offered."""
    return {"oneOf": [{"type": "object", "additionalProperties": False,
                       "required": ["name", "arguments"],
                       "properties": {"name": {"const": t["name"]},
                                      "arguments": t.get("parameters") or {"type": "object"}}}
                      for t in tools]}


def preamble(tools: list[dict]) -> str:
    """What the model reads before the conversation: the functions, and that it answers with
    a call."""
    lines = ["You can call these functions:"]
    for t in tools:
        params = ", ".join((t.get("parameters") or {}).get("properties") or {})
        lines.append(f"- {t['name']}({params}): {t.get('description') or ''}".rstrip(": "))
    lines.append('Answer with a JSON call, like {"name": ..., "arguments": {...}}.\n')
    return "\n".join(lines) + "\n"


def parse(text: str) -> tuple[str, dict] | None:
    """(name, arguments) of the call the grammar let through, or None."""
    try:
        call = json.loads(text)
    except ValueError:
        return None
    if not isinstance(call, dict) or not isinstance(call.get("name"), str):
        return None
    args = call.get("arguments")
    return call["name"], args if isinstance(args, dict) else {}
