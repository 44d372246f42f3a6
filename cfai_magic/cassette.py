"""Cassettes: record answers once, replay them with no network and no credentials.

A cassette is a JSON file of interactions: each request (backend kind, model, the
protocol-neutral request; never the token or the account id) and its answer as the events that
arrived: text ``chunks``, and where there were any ``reasoning`` chunks, ``tool_calls`` and the
``finish_reason``. Replay happens at the client's event seam, so the magic and the panel run
their usual code path, and an answer recorded through one protocol replays through any other.
Modes: ``record`` (start afresh, record everything), ``replay`` (a request the cassette lacks
is an error), ``auto`` (replay what it has, record what it lacks).

Requests match on model and request (``stream`` aside). Identical requests replay their
recordings in order; once those are used up, the last one again (so re-running a cell works).
"""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from .catalog import SEED
from .client.events import Done, Event, Reasoning, Text, ToolCall, Usage
from .errors import CassetteMiss, InputError
from .journal import Damaged, Journal, why

MODES = ("record", "replay", "auto")
FORMAT_VERSION = 2          # a JSON Lines journal; version 1 (one JSON document) still reads
REPLAY_URL = "https://cassette.cfai.invalid/client/v4"


def match_key(model: str, body: dict) -> str:
    """What an answer is found by: the model and the request (images by digest and size)."""
    return json.dumps({"model": model, "body": kept(body)}, sort_keys=True)


def kept(body: dict) -> dict:
    """A request as a cassette keeps it: no ``stream``, each image as its digest and size."""
    from .images import digested
    return digested({k: v for k, v in body.items() if k != "stream"})


def first_words(body: dict, n: int = 8) -> str:
    if "prompt" in body:
        text = str(body["prompt"])
    else:
        users = [m.get("content", "") for m in body.get("messages", []) if m.get("role") == "user"]
        text = users[-1] if users else ""
    words = text.split()
    return " ".join(words[:n]) + (" …" if len(words) > n else "")


def _key_of(entry: dict) -> str:
    return match_key(entry["request"]["model"], entry["request"]["body"])


def entries(path) -> list[dict]:
    """The answers recorded in a cassette file, either version (for tools and tests)."""
    return Cassette(path, "replay").entries()


