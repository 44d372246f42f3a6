"""Cassettes: record answers once, replay them with no network and no credentials.

A cassette is a JSON file of interactions: each request (backend kind, model, body; never the
token or the account id) and its answer as the chunks that arrived. Replay happens at the
transport seam (a requests adapter), so the client, the magic and the panel run their usual
code path and cannot tell. Modes: ``record`` (start afresh, record everything), ``replay`` (a
request the cassette lacks is an error), ``auto`` (replay what it has, record what it lacks).

Requests match on model and body (``stream`` aside). Identical requests replay their recordings
in order; once those are used up, the last one again (so re-running a cell works).
"""
from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path

import requests
from requests.adapters import BaseAdapter, HTTPAdapter
from requests.structures import CaseInsensitiveDict

from .apiserver import DONE, envelope, sse
from .catalog import SEED
from .errors import CassetteMiss, InputError

MODES = ("record", "replay", "auto")
FORMAT_VERSION = 1
REPLAY_URL = "https://cassette.cfai.invalid/client/v4"
_RUN = re.compile(r"/(?:ai/run|workers-ai)/(.+)$")


def match_key(model: str, body: dict) -> str:
    return json.dumps({"model": model, "body": {k: v for k, v in body.items() if k != "stream"}},
                      sort_keys=True)


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
        self.forward = None         # auto mode: () -> (base_url, account_id, Secret) for misses
        self.interactions: list[dict] = []
        self._keys: list[str] = []                  # match keys, computed once
        self._used: set[int] = set()
        self._lock = threading.Lock()
        if mode != "record" and self.path.exists():
            try:
                self.interactions = json.loads(self.path.read_text())["interactions"]
                self._keys = [match_key(x["request"]["model"], x["request"]["body"])
                              for x in self.interactions]
            except (ValueError, KeyError, TypeError):
                raise InputError(f"{self.path} is not a cfai cassette") from None
        elif mode == "replay":
            raise InputError(f"No cassette at {self.path}",
                             hint="Record one first: %cfai record PATH")

    def __repr__(self) -> str:
        return f"Cassette({str(self.path)!r}, mode={self.mode!r}, {len(self.interactions)} answers)"

    @classmethod
    def from_env(cls, env=os.environ) -> "Cassette | None":
        path = env.get("CFAI_CASSETTE")
        return cls(path, env.get("CFAI_CASSETTE_MODE", "auto")) if path else None

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

    def record(self, *, backend: str, model: str, body: dict, chunks: list[str],
               usage: dict | None, served_by: str | None) -> None:
        entry = {"request": {"backend": backend, "model": model,
                             "body": {k: v for k, v in body.items() if k != "stream"}},
                 "response": {"chunks": list(chunks), "usage": usage, "served_by": served_by}}
        with self._lock:
            self.interactions.append(entry)
            self._keys.append(match_key(model, entry["request"]["body"]))
            self._used.add(len(self.interactions) - 1)
            self.save()

    def save(self) -> None:
        data = {"cfai_cassette": FORMAT_VERSION, "interactions": self.interactions}
        text = json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, self.path)

    def session(self) -> requests.Session:
        """A requests Session whose every request goes through this cassette."""
        s = requests.Session()
        adapter = CassetteAdapter(self)
        s.mount("http://", adapter)
        s.mount("https://", adapter)
        return s


class ReplayBody:
    """The ``raw`` of a replayed response: the recorded pieces, one read at a time."""

    chunked = True

    def __init__(self, pieces: list[bytes]):
        self._pieces = iter(pieces)
        self.closed = False

    def stream(self, amt=None, decode_content=None):
        for piece in self._pieces:
            if self.closed:
                return
            yield piece

    def read(self, amt=None, decode_content=None, **_):
        return b"".join(self._pieces)

    def close(self) -> None:
        self.closed = True

    shutdown = close

    def release_conn(self) -> None:
        pass


class CassetteAdapter(BaseAdapter):
    def __init__(self, cassette: Cassette):
        super().__init__()
        self.cassette = cassette
        self.real = HTTPAdapter()

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        found = _RUN.search(request.path_url.split("?")[0])
        if found is None:
            if self.cassette.replays_only:
                return self._respond(request, "application/json",
                                     [json.dumps(envelope(_seed_models())).encode()], {})
            return self.real.send(request, stream, timeout, verify, cert, proxies)
        model = requests.utils.unquote(found.group(1))
        body = json.loads(request.body or b"{}")
        hit = None if self.cassette.mode == "record" else self.cassette.find(model, body)
        if hit is None:
            if self.cassette.replays_only:
                raise CassetteMiss(f"No recording in {self.cassette.path.name} for {model}: "
                                   f"{first_words(body)!r}")
            if self.cassette.forward is not None:
                return self._forward(request, model, stream, timeout, verify, cert, proxies)
            return self.real.send(request, stream, timeout, verify, cert, proxies)
        answer = hit["response"]
        headers = {"X-Cfai-Cassette": "replay", "X-Cfai-Backend": hit["request"]["backend"]}
        if answer.get("served_by"):
            headers["X-Cfai-Served-By"] = answer["served_by"]
        if body.get("stream"):
            pieces = [sse({"response": c}) for c in answer["chunks"]]
            if answer.get("usage"):
                pieces.append(sse({"response": "", "usage": answer["usage"]}))
            return self._respond(request, "text/event-stream", pieces + [DONE], headers)
        result = {"response": "".join(answer["chunks"])}
        if answer.get("usage"):
            result["usage"] = answer["usage"]
        return self._respond(request, "application/json", [json.dumps(envelope(result)).encode()],
                             headers)

    def _forward(self, request, model, stream, timeout, verify, cert, proxies):
        """Auto mode, a miss: send it to the real backend, resolved only now (so a cassette
        that has every answer never starts or reaches one)."""
        from .client.workers_ai import backend_name
        base, account, token = self.cassette.forward()
        real = request.copy()
        real.prepare_url(f"{base}/accounts/{account}/ai/run/{model}", None)
        real.headers["Authorization"] = f"Bearer {token.reveal()}"
        response = self.real.send(real, stream, timeout, verify, cert, proxies)
        response.headers.setdefault("X-Cfai-Backend", backend_name(base))
        return response

    def _respond(self, request, content_type: str, pieces: list[bytes], headers: dict):
        response = requests.Response()
        response.status_code = 200
        response.reason = "OK"
        response.headers = CaseInsensitiveDict({"Content-Type": content_type, **headers})
        response.raw = ReplayBody(pieces)
        response.url = request.url
        response.request = request
        response.encoding = "utf-8"
        return response

    def close(self) -> None:
        self.real.close()


def _seed_models() -> list[dict]:
    return [{"name": m.id, "description": m.description, "task": {"name": "Text Generation"}}
            for m in SEED]
