"""Cell text to model input: a prompt, or a list of messages. Pure functions, no IPython.

Three shapes of cell:
- plain text: the user's turn;
- role lines: ``system:``, ``user:``, ``assistant:`` at the start of a line begin a message,
  which runs until the next role line (the first non-empty line must be one);
- a JSON array of ``{"role", "content"}`` objects.

``{name}``, ``{name.attr}``, ``{name[key]}`` are filled from the user's namespace (JSON-escaped
inside a JSON cell); ``{{name}}`` writes ``{name}`` as it is; anything else in braces (JSON, code,
unknown names) stays exactly as written. A field whose value is an image (images.py) becomes an
image part at that place: the message's content is then a list of text and image parts. Other
values are written as a model should read them (context.py: a DataFrame described within a
budget, long text cut with a marker); ``{name!r}`` and ``{name!s}`` write the value's repr or
str instead, as in f-strings.
"""
from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from .errors import InputError

ROLES = ("system", "user", "assistant")
_LOOKS_LIKE_ROLE = ("human", "ai", "bot", "developer", "tool", "sys", "usr")  # + near misses
_PATH = r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*|\[(?:-?\d+|'[^'\]]*'|\"[^\"\]]*\"|\w+)\])*"
_FIELD = re.compile(r"\{\{(" + _PATH + r")\}\}|\{(" + _PATH + r")(?:!([rs]))?\}")
_STEP = re.compile(r"\.([A-Za-z_]\w*)|\[(-?\d+|'[^'\]]*'|\"[^\"\]]*\"|\w+)\]")
_ROLE_LINE = re.compile(r"^\s*([A-Za-z]+)\s*:[ \t]?(.*)$")
_MISSING = MISSING = object()   # what lookup() gives for a name it cannot find
_PLACE = "\x00cfai-image-{}\x00"   # where an image goes, until the content is split into parts
_PLACED = re.compile("\x00cfai-image-(\\d+)\x00")


@dataclass
class Parsed:
    """What a cell asks: ``messages`` when the cell is written as messages, else ``text``
    (a string, or parts when it holds images); ``pictures`` are the images it holds."""
    text: str | list | None = None
    messages: list[dict] | None = None
    pictures: list = field(default_factory=list)
    notes: list[str] = field(default_factory=list)     # what was described or cut, how big

    @property
    def is_messages(self) -> bool:
        return self.messages is not None


def _head(path: str) -> str:
    """The name a field starts with (fields are matched so that there is one)."""
    found = re.match(r"[A-Za-z_]\w*", path)
    return found.group(0) if found else ""


def lookup(path: str, namespace: Mapping):
    """The value of ``name.attr[key]...`` in ``namespace``, or _MISSING."""
    name = _head(path)
    if name not in namespace:
        return _MISSING
    value = namespace[name]
    for attr, key in _STEP.findall(path[len(name):]):
        try:
            if attr:
                value = getattr(value, attr)
            elif re.fullmatch(r"-?\d+", key):
                value = value[int(key)]
            else:
                value = value[key.strip("'\"")]
        except Exception:
            return _MISSING
    return value


class Filling:
    """How fields are filled: images collected, values rendered for a model within
    ``budget`` characters, and a note of each one described or cut."""

    def __init__(self, budget: int | None = None):
        self.pictures: list = []
        self.notes: list[str] = []
        self.budget = budget

    def render(self, field: str, value, conversion: str | None) -> str:
        if conversion == "r":
            return repr(value)
        if conversion == "s" or self.budget is None:
            return str(value)
        from .context import described, for_model
        text = for_model(value, self.budget)
        kind = described(value)
        if kind:
            self.notes.append(f"{{{field}}}: {kind}, described in {len(text):,} characters "
                              f"(about {-(-len(text) // 4):,} tokens).")
        elif "characters left out …]" in text and len(text) < len(str(value)):
            self.notes.append(f"{{{field}}}: {len(str(value)):,} characters, cut to "
                              f"{len(text):,} to fit the model's context and value_budget; say "
                              f"{{{field}!s}} for all.")
        return text

    def unknown(self, field: str, namespace) -> None:
        """A note for a field naming no variable: it is sent as written (braces and all)."""
        import difflib
        name = _head(field)
        note = f"{{{field}}} is not a variable here, so it was sent as written"
        if name in namespace:
            note = f"{{{field}}}: {name} has no such attribute or key, so it was sent as written"
        else:
            names = [k for k in namespace if isinstance(k, str) and not k.startswith("_")]
            close = difflib.get_close_matches(name, names, n=1, cutoff=0.7)
            if close:
                note += f" (did you mean {{{close[0]}}}?)"
        note += "; write {{" + field + "}} if you meant the braces."
        if note not in self.notes:
            self.notes.append(note)