class Cassette:
    def __init__(self, path, mode: str = "auto"):
        if mode not in MODES:
            raise InputError(f"Unknown cassette mode {mode!r}", hint="Use record, replay or auto")
        self.path = Path(path)
        self.mode = mode
        self.forward = None         # auto mode: () -> the real backend's WorkersAI arguments
        self.interactions: list[dict] = []
        self.problems: list[str] = []               # entries skipped, one line each
        self._index: dict[str, list[int]] = {}      # match key -> positions, in order
        self._used: set[int] = set()
        self._mine: list[dict] = []                 # what this cassette recorded itself
        self._legacy = False                        # a version 1 document, rewritten on append
        self._lock = threading.Lock()
        self._journal = Journal(self.path, write=mode != "replay", header_key="cfai_cassette",
                                version=FORMAT_VERSION)
        if mode == "replay" and not self.path.is_file():
            raise InputError(f"No cassette at {self.path}",
                             hint="Record one first: %cfai record PATH")
        if mode != "replay":
            self._check_writable()
        try:
            if mode == "record":
                self._journal.restart()
            elif self.path.is_file():
                self._load()
        except OSError as err:
            raise InputError(f"Cannot use {self.path} as a cassette: {why(err)}",
                             hint="Choose a plain file you can read and write") from None

    def _check_writable(self) -> None:
        """Say now, not after an answer has arrived, when the file cannot be written."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise InputError(f"Cannot record into {self.path}: {err.strerror or err}",
                             hint="Choose a path in a folder you can write") from None
        if self.path.is_dir():
            raise InputError(f"Cannot record into {self.path}: it is a folder",
                             hint="Give a file name, e.g. cassettes/demo.json")

    def _load(self) -> None:
        if self._is_journal() or not self._load_legacy():
            self._sync()
        if self.problems and not self.interactions:
            raise InputError(f"{self.path} is not a cfai cassette: nothing in it can be replayed"
                             f" ({self.problems[0]})",
                             hint="Record it again: %cfai record PATH")

    def _load_legacy(self) -> bool:
        """A version 1 cassette (one JSON document); False when the file is not one."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (ValueError, RecursionError):
            return False
        if not isinstance(data, dict) or "interactions" not in data:
            return False
        if not isinstance(data["interactions"], list):
            raise InputError(f"{self.path} is not a cfai cassette: its interactions are not a list",
                             hint="Record it again: %cfai record PATH")
        self._legacy = True
        self._take([(f"{i}", x) for i, x in enumerate(data["interactions"])], [])
        return True

    def _sync(self, items=None, damaged=(), restarted=False) -> list[dict]:
        """Take what the file gained since the last look (other kernels' answers); when another
        recorder started it afresh, give back this cassette's own entries to write again."""
        if items is None:
            items, damaged, restarted = self._journal.read()
        again = []
        if restarted:
            self.interactions, self._index, self._used = [], {}, set()
            again = list(self._mine)
            self._take([(0, x) for x in again], [])
        self._take(items, damaged)
        return again

    def _take(self, items, damaged) -> None:
        for d in damaged:
            items.append((d.line, d))
        for line, entry in sorted(items, key=lambda x: x[0]) if damaged else items:
            problem = entry.why if isinstance(entry, Damaged) else _problem(entry)
            if problem:
                where = f"answer {line}" if isinstance(line, str) else f"line {line}"
                self.problems.append(f"{where}: {problem}")
                continue
            self._index.setdefault(_key_of(entry), []).append(len(self.interactions))
            self.interactions.append(entry)

    def report(self) -> str | None:
        """One line on the entries skipped, if any (shown once, when the cassette is set)."""
        if not self.problems:
            return None
        n = len(self.problems)
        more = f"; and {n - 1} more" if n > 1 else ""
        return (f"Skipped {n} damaged entr{'ies' if n > 1 else 'y'} of {self.path.name} "
                f"({self.problems[0]}{more}); the others replay.")

    def __repr__(self) -> str:
        return f"Cassette({str(self.path)!r}, mode={self.mode!r}, {len(self.interactions)} answers)"

    @classmethod
    def from_env(cls) -> Cassette | None:
        path = os.environ.get("CFAI_CASSETTE")
        return cls(path, os.environ.get("CFAI_CASSETTE_MODE", "auto")) if path else None

    def recorded_backend(self) -> str | None:
        """Where the first recorded answer came from (``local``, ``cloudflare``, ...)."""
        with self._lock:
            return self.interactions[0]["request"].get("backend") if self.interactions else None

    @property
    def replays_only(self) -> bool:
        return self.mode == "replay"

    def find(self, model: str, body: dict) -> dict | None:
        key = match_key(model, body)
        with self._lock:
            hits = self._index.get(key)
            if not hits and not self._legacy:
                try:                      # another kernel may have recorded it meanwhile
                    self._sync()
                except OSError:
                    pass
                hits = self._index.get(key)
            if not hits:
                return None
            chosen = next((i for i in hits if i not in self._used), hits[-1])
            self._used.add(chosen)
            return self.interactions[chosen]

    def miss(self, model: str, request: dict) -> CassetteMiss:
        """The one line for a request this cassette has no recording of."""
        return CassetteMiss(f"No recording in {self.path.name} for {model}: "
                            f"{first_words(request)!r}")

    def record(self, answer) -> None:
        """Keep a complete answer (an Answer of the client): one line appended to the file."""
        response = {"chunks": list(answer.parts), "usage": answer.usage,
                    "served_by": answer.served_by}
        if answer.reasoning_parts:
            response["reasoning"] = list(answer.reasoning_parts)
        if answer.tool_calls:
            response["tool_calls"] = [c._asdict() for c in answer.tool_calls]
        if answer.finish_reason:
            response["finish_reason"] = answer.finish_reason
        entry = {"request": {"backend": answer.backend, "model": answer.model,
                             "body": kept(answer.request)},
                 "response": response}
        with self._lock:
            try:
                if self._legacy:
                    self._upgrade()
                self._journal.append(entry, on_read=self._sync)
            except OSError as err:        # the answer stands; the note says what was not kept
                answer.notes.append(f"Not recorded: cannot write {self.path.name} "
                                    f"({why(err)}).")
                return
            self._mine.append(entry)
            self._take([(0, entry)], [])
            self._used.add(len(self.interactions) - 1)

    def _upgrade(self) -> None:
        """Rewrite a version 1 cassette as a journal (once, before its first new answer; a
        kernel that finds another one did it first just reads the journal)."""
        self._journal.convert(lambda: not self._is_journal(), self.interactions)
        self._legacy = False
        self.interactions, self._index, self._used = [], {}, set()
        self._sync()

    def _is_journal(self) -> bool:
        """Whether the file starts with a version 2 header (an indented version 1 document
        starts with a lone "{")."""
        with self.path.open("rb") as f:
            first = f.readline(4096)
        try:
            head = json.loads(first)
        except (ValueError, RecursionError):
            return False
        return isinstance(head, dict) and head.get("cfai_cassette") == FORMAT_VERSION

    def entries(self) -> list[dict]:
        with self._lock:
            return list(self.interactions)

    @staticmethod
    def events(hit: dict) -> list:
        """A recorded answer as the events the client hands out."""
        answer = hit["response"]
        events: list[Event] = [Reasoning(c) for c in answer.get("reasoning") or ()]
        events += [Text(c) for c in answer["chunks"] if c]
        events += [ToolCall(**c) for c in answer.get("tool_calls") or ()]
        if answer.get("usage"):
            events.append(Usage(answer["usage"]))
        events.append(Done(answer.get("finish_reason")))
        return events

    @staticmethod
    def models() -> list[dict]:
        return [{"name": m.id, "description": m.description, "task": {"name": "Text Generation"}}
                for m in SEED]


def _problem(entry) -> str | None:
    """What is wrong with one recorded interaction, if anything."""
    from .shapes import problem
    return problem("entry", entry)
