"""The local backend: the embedded model behind the Workers AI HTTP API (see apiserver.py).

One generation at a time; waiting requests are served in arrival order, and a waiting client
that leaves gives up its place. A client that disconnects mid-answer stops its generation at
the next token. Requests for the seed model ids are answered by the local model, which says so
(``X-Cfai-Served-By``), so notebooks written for Cloudflare run unchanged offline.
"""
from __future__ import annotations

import json
import threading
import time
from collections import deque

from ..apicheck import check_limits, refuse_images
from ..apiserver import (DONE, IDLE_TIMEOUT, ApiError, ApiServer, chunk, completion,
                         completion_chunk, envelope, search_item, sse)
from ..models import BUILT_IN, CURRENT, LOCAL, LOCAL_MODEL, SEED
from . import calling

# Ours to serve offline: the embedded model, the seed ids, and today's free-plan ids, all
# answered by the embedded model (which says so), so notebooks written for Cloudflare run here.
SERVED = {m.id: m for m in (LOCAL, *SEED, *(m for m in CURRENT if not m.paid))}
VISION = [m.id for m in BUILT_IN if m.vision]
SAMPLING = ("temperature", "top_p", "top_k", "seed", "repetition_penalty",
            "frequency_penalty", "presence_penalty")


class FairQueue:
    """A lock handed over first come, first served."""

    def __init__(self):
        self._lock = threading.Lock()
        self._waiting: deque[threading.Event] = deque()
        self._busy = False
        self.arrived = 0                # requests that have asked for a turn

    def enter(self, gone=lambda: False) -> bool:
        """Wait for our turn; False if ``gone()`` says the client left first."""
        ticket = threading.Event()
        with self._lock:
            self.arrived += 1
            if not self._busy:
                self._busy = True
                return True
            self._waiting.append(ticket)
        while not ticket.wait(0.05):
            if gone():
                with self._lock:
                    if ticket in self._waiting:
                        self._waiting.remove(ticket)
                        return False
                self.leave()            # our turn came just as we gave up: pass it on
                return False
        return True

    def leave(self) -> None:
        with self._lock:
            if self._waiting:
                self._waiting.popleft().set()
            else:
                self._busy = False

    @property
    def waiting(self) -> int:
        return len(self._waiting)


