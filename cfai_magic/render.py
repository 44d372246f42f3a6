"""StreamRenderer: one output, updated in place as an answer arrives, throttled.

Rich mode (a kernel): one display_id; at most ``updates_per_second`` updates while streaming,
then one final update with the whole answer and a compact footer; the final output's metadata
(``cfai``) names the model, parameters, usage and backend. Print mode (terminal IPython): chunks
are printed as they come. Final mode (batch runs: tools such as nbval that ignore display
updates): nothing until the answer is complete, then the same final output as rich mode.
"""
from __future__ import annotations

import json
import re
import time
import uuid

from IPython.display import display

ICONS = {"streaming": "⏳", "done": "✓", "interrupted": "⏹ interrupted", "error": "✗ failed"}
_FENCE = re.compile(r"```[ \t]*([\w+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.S)


def code_blocks(text: str) -> list[tuple[str, str]]:
    """(language, code) of each fenced block."""
    return [(lang, code.rstrip("\n")) for lang, code in _FENCE.findall(text)]


def answer_code(text: str) -> str:
    """The code of an answer: its fenced blocks joined, else the whole answer."""
    blocks = code_blocks(text)
    return "\n\n".join(code for _, code in blocks) if blocks else text.strip()


def answer_json(text: str):
    """The JSON in an answer (a ```json block or the whole text), or raise ValueError."""
    blocks = [c for lang, c in code_blocks(text) if lang.lower() in ("json", "")]
    return json.loads(blocks[0] if blocks else text)


class Meter:
    """Counts an answer's chunks, times them, and says when a throttled update is due."""

    def __init__(self, updates_per_second: float = 20.0, clock=time.monotonic):
        self.clock = clock
        self.interval = 1.0 / updates_per_second if updates_per_second > 0 else 0.0
        self.parts: list[str] = []
        self.tokens = 0
        self.start = self.last = clock()          # the first update comes one interval in
        self.first = None

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def add(self, piece: str) -> bool:
        """Take a chunk; True when an update is due."""
        self.parts.append(piece)
        self.tokens += 1
        now = self.clock()
        if self.first is None:
            self.first = now
        if now - self.last >= self.interval:
            self.last = now
            return True
        return False

    def status(self, model: str, state: str, usage: dict | None = None, backend: str = "",
               replayed: bool = False) -> str:
        """``✓ model · 57 tokens · 40.1 tok/s · 1.4 s · backend``."""
        now = self.clock()
        tokens = (usage or {}).get("completion_tokens") or self.tokens
        bits = [f"{ICONS[state]} {model}", f"{tokens} tokens"]
        if replayed:                      # a cassette answers at once: no timing to show
            bits.append("replayed")
        else:
            if self.first is not None and self.tokens > 1 and now > self.first:
                bits.append(f"{self.tokens / (now - self.first):.1f} tok/s")
            bits.append(f"{now - self.start:.1f} s")
        if backend:
            bits.append(backend)
        return " · ".join(bits)


class StreamRenderer:
    def __init__(self, model: str, *, fmt: str = "markdown", updates_per_second: float = 20.0,
                 mode: str = "rich", notices=(), clock=time.monotonic, printer=None):
        self.model = model
        self.fmt = fmt
        self.mode = mode
        self.notices = list(notices)
        self.printer = printer or (lambda *args, **kw: print(*args, **kw))
        self.meter = Meter(updates_per_second, clock)
        self.updates = 0
        self.display_id = uuid.uuid4().hex
        self._handle = None

    @property
    def text(self) -> str:
        return self.meter.text

    @property
    def parts(self) -> list[str]:
        return self.meter.parts

    @property
    def tokens(self) -> int:
        return self.meter.tokens

    def status(self, state: str, usage: dict | None = None, backend: str = "",
               replayed: bool = False) -> str:
        return self.meter.status(self.model, state, usage, backend, replayed)

    def _bundle(self, footer: str, final: bool) -> dict:
        text = self.text
        lines = [footer, *self.notices]
        plain = (text + "\n" if text else "") + "\n".join(lines)
        if self.fmt == "text":
            return {"text/plain": plain}
        if final and self.fmt == "json":
            try:
                return {"application/json": answer_json(text), "text/plain": plain}
            except ValueError:
                pass
        small = "".join(f"\n\n<sub>{line}</sub>" for line in lines)
        return {"text/markdown": (text + small) if text else small.lstrip(), "text/plain": plain}

    def start(self) -> None:
        if self.mode == "final":
            return
        if self.mode == "print":
            for notice in self.notices:
                self.printer(notice)
            return
        self._handle = display(self._bundle(self.status("streaming"), False), raw=True,
                               display_id=self.display_id)
        self.updates += 1

    def waiting(self, text: str) -> None:
        """Say what the wait is for, in the status line (gone when the answer comes)."""
        if self.mode == "final":
            return
        if self.mode == "print":
            self.printer(f"⏳ {text}")
        else:
            self._update(self._bundle(f"⏳ {self.model} · {text}", False))

    def feed(self, piece: str) -> None:
        due = self.meter.add(piece)
        if self.mode == "print":
            self.printer(piece, end="", flush=True)
        elif self.mode == "rich" and due:
            self._update(self._bundle(self.status("streaming"), False))

    def _update(self, bundle: dict, metadata: dict | None = None) -> None:
        if self.mode == "final":
            display(bundle, raw=True, metadata=metadata or {})
            self.updates += 1
        elif self._handle is not None:
            self._handle.update(bundle, raw=True, metadata=metadata or {})
            self.updates += 1

    def finish(self, state: str, *, usage=None, backend: str = "", metadata=None) -> str:
        """The final update: the whole answer and the footer. Returns the footer."""
        footer = self.status(state, usage, backend, (metadata or {}).get("replayed", False))
        if state == "error" and not self.parts:     # nothing to keep: the error line says it
            if self.mode == "rich":
                self._update({"text/plain": ""}, {"cfai": metadata or {}})
            return footer
        if self.mode == "print":
            self.printer(("\n" if self.parts else "") + footer)
            return footer
        self._update(self._bundle(footer, True), {"cfai": metadata or {}})
        return footer
