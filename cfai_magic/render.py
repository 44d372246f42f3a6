"""StreamRenderer: one output, updated in place as an answer arrives, throttled.

Rich mode (a kernel): one display_id; at most ``updates_per_second`` updates while streaming,
then one final update with the whole answer and a compact footer; the final output's metadata
(``cfai``) names the model, parameters, usage and backend. The answer is untrusted: it is shown
as ``text/html`` made by the one door (safe.py: Markdown rendered, raw HTML shown as text, the
result sanitized) and ``text/plain`` without control characters, never as raw Markdown
(JupyterLab renders a running session's Markdown outputs unsanitized). Print mode (terminal
IPython): chunks are printed as they come. Final mode (batch runs: tools such as nbval that
ignore display updates): nothing until the answer is complete, then the same final output as
rich mode.
"""
from __future__ import annotations

import json
import re
import time
import uuid

from IPython.display import display

from . import safe
from .client.events import Reasoning, Text
from .usage import money

ICONS = {"streaming": "⏳", "done": "✓", "interrupted": "⏹ interrupted", "error": "✗ failed"}
LIVE_LIMIT = 64 * 1024      # past this, a streaming update shows the tail (the end shows all)
LIVE_TAIL = 16 * 1024
PLAIN_LIMIT = 1024 * 1024   # past this, the final display is plain text (Markdown would freeze)


def display_mode(setting: str, shell) -> str:
    """The display mode in use: the setting, or for ``auto`` plain printing in a terminal (or
    with no IPython) and rich output in a notebook."""
    if setting != "auto":
        return setting
    if shell is None or type(shell).__name__ == "TerminalInteractiveShell":
        return "print"
    return "rich"


def live_text(answer) -> str:
    """What a streaming update shows: the whole text while it is short, then a note and its
    tail, so an update costs the same at 10 kB and at 10 MB."""
    if answer is None:
        return ""
    if answer.size <= LIVE_LIMIT:
        return answer.text
    tail = answer.tail(LIVE_TAIL)
    tail = tail[tail.find("\n") + 1:] if "\n" in tail[:-1] else tail
    return f"*… {answer.size - len(tail):,} characters above; all of it when the answer " \
           f"ends …*\n\n{tail}"
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


def footer_tokens(usage: dict | None, counted: int) -> str:
    """``13 in · 57 out``, with reasoning and cached tokens apart when the service reports
    them; ``57 tokens`` (counted) when it reports nothing."""
    usage = usage or {}
    out = usage.get("completion_tokens") or counted
    prompt = usage.get("prompt_tokens")
    text = f"{prompt} in · {out} out" if prompt is not None else f"{out} tokens"
    thought = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens")
    if thought:
        text += f" ({thought} reasoning)"
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
    if cached:
        text += f" · {cached} cached"
    return text


def reasoning_block(reasoning: str, streaming: bool) -> str:
    """The reasoning as a collapsed, labelled HTML block, apart from the answer (its text
    escaped: it is shown as written, never as markup)."""
    words = len(reasoning.split())
    label = f"💭 Reasoning ({words} words)"
    if streaming:
        tail = " ".join(reasoning.split()[-12:])
        label = f"💭 Thinking… ({words} words): …{safe.escape(tail)}"
    body = safe.escape(reasoning.strip())
    return (f'<details class="cfai-reasoning"><summary>{label}</summary>\n\n'
            f'<pre style="white-space: pre-wrap">{body}</pre>\n\n</details>\n\n')


def small(line) -> str:
    """One of our notice or footer lines, its values escaped; a (line, detail) pair is shown
    collapsed, the detail (what was added) inside."""
    if isinstance(line, tuple):
        summary, detail = line
        return (f'<details class="cfai-line"><summary><sub>{safe.escape(summary)}</sub>'
                f'</summary><pre style="white-space: pre-wrap">{safe.escape(detail)}</pre>'
                "</details>")
    return f'<div class="cfai-line"><sub>{safe.escape(line)}</sub></div>'


