"""Chat state: a notebook's named conversations (ChatStore), each a list of turns.

A turn is recorded once its answer ends (see :meth:`Conversation.commit`). The rule for a
stopped answer, in cells and the panel alike: what the user saw stays in the conversation,
marked ``interrupted``, and is sent as context next time, as chat products do; a stop before
any text arrived, or a failed answer, leaves the conversation as it was. Re-running a cell
(same cell id) replaces that cell's earlier turn and what came after it. ``reset`` wins over
an answer still arriving: that answer is not recorded. What is sent is trimmed to the model's
context, oldest turns first; the conversation itself keeps everything.
"""
from __future__ import annotations

import json
import os
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from .catalog import Model, context_of, estimate_messages

FORMAT_VERSION = 1


@dataclass
class Turn:
    messages: list[dict]          # what the turn added: the user's message(s)
    answer: str
    model: str = ""
    cell_id: str | None = None
    time: float = field(default_factory=time.time)
    reasoning: str = ""           # kept for the user, never sent back to the model
    steps: list[dict] = field(default_factory=list)   # a tool loop's messages, in order:
                                                      # the assistant's calls, the results
    interrupted: bool = False     # stopped by the user: the answer is what had arrived

    def as_messages(self) -> list[dict]:
        return [*self.messages, *self.steps, {"role": "assistant", "content": self.answer}]

    @property
    def tokens(self) -> int:
        """Estimated size when sent (computed once)."""
        if self._tokens is None:
            self._tokens = estimate_messages(self.as_messages())
        return self._tokens

    _tokens: int | None = None


@dataclass
class Plan:
    """What one turn will send, decided before sending; applied by ``commit``."""
    conversation: Conversation
    base: list[Turn]              # the turns this one follows (after any rewind)
    new_messages: list[dict]
    system: str | None
    messages: list[dict]          # what is sent: system, history (maybe trimmed), new messages
    cell_id: str | None = None
    rewound: int = 0
    trimmed: int = 0
    notices: list[str] = field(default_factory=list)
    replaced: list[Turn] = field(default_factory=list)   # what commit removes, and only that
    generation: int = 0           # the conversation's, when planned (a reset changes it)


class Conversation:
    def __init__(self, name: str, system: str | None = None, turns=None, on_change=None,
                 affinity: str | None = None):
        self.name = name
        self.system = system
        self.affinity = affinity or uuid.uuid4().hex   # x-session-affinity: the prompt cache
        self.turns: list[Turn] = list(turns or [])
        self._lock = threading.RLock()
        self._on_change = on_change
        self.generation = 0           # one more on each reset

    def __repr__(self) -> str:
        return f"Conversation({self.name!r}, {len(self.turns)} turns)"

    def messages(self) -> list[dict]:
        """The whole conversation as a message list."""
        with self._lock:
            head = [{"role": "system", "content": self.system}] if self.system else []
            return head + [m for t in self.turns for m in t.as_messages()]

    def plan(self, new_messages: list[dict], *, cell_id: str | None = None,
             model: Model | None = None, max_tokens: int | None = None,
             system: str | None = None, fresh: bool = False) -> Plan:
        """Decide what to send for a new turn; changes nothing yet. ``fresh``: the turn starts
        the conversation afresh (it will replace every turn)."""
        with self._lock:
            turns = list(self.turns)
        base, rewound, replaced = turns, 0, []
        if fresh:
            base, replaced = [], turns
        elif cell_id:
            for i, turn in enumerate(turns):
                if turn.cell_id == cell_id:
                    base, rewound, replaced = turns[:i], len(turns) - i, turns[i:]
                    break
        systems = [m["content"] for m in new_messages if m["role"] == "system"]
        new = [m for m in new_messages if m["role"] != "system"]
        system = systems[-1] if systems else (system if system is not None else self.system)
        head = [{"role": "system", "content": system}] if system else []
        sent = list(base)
        if model is not None:
            budget = context_of(model) - (max_tokens or model.default_max_tokens)
            used, kept = estimate_messages(head + new), 0
            for old in reversed(base):          # keep the newest turns that fit
                if used + old.tokens > budget:
                    break
                used, kept = used + old.tokens, kept + 1
            sent = base[len(base) - kept:]
        history, notice = _images_of_history(_flat(sent), model)
        plan = Plan(self, base, new, system, head + history + new, cell_id, rewound,
                    len(base) - len(sent), replaced=replaced, generation=self.generation)
        if notice:
            plan.notices.append(notice)
        if rewound:
            later = f" and the {rewound - 1} after it" if rewound > 1 else ""
            plan.notices.append(f"Re-run: this cell's earlier turn{later} will be replaced.")
        if plan.trimmed and model is not None:           # only a known model trims
            plan.notices.append(
                f"Sent the last {len(sent)} of {len(base)} turns: the {plan.trimmed} oldest do "
                f"not fit the {context_of(model):,}-token context of {model.id}"
                + ("." if model.context_tokens else " (assumed: its context is not known)."))
        return plan

    def commit(self, plan: Plan, answer: str, model: str = "", reasoning: str = "",
               steps: list[dict] | None = None, interrupted: bool = False) -> Turn | None:
        """Record an ended turn: remove the turns its plan replaces (a re-run cell's, or
        all for a fresh start) and nothing else, so turns added meanwhile (a cell run while the
        panel streams) are kept; then append it (with its tool loop's messages, if any). After
        a reset since the plan, nothing is recorded (None)."""
        turn = Turn(plan.new_messages, answer, model, plan.cell_id, reasoning=reasoning,
                    steps=list(steps or ()), interrupted=interrupted)
        gone = {id(t) for t in plan.replaced}
        with self._lock:
            if plan.generation != self.generation:
                return None
            self.turns = [t for t in self.turns if id(t) not in gone]
            self.turns.append(turn)
            self.system = plan.system
        self._changed()
        return turn

    def reset(self) -> None:
        with self._lock:
            self.turns = []
            self.system = None
            self.affinity = uuid.uuid4().hex
            self.generation += 1
        self._changed()

    def _changed(self) -> None:
        if self._on_change:
            self._on_change(self.name)

    def to_json(self) -> dict:
        with self._lock:
            return {"system": self.system, "affinity": self.affinity,
                    "turns": [asdict(t) for t in self.turns]}