def interpolate(text: str, namespace: Mapping, escape=str, pictures: list | None = None,
                filling: Filling | None = None) -> str:
    """Fill ``{name...}`` fields from ``namespace``; see the module docstring. With
    ``pictures`` (or a ``filling``), an image value is kept there and its place marked."""
    if filling is not None:
        pictures = filling.pictures

    def fill(match):
        if match.group(1):
            return "{" + match.group(1) + "}"
        value = lookup(match.group(2), namespace)
        if value is _MISSING:
            if filling is not None and namespace:
                filling.unknown(match.group(2), namespace)
            return match.group(0)
        if pictures is not None and match.group(3) is None:
            from .images import picture_of
            picture = picture_of(value)
            if picture is not None:
                pictures.append(picture)
                return escape(_PLACE.format(len(pictures) - 1))
        if filling is not None:
            return escape(filling.render(match.group(2), value, match.group(3)))
        return escape(value)
    return _FIELD.sub(fill, text)


def with_pictures(content: str, pictures: list):
    """The content with its marked places split into text and image parts (or the string as
    it is, if it holds none)."""
    if "\x00" not in content:
        return content
    parts, at = [], 0
    for found in _PLACED.finditer(content):
        if content[at:found.start()]:
            parts.append({"type": "text", "text": content[at:found.start()]})
        parts.append(pictures[int(found.group(1))].part())
        at = found.end()
    if content[at:]:
        parts.append({"type": "text", "text": content[at:]})
    return parts


def field_names(text: str) -> set[str]:
    """The names the ``{name...}`` fields of ``text`` start with (``{{name}}`` excluded)."""
    return {_head(m.group(2))
            for m in _FIELD.finditer(text) if m.group(2)}


def _json_escape(value) -> str:
    return json.dumps(value if isinstance(value, str) else str(value))[1:-1]


def _role_of(word: str) -> str | None:
    word = word.lower()
    if word in ROLES:
        return word
    if word in _LOOKS_LIKE_ROLE or difflib.get_close_matches(word, ROLES, n=1, cutoff=0.75):
        return "?"
    return None


def _parse_json(text: str, namespace: Mapping, filling: Filling) -> list[dict]:
    pictures = filling.pictures
    filled = interpolate(text, namespace, _json_escape, filling=filling)
    try:
        data = json.loads(filled)
    except json.JSONDecodeError as err:
        raise InputError(f"The cell looks like a JSON list of messages but is not valid JSON: "
                         f"{err.msg} at line {err.lineno}, column {err.colno}",
                         hint="Fix the JSON, or write the messages as role lines (user: ...)"
                         ) from None
    if not isinstance(data, list) or not data:
        raise InputError("A JSON cell must be a non-empty list of {role, content} objects")
    for i, item in enumerate(data, 1):
        if not isinstance(item, dict) or not isinstance(item.get("content"), str):
            raise InputError(f"Message {i} of the JSON list needs a string \"content\"")
        if item.get("role") not in ROLES:
            raise InputError(f"Message {i} has unknown role {item.get('role')!r}",
                             hint="Use system, user or assistant")
    return [{"role": m["role"], "content": with_pictures(m["content"], pictures)} for m in data]


def _parse_roles(lines: list[str], namespace: Mapping, filling: Filling) -> list[dict]:
    pictures = filling.pictures
    messages: list[dict] = []
    starts: list[int] = []
    for number, line in enumerate(lines, 1):
        match = _ROLE_LINE.match(line)
        role = _role_of(match.group(1)) if match else None
        if role == "?" and match:
            raise InputError(f"Unknown role {match.group(1)!r} on line {number}",
                             hint="Start a message with system:, user: or assistant:")
        if role and match:
            messages.append({"role": role, "content": match.group(2)})
            starts.append(number)
        else:
            messages[-1]["content"] += "\n" + line
    for message, number in zip(messages, starts):
        message["content"] = with_pictures(
            interpolate(message["content"].strip(), namespace, filling=filling), pictures)
        if not message["content"]:
            raise InputError(f"The {message['role']}: message on line {number} is empty")
    return messages


def parse_cell(text: str, namespace: Mapping | None = None, *, fill: bool = True,
               budget: int | None = None) -> Parsed:
    """A cell's text as a prompt or a list of messages; :class:`InputError` for bad input.
    ``budget``: the characters a value may take (None: values written as str, as before)."""
    namespace = namespace if (namespace is not None and fill) else {}
    stripped = text.strip()
    if not stripped:
        raise InputError("The cell is empty", hint="Write a prompt below %%cfai")
    filling = Filling(budget)
    pictures, notes = filling.pictures, filling.notes
    if re.match(r"\[\s*\{", stripped):
        return Parsed(messages=_parse_json(stripped, namespace, filling), pictures=pictures,
                      notes=notes)
    lines = stripped.splitlines()
    first = _ROLE_LINE.match(lines[0])
    if first and _role_of(first.group(1)):
        return Parsed(messages=_parse_roles(lines, namespace, filling), pictures=pictures,
                      notes=notes)
    return Parsed(text=with_pictures(interpolate(stripped, namespace, filling=filling),
                                     pictures), pictures=pictures, notes=notes)