def step_label(step) -> str:
    """``🔧 get_weather(city='Paris') → 'clear' · 0.01 s``, shortened; errors say so."""
    args = ", ".join(f"{k}={v!r}" for k, v in step.arguments.items())
    if step.declined:
        outcome = "declined"
    elif step.error is not None:
        outcome = "✗ " + step.error
    else:
        outcome = "→ " + step.result
    line = f"🔧 {step.name}({args}) {outcome}"
    line = line if len(line) <= 120 else line[:117] + "…"
    return f"{line} · {step.seconds:.2f} s"


def step_html(step) -> str:
    """A tool step collapsed and labelled; opened, its arguments and its whole result. The
    model's arguments and the tool's result are both untrusted: escaped."""
    import json
    body = f"{json.dumps(step.arguments, indent=1, ensure_ascii=False, default=str)}\n\n" + \
        (step.error if step.error is not None else step.result)
    return (f'<details class="cfai-step"><summary>{safe.escape(step_label(step))}</summary>'
            f'<pre style="white-space: pre-wrap">{safe.escape(body)}</pre></details>')


def thumbnails(pictures) -> str:
    """The images a turn sent, small, in a row (our own <img> of each)."""
    if not pictures:
        return ""
    return ('<div class="cfai-images">' + "".join(p.thumbnail_html() for p in pictures)
            + "</div>")


def answer_html(notices, reasoning: str, text: str, below, streaming: bool = False,
                steps=(), thumbs: str = "") -> str:
    """What a cell or the panel shows: notices, the images sent (``thumbs``, from
    :func:`thumbnails`), the tool steps, the reasoning block, the answer (through the door),
    then the footer lines."""
    parts = [small(line) for line in notices]
    parts.append(thumbs)
    parts += [step_html(step) for step in steps]
    if reasoning:
        parts.append(reasoning_block(reasoning, streaming))
    parts.append(safe.markdown(text))
    parts += [small(line) for line in below]
    return "".join(parts)


class Meter:
    """Counts an answer's events, times them, and says when an update is due: paced by time
    (``updates_per_second``, counted from the end of the last update, so a slow update never
    makes the next one come sooner) and by bytes (what updates sent stays within ``budget``
    times what arrived, plus ``slack``)."""

    def __init__(self, updates_per_second: float = 20.0, clock=time.monotonic,
                 budget: float = 4.0, slack: int = 1 << 20):
        self.clock = clock
        self.interval = 1.0 / updates_per_second if updates_per_second > 0 else 0.0
        self.budget, self.slack = budget, slack
        self.tokens = 0
        self.sent_bytes = 0
        self.start = self.last = clock()          # the first update comes one interval in
        self.first = None

    def tick(self, received: int = 0) -> bool:
        """Count a chunk (``received``: characters of answer so far); True when an update is
        due. Call :meth:`sent` after the update."""
        self.tokens += 1
        now = self.clock()
        if self.first is None:
            self.first = now
        return now - self.last >= self.interval \
            and self.sent_bytes <= self.budget * received + self.slack

    def sent(self, size: int) -> None:
        self.sent_bytes += size
        self.last = self.clock()

    def status(self, model: str, state: str, usage: dict | None = None, backend: str = "",
               replayed: bool = False, cost: dict | None = None, cache_hit: bool = False) -> str:
        """``✓ model · 13 in · 57 out · $0.000023 · 40.1 tok/s · 1.4 s · backend``."""
        now = self.clock()
        bits = [f"{ICONS[state]} {model}", footer_tokens(usage, self.tokens)]
        if cost:
            bits.append(money(cost["usd"], not cost["billed"]))
        if cache_hit:
            bits.append("cache hit")
        if replayed:                      # a cassette answers at once: no timing to show
            bits.append("replayed")
        else:
            if self.first is not None and self.tokens > 1 and now > self.first:
                bits.append(f"{self.tokens / (now - self.first):.1f} tok/s")
            bits.append(f"{now - self.start:.1f} s")
        if backend:
            bits.append(backend)
        return " · ".join(bits)