class LocalBackend:
    """The app behind ApiServer: ``LocalBackend(model).serve(port=0)``."""

    def __init__(self, model, *, idle_timeout: float | None = None, owner: int | None = None):
        self.model = model
        self.queue = FairQueue()
        self.idle_timeout = idle_timeout
        self.owner = owner             # a pid (the Jupyter server): we end when it does
        self.started = self.last_used = time.monotonic()
        self.active = 0
        self.generated = 0             # tokens generated, for tests and status
        self.answers = 0
        self._server: ApiServer | None = None

    def serve(self, *, host: str = "127.0.0.1", port: int = 0, token: str | None = None,
              idle_timeout: float = IDLE_TIMEOUT) -> ApiServer:
        self._server = ApiServer(self, account_id=None, token=token, host=host, port=port,
                                 idle_timeout=idle_timeout)
        self._server.extra_headers.update({"X-Cfai-Backend": "local",
                                           "X-Cfai-Served-By": self.model.name})
        if self.idle_timeout or self.owner:
            threading.Thread(target=self._idle_watch, daemon=True, name="cfai-idle").start()
        return self._server

    def _idle_watch(self) -> None:
        from .runtime import pid_alive
        server = self._server
        assert server is not None                 # started by serve()
        while not server.stopping.wait(0.5):
            idle = self.idle_timeout and self.active == 0 \
                and time.monotonic() - self.last_used > self.idle_timeout
            if idle or (self.owner and not pid_alive(self.owner)):
                threading.Thread(target=server.shutdown, daemon=True).start()
                return

    def status(self) -> dict:
        import os
        return {"model": self.model.name, "pid": os.getpid(),
                "uptime": round(time.monotonic() - self.started, 1),
                "answers": self.answers, "tokens": self.generated,
                "waiting": self.queue.waiting}

    # the app interface of ApiServer
    def received(self, request) -> None:
        self.last_used = time.monotonic()

    def model_list(self, request) -> list[dict]:
        return [search_item(m, m.description + (
                    "" if m.id == LOCAL_MODEL else f" (served locally by {self.model.name})"))
                for m in SERVED.values()]

    def check(self, request) -> tuple[str, list[str], int, int]:
        """Refuse what the service would refuse; returns (text, stops, max_tokens, n_prompt).
        The default max_tokens is the model's (when streaming too), fitted to the context."""
        spec = SERVED.get(request.model)
        if spec is None:
            raise ApiError(400, 5007, f"No such model {request.model}; the local backend serves "
                                      + ", ".join(SERVED))
        body = request.body
        refuse_images(body, spec.id, "; the embedded local model cannot see images (on "
                                     "Cloudflare: " + ", ".join(VISION) + ")")
        for key in SAMPLING:
            value = body.get(key)
            if key in body and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise ApiError(400, 5004, f"Invalid input: {key} must be a number")
        text, stops = self.model.prompt_for(body)
        if calling.offered(body):
            text = calling.preamble(calling.offered(body)) + text
        n_prompt = self.model.count(text)
        max_tokens = check_limits(spec, body, n_prompt, self.model.n_ctx, stream=request.stream)
        return text, stops, max_tokens, n_prompt

    def run(self, request, handler) -> None:
        text, stops, max_tokens, n_prompt = self.check(request)
        if not self.queue.enter(handler.client_gone):
            request.disconnected = True
            return
        self.active += 1
        try:
            self._answer(request, handler, text, stops, max_tokens, n_prompt)
        finally:
            self.active -= 1
            self.last_used = time.monotonic()
            self.queue.leave()

    def _answer(self, request, handler, text, stops, max_tokens, n_prompt) -> None:
        params = {k: request.body[k] for k in SAMPLING if k in request.body}
        fmt = request.body.get("response_format")
        if isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema"):
            try:
                params["grammar"] = self.model.grammar(json_schema(fmt))
            except Exception as err:           # llama.cpp cannot turn this schema into rules
                raise ApiError(400, 5004, f"JSON Mode couldn't be met: {err}") from None
        tools = calling.offered(request.body)
        if tools:                              # its output can only be a call to one of them
            params["grammar"] = self.model.grammar(calling.schema(tools))
        stream = request.stream
        wire = ChatWire(request) if request.kind == "chat" else \
            RunChatWire(request) if SERVED[request.model].dialect == "chat" else LegacyWire()
        pieces: list[str] = []
        finish = "stop"
        held = ""          # whitespace waits for the next word, so answers never end in it
        if isinstance(wire, RunChatWire):
            wire.n_prompt = n_prompt
        gen = self.model.generate(text, max_tokens=max_tokens, stop=stops, **params)
        try:
            if stream:
                handler.start_stream()
            for piece, reason in gen:
                finish = reason or finish
                if handler.client_gone():
                    request.disconnected = True
                    break
                self.generated += 1
                wire.tokens += 1
                if not pieces:
                    piece = piece.lstrip()      # answers start with a word, as on Workers AI
                if piece and not piece.strip():
                    held += piece
                    continue
                if piece:
                    piece, held = held + piece, ""
                    pieces.append(piece)
                    if stream and not tools:          # a call is sent whole, at the end
                        handler.wfile.write(chunk(sse(wire.piece(piece))))
        except (BrokenPipeError, ConnectionResetError):
            request.disconnected = True
        finally:
            gen.close()
        if request.disconnected:
            handler.close_connection = True
            return
        self.answers += 1
        answer = "".join(pieces)
        n_answer = self.model.count(answer, bos=False) if answer else 0
        usage = {"prompt_tokens": n_prompt, "completion_tokens": n_answer,
                 "total_tokens": n_prompt + n_answer}
        call = calling.parse(answer) if tools else None
        calls = [{"name": call[0], "arguments": call[1]}] if call else []
        if calls:
            answer, finish = "", "tool_calls"
        if stream:
            events = [wire.calls(calls)] if calls else []
            handler.write_chunks([sse(obj) for obj in [*events, *wire.last(usage, finish)]]
                                 + [DONE])
            handler.end_stream()
        else:
            handler.send_json(200, wire.whole(answer, usage, finish, calls))


