"""The typed events every wire protocol is turned into: all that code above ``client/`` sees."""
from __future__ import annotations

from functools import partial
from typing import NamedTuple

class Text(NamedTuple):
    """A piece of the answer."""
    text: str

# Text(piece) made without NamedTuple's Python-level __new__: new_text((piece,)). For the
# decoders' per-token paths (540 ns a token here, 215 ns this way).
new_text = partial(tuple.__new__, Text)

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
