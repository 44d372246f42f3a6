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
from .client.events import Done, Reasoning, Text, ToolCall, Usage
from .errors import CassetteMiss, InputError

MODES = ("record", "replay", "auto")
FORMAT_VERSION = 1
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


class Cassette:
    def __init__(self, path, mode: str = "auto"):
        if mode not in MODES:
            raise InputError(f"Unknown cassette mode {mode!r}", hint="Use record, replay or auto")
        self.path = Path(path)
        self.mode = mode
        self.forward = None         # auto mode: () -> the real backend's WorkersAI arguments
        self.interactions: list[dict] = []
        self._keys: list[str] = []                  # match keys, computed once
        self._used: set[int] = set()
        self._lock = threading.Lock()
        if mode != "record" and self.path.is_file():
            try:
                self.interactions = json.loads(self.path.read_text())["interactions"]
                self._keys = [match_key(x["request"]["model"], x["request"]["body"])
                              for x in self.interactions]
            except (OSError, ValueError, KeyError, TypeError, RecursionError):
                raise InputError(f"{self.path} is not a cfai cassette") from None
            for i, entry in enumerate(self.interactions):
                problem = _problem(entry)
                if problem:
                    raise InputError(f"{self.path} is not a cfai cassette: answer {i} {problem}",
                                     hint="Record it again: %cfai record PATH")
        elif mode == "replay":
            raise InputError(f"No cassette at {self.path}",
                             hint="Record one first: %cfai record PATH")
        else:
            self._check_writable()

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

    def __repr__(self) -> str:
        return f"Cassette({str(self.path)!r}, mode={self.mode!r}, {len(self.interactions)} answers)"

    @classmethod
    def from_env(cls) -> "Cassette | None":
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
            hits = [i for i, k in enumerate(self._keys) if k == key]
            if not hits:
                return None
            fresh = [i for i in hits if i not in self._used]
            chosen = fresh[0] if fresh else hits[-1]
            self._used.add(chosen)
            return self.interactions[chosen]

    def miss(self, model: str, request: dict) -> CassetteMiss:
        """The one line for a request this cassette has no recording of."""
        return CassetteMiss(f"No recording in {self.path.name} for {model}: "
                            f"{first_words(request)!r}")

    def record(self, answer) -> None:
        """Keep a complete answer (an Answer of the client)."""
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
        model = answer.model
        with self._lock:
            self.interactions.append(entry)
            self._keys.append(match_key(model, entry["request"]["body"]))
            self._used.add(len(self.interactions) - 1)
            try:
                self.save()
            except OSError as err:        # the answer stands; the note says what was not kept
                answer.notes.append(f"Not recorded: cannot write {self.path.name} "
                                    f"({err.strerror or err}).")

    def save(self) -> None:
        data = {"cfai_cassette": FORMAT_VERSION, "interactions": self.interactions}
        text = json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, self.path)

    @staticmethod
    def events(hit: dict) -> list:
        """A recorded answer as the events the client hands out."""
        answer = hit["response"]
        events = [Reasoning(c) for c in answer.get("reasoning") or ()]
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
    if not isinstance(entry, dict) or not isinstance(entry.get("request"), dict):
        return "has no request"
    response = entry.get("response")
    if not isinstance(response, dict):
        return "has no response"
    if not isinstance(response.get("chunks"), list) or \
            not all(isinstance(c, str) for c in response["chunks"]):
        return "has no text chunks"
    for key in ("reasoning", "tool_calls"):
        if response.get(key) is not None and not isinstance(response[key], list):
            return f"has a broken {key}"
    if response.get("usage") is not None and not isinstance(response["usage"], dict):
        return "has a broken usage"
    return None
