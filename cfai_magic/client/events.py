"""The typed events every wire protocol is turned into: all that code above ``client/`` sees."""
from __future__ import annotations

from typing import NamedTuple

class Text(NamedTuple):
    """A piece of the answer."""
    text: str

class Reasoning(NamedTuple):
    """A piece of the model's thinking, shown apart and never sent back."""
    text: str

class ToolCall(NamedTuple):
    """A call the model asks for; ``arguments`` is a dict (a JSON string is decoded)."""
    name: str
    arguments: dict
    id: str | None = None

class Usage(NamedTuple):
    """Token counts; the last one seen wins (chat.completion streams send running totals)."""
    usage: dict

class Done(NamedTuple):
    """The answer ended, and why (``stop``, ``length``, ``tool_calls``, or None if not said)."""
    finish_reason: str | None = None

Event = Text | Reasoning | ToolCall | Usage | Done