def backend_label(answer) -> str:
    """The footer's backend: who answered, and the model that did if it is another."""
    if answer.served_by and answer.served_by != answer.model:
        return f"{answer.backend} ({answer.served_by})"
    return answer.backend


class Live:
    """How an output is kept live: one display id, shown once, then updated in place (rich);
    shown once when complete (final); or not at all (print, which prints as it goes)."""

    def __init__(self, mode: str):
        self.mode = mode
        self.display_id = uuid.uuid4().hex
        self.updates = 0
        self._handle = None

    def show(self, bundle: dict) -> None:
        if self.mode == "rich":
            self._handle = display(bundle, raw=True, display_id=self.display_id)
            self.updates += 1

    def update(self, bundle: dict, metadata: dict | None = None) -> None:
        if self.mode == "final":
            display(bundle, raw=True, metadata=metadata or {})
            self.updates += 1
        elif self._handle is not None:
            self._handle.update(bundle, raw=True, metadata=metadata or {})
            self.updates += 1


class StreamRenderer:
    """A cell's output: notices, the steps of a tool loop, the answer streaming, a footer.
    What is shown is built by the view functions above; how it stays live is :class:`Live`;
    the :class:`Meter` paces updates and counts tokens (one per exchange)."""

    def __init__(self, model: str, *, fmt: str = "markdown", updates_per_second: float = 20.0,
                 mode: str = "rich", notices=(), clock=time.monotonic, printer=None,
                 ask=None, pictures=()):
        self.model = model
        self.fmt = fmt
        self.mode = mode
        self.notices = list(notices)
        self.pictures = list(pictures)                 # the images this turn sends
        self._thumbs = thumbnails(self.pictures)      # made once, shown in every update
        self.printer = printer or (lambda *args, **kw: print(*args, **kw))
        self.ask = ask or input                       # --confirm: a question in the cell
        self.rate, self.clock = updates_per_second, clock
        self.meter = Meter(updates_per_second, clock)
        self.live = Live(mode)
        self.answer = None
        self.steps: list = []
        self._thinking = False               # print mode: inside a reasoning run

    @property
    def display_id(self) -> str:
        return self.live.display_id

    @property
    def updates(self) -> int:
        return self.live.updates

    @property
    def text(self) -> str:
        return self.answer.text if self.answer is not None else ""

    @property
    def tokens(self) -> int:
        return self.meter.tokens

    def status(self, state: str, usage: dict | None = None, backend: str = "",
               replayed: bool = False, cost: dict | None = None, cache_hit: bool = False) -> str:
        return self.meter.status(self.model, state, usage, backend, replayed, cost, cache_hit)

    def _bundle(self, footer: str, final: bool) -> dict:
        """Notices above the answer (as a terminal prints them), the steps, the reasoning
        apart, the answer, then the footer and any notes; every untrusted part through the
        door."""
        text = self.text if final else live_text(self.answer)
        reasoning = self.answer.reasoning if self.answer is not None else ""
        below = [footer, *(self.answer.notes if self.answer is not None else ())]
        plain = "".join(f"{line[0] if isinstance(line, tuple) else line}\n"
                        for line in self.notices)
        plain += "".join(f"🖼 {p.label()}\n" for p in self.pictures)
        plain += "".join(f"{step_label(step)}\n" for step in self.steps)
        if reasoning:
            plain += f"💭 reasoning: {len(reasoning.split())} words (in _cfai_answer.reasoning)\n"
        plain = safe.plain(plain + (text + "\n" if text else "") + "\n".join(below))
        if self.fmt == "text" or (final and len(text) > PLAIN_LIMIT):
            return {"text/plain": plain}
        if final and self.fmt == "json":
            try:
                return {"application/json": answer_json(text), "text/plain": plain}
            except ValueError:
                pass
        if self.fmt == "code" and text and "```" not in text:
            text = f"```python\n{text.strip()}\n```"         # code, not a paragraph
        return {"text/html": answer_html(self.notices, reasoning, text, below,
                                         streaming=not final and not text, steps=self.steps,
                                         thumbs=self._thumbs),
                "text/plain": plain}

    def start(self, answer) -> None:
        """An exchange begins: the first shows the output; a tool loop's next one continues
        it (a new count of tokens, the same pacing)."""
        first = self.answer is None
        self.answer = answer
        if not first:
            paced, self.meter = self.meter, Meter(self.rate, self.clock)
            self.meter.last, self.meter.sent_bytes = paced.last, paced.sent_bytes
            return
        if self.mode == "print":
            for notice in self.notices:
                self.printer(safe.plain(notice[0] if isinstance(notice, tuple) else notice))
        elif self.mode == "rich":
            self.live.show(self._bundle(self.status("streaming"), False))

    def waiting(self, text: str) -> None:
        """Say what the wait is for, in the status line (gone when the answer comes)."""
        if self.mode == "final":
            return
        if self.mode == "print":
            self.printer(f"⏳ {text}")
        else:
            self.live.update(self._bundle(f"⏳ {self.model} · {text}", False))

    def feed(self, event) -> None:
        kind = type(event)
        if kind is not Text and kind is not Reasoning:
            return
        due = self.meter.tick(self.answer.size if self.answer is not None else 0)
        if self.mode == "print":
            self._print(event)
        elif self.mode == "rich" and due:
            bundle = self._bundle(self.status("streaming"), False)
            self.live.update(bundle)
            self.meter.sent(sum(len(v) for v in bundle.values()))

    def step(self, step) -> None:
        """A tool call is done: it joins the output, collapsed, above what comes next."""
        self.steps.append(step)
        if self.mode == "print":
            self.printer(safe.plain(step_label(step)))
        elif self.mode == "rich":
            self.live.update(self._bundle(f"⏳ {self.model} · sending the results", False))

    def confirm(self, name: str, arguments: dict) -> bool:
        """--confirm: ask in the cell before a call (no one to ask: declined)."""
        args = ", ".join(f"{k}={v!r}" for k, v in arguments.items())
        try:
            said = self.ask(safe.plain(f"Run {name}({args})? [y/N] "))
        except Exception:          # a front end without input (nbclient, some editors)
            return False
        return str(said).strip().lower() in ("y", "yes")

    def _print(self, event) -> None:
        thinking = type(event) is Reasoning
        if thinking and not self._thinking:
            self.printer("\x1b[2m💭 ", end="")
        elif not thinking and self._thinking:
            self.printer("\x1b[0m\n", end="")
        self._thinking = thinking
        self.printer(safe.plain(event.text), end="", flush=True)

    def finish(self, answer, metadata=None) -> str:
        """The final update: the steps, the whole answer and the footer. Returns the footer."""
        self.answer = answer
        state = answer.status if answer.status in ICONS else "error"
        footer = self.status(state, answer.usage, backend_label(answer), answer.replayed,
                             (metadata or {}).get("cost"), answer.cached)
        if self.mode == "print":
            if self._thinking:
                self.printer("\x1b[0m", end="")
            if state == "error" and not answer.parts:
                return footer
            self.printer(("\n" if answer.parts or answer.reasoning_parts else "")
                         + safe.plain(footer))
            return footer
        if state == "error" and not answer.parts and not answer.reasoning_parts \
                and not self.steps:
            if self.mode == "rich":     # nothing to keep: the error line says it
                self.live.update({"text/plain": ""}, {"cfai": metadata or {}})
            return footer
        self.live.update(self._bundle(footer, True), {"cfai": metadata or {}})
        return footer