def _flat(turns: list[Turn]) -> list[dict]:
    return [m for t in turns for m in t.as_messages()]


HISTORY_IMAGES = 4           # images of earlier turns sent again, the newest first


def _images_of_history(messages: list[dict], model) -> tuple[list[dict], str | None]:
    """Earlier turns' images as they are sent: none to a model that cannot see (a note in
    their place), else the newest :data:`HISTORY_IMAGES`; and a notice when some are not."""
    from .messages import images_in, without_images
    count = sum(images_in(m) for m in messages)
    if not count or model is None:
        return messages, None
    if not model.vision and model.source != "unverified":
        note = "[an image from earlier in the conversation: this model cannot see it]"
        return [without_images(m, note) for m in messages], (
            f"Not sending the {count} image{'s' if count > 1 else ''} of earlier turns: "
            f"{model.id} cannot see images.")
    if count <= HISTORY_IMAGES:
        return messages, None
    drop, out = count - HISTORY_IMAGES, []
    for m in messages:
        n = images_in(m)
        if drop and n:
            out.append(without_images(m, "[an image from earlier, not sent again]"))
            drop -= n
        else:
            out.append(m)
    return out, (f"Sent the newest {HISTORY_IMAGES} of the {count} images of earlier turns "
                 "(the oldest are not sent again).")


class ChatStore:
    """The named conversations of one notebook (``notebook`` is its path when known)."""

    def __init__(self, notebook: str | None = None):
        self.notebook = notebook if notebook is not None else os.environ.get("JPY_SESSION_NAME", "")
        self._chats: dict[str, Conversation] = {}
        self._listeners: list = []
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"ChatStore({self.notebook or 'this kernel'!r}, chats={self.names()})"

    def get(self, name: str = "default") -> Conversation:
        with self._lock:
            if name not in self._chats:
                self._chats[name] = Conversation(name, on_change=self._notify)
                created = True
            else:
                created = False
        if created:
            self._notify(name)
        return self._chats[name]

    def names(self) -> list[str]:
        with self._lock:
            return list(self._chats)

    def __contains__(self, name: str) -> bool:
        return name in self._chats

    def reset(self, name: str | None = None) -> list[str]:
        """Empty one conversation, or all of them with None; returns the names reset."""
        names = self.names() if name is None else [name]
        for n in names:
            self.get(n).reset()
        return names

    def subscribe(self, callback):
        """Call ``callback(name)`` whenever a conversation changes; returns an unsubscribe."""
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback) if callback in self._listeners else None

    def _notify(self, name: str) -> None:
        for callback in list(self._listeners):
            try:
                callback(name)
            except Exception:   # a broken listener (a closed panel) must not break a turn
                pass

    def default_path(self) -> Path:
        """Beside the notebook: ``NAME.cfai-chats.json``."""
        stem = Path(self.notebook).stem if self.notebook else "notebook"
        return Path.cwd() / f"{stem}.cfai-chats.json"

    def to_json(self) -> dict:
        with self._lock:
            chats = {name: c.to_json() for name, c in self._chats.items()}
        return {"cfai_chats": FORMAT_VERSION, "notebook": self.notebook, "chats": chats}

    def save(self, path=None) -> Path:
        from .errors import InputError
        path = Path(path) if path else self.default_path()
        try:
            path.write_text(json.dumps(self.to_json(), indent=1, ensure_ascii=False) + "\n",
                            encoding="utf-8")
        except OSError as err:
            raise InputError(f"Cannot save the conversations to {path}: "
                             f"{err.strerror or err}",
                             hint="Give %cfai save a file in a folder you can write") from None
        return path

    def load(self, path=None) -> tuple[Path, list[str], list[str]]:
        """Replace the conversations named in the file by the file's; returns the file, the
        names loaded, and one line per conversation skipped because it is damaged."""
        from .errors import InputError
        from .shapes import problem
        path = Path(path) if path else self.default_path()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"No chat file at {path}", hint="Save one with %cfai save") from None
        except OSError as err:
            raise InputError(f"Cannot read {path}: {err.strerror or err}") from None
        except UnicodeDecodeError as err:
            raise InputError(f"{path} is not a cfai chat file: not UTF-8 text "
                             f"(byte {err.start + 1})") from None
        except (ValueError, RecursionError):
            raise InputError(f"{path} is not a cfai chat file: not JSON") from None
        why = problem("chats", data)
        if why:
            raise InputError(f"{path} is not a cfai chat file: {why}",
                             hint="Save one with %cfai save") from None
        loaded, skipped = {}, []
        for name, c in data["chats"].items():
            why = problem("chat", c)
            if why:
                skipped.append(f"{name!r} ({why})")
                continue
            turns = [Turn(**{k: v for k, v in t.items() if k in TURN_FIELDS})
                     for t in c.get("turns", [])]
            loaded[name] = Conversation(name, c.get("system"), turns, self._notify,
                                        c.get("affinity"))
        with self._lock:
            self._chats.update(loaded)
        for name in loaded:
            self._notify(name)
        return path, list(loaded), skipped


TURN_FIELDS = {f.name for f in fields(Turn)}