def json_schema(fmt: dict) -> dict | None:
    """The schema of a ``response_format``: Workers AI's (the schema itself) or OpenAI's
    (``{"name", "schema"}``); None for ``json_object``."""
    schema = fmt.get("json_schema") if fmt.get("type") == "json_schema" else None
    if isinstance(schema, dict) and isinstance(schema.get("schema"), dict):
        return schema["schema"]
    return schema if isinstance(schema, dict) else None


class LegacyWire:
    """The Workers AI answer shapes of the seed models (``/ai/run``)."""

    tokens = 0                            # generated so far (a running usage, where shown)

    def piece(self, text: str) -> dict:
        return {"response": text}

    def calls(self, calls: list[dict]) -> dict:
        return {"tool_calls": calls}

    def last(self, usage: dict, finish: str) -> list[dict]:
        return [{"response": "", "usage": usage}]

    def whole(self, text: str, usage: dict, finish: str, calls=()) -> dict:
        result = {"response": text, "usage": usage}
        if calls:
            result["tool_calls"] = list(calls)
        return envelope(result)


class ChatWire:
    """The OpenAI shapes (``/chat/completions``): chunks, then the finish and, when
    ``stream_options.include_usage`` asks, a last chunk with the usage."""

    def __init__(self, request):
        self.model = request.model
        self.include_usage = bool((request.body.get("stream_options") or {}).get("include_usage"))
        self.first = True
        self.tokens = 0

    def piece(self, text: str) -> dict:
        delta = {"role": "assistant", "content": text} if self.first else {"content": text}
        self.first = False
        return completion_chunk(self.model, delta)

    def calls(self, calls: list[dict]) -> dict:
        delta = {"role": "assistant", "tool_calls": [
            {"index": i, "id": f"call_{i}", "type": "function",
             "function": {"name": c["name"], "arguments": json.dumps(c["arguments"])}}
            for i, c in enumerate(calls)]}
        return completion_chunk(self.model, delta)

    def last(self, usage: dict, finish: str) -> list[dict]:
        out = [completion_chunk(self.model, {}, finish=finish)]
        if self.include_usage:
            out.append(completion_chunk(self.model, usage=usage))
        return out

    def whole(self, text: str, usage: dict, finish: str, calls=()) -> dict:
        return completion(self.model, text, usage=usage, finish=finish, tool_calls=list(calls))


class RunChatWire(ChatWire):
    """Today's models on ``/ai/run``: a chat.completion inside the v4 envelope, streamed as
    chat.completion.chunk events that each carry the running usage, then a last chunk with
    ``choices: []`` and the final usage (as Cloudflare streams them)."""

    def __init__(self, request):
        super().__init__(request)
        self.n_prompt = 0
        self.include_usage = True

    def piece(self, text: str) -> dict:
        chunk = super().piece(text)
        chunk["usage"] = {"prompt_tokens": self.n_prompt, "completion_tokens": self.tokens,
                          "total_tokens": self.n_prompt + self.tokens}
        return chunk

    def last(self, usage: dict, finish: str) -> list[dict]:
        return [completion_chunk(self.model, {}, finish=finish, usage=usage),
                completion_chunk(self.model, usage=usage)]

    def calls(self, calls: list[dict]) -> dict:
        chunk = super().calls(calls)
        chunk["usage"] = {"prompt_tokens": self.n_prompt, "completion_tokens": self.tokens,
                          "total_tokens": self.n_prompt + self.tokens}
        return chunk

    def whole(self, text: str, usage: dict, finish: str, calls=()) -> dict:
        return envelope(super().whole(text, usage, finish, calls))
