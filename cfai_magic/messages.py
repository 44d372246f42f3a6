"""A message's content: a string, a list of parts (text now, images next), or null beside an
assistant's tool calls. Everything that reads a message's text reads it through here."""
from __future__ import annotations


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
