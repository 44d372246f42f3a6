"""FakeWorkersAI: a real HTTP server on 127.0.0.1 that speaks the Workers AI protocol."""
from __future__ import annotations

import re
import threading
from collections import deque
from dataclasses import dataclass, field

from ..apiserver import DONE, ApiError, ApiServer, chunk, envelope, sse
from ..catalog import SEED, estimate_tokens

DEFAULT_CODES = {400: 5004, 401: 10000, 403: 10000, 404: 3042, 408: 3007, 413: 3006,
                 429: 3040}


def words(text: str) -> list[str]:
    """Text cut into word-sized chunks that join back to exactly the text."""
    return re.findall(r"\S+\s*|\s+", text)


@dataclass
class Reply:
    """One scripted answer, or one fault.

    ``chunks`` (or ``text``, cut into words) is the answer. Faults: ``status``/``code``/
    ``message``/``retry_after`` answer with an error; ``delay`` waits before the first byte;
    ``drip`` waits between chunks; ``drop_after=n`` closes the connection after n chunks;
    ``malformed_at=i`` sends a broken event in place of chunk i; ``done=False`` leaves out
    ``[DONE]``; ``split=n`` writes the stream in n-byte pieces, each its own HTTP chunk (so
    events, ``\\r\\n`` and UTF-8 characters arrive cut apart); ``crlf`` uses ``\\r\\n`` line ends;
    ``comments`` adds ``:`` keep-alive lines; ``extra`` adds fields to every event;
    ``usage`` (True: computed, False: none, or a dict) is sent last, as the live service does.
    ``times`` serves the same reply to that many requests.
    """
    text: str | None = None
    chunks: list[str] | None = None
    status: int = 200
    code: int | None = None
    message: str | None = None
    retry_after: float | None = None
    delay: float = 0.0
    drip: float = 0.0
    drop_after: int | None = None
    malformed_at: int | None = None
    done: bool = True
    split: int | None = None
    crlf: bool = False
    comments: bool = False
    extra: dict = field(default_factory=dict)
    usage: dict | bool = True
    times: int = 1

    def pieces(self) -> list[str]:
        if self.chunks is not None:
            return list(self.chunks)
        return words(self.text or "")

    @classmethod
    def large(cls, n_chunks: int, piece: str = "token ", **kw) -> "Reply":
        """A very large answer of ``n_chunks`` chunks."""
        return cls(chunks=[piece] * n_chunks, **kw)


def echo(request) -> Reply:
    """The default answer when nothing is queued: says what it was asked."""
    return Reply(text=f"Echo: {request.input_text}")


class FakeWorkersAI:
    """A fake Workers AI for tests: ``with FakeWorkersAI() as fake: ... fake.url``.

    Real HTTP on 127.0.0.1 on a free port, in a thread. Pass ``fake.url`` as ``base_url`` (or
    ``fake.gateway_url`` with ``gateway=``), with ``fake.account_id`` and ``fake.token``.
    ``enqueue(...)`` scripts answers and faults (see :class:`Reply`); with nothing queued it
    echoes the input. ``requests`` logs what arrived (the token never: only ``authorized``).
    Unknown models get 400/5007, a wrong token 401/10000, a wrong account 404/7003.
    """

    def __init__(self, *, account_id: str = "fake-account-id", token: str = "fake-api-token",
                 models: list[dict] | None = None, port: int = 0, default=echo):
        self.account_id = account_id
        self.token = token
        self.models = models if models is not None else [
            {"name": m.id, "description": m.description, "task": {"name": "Text Generation"},
             "properties": []} for m in SEED]
        self.default = default
        self.requests: list = []
        self._queue: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._server = ApiServer(self, account_id=account_id, token=token, port=port)
        self._server.extra_headers["X-Cfai-Backend"] = "fake"

    # life cycle
    def start(self) -> "FakeWorkersAI":
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> "FakeWorkersAI":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"FakeWorkersAI(url={self.url!r})"

    @property
    def url(self) -> str:
        return self._server.url

    @property
    def gateway_url(self) -> str:
        return self._server.gateway_url

    @property
    def last(self):
        return self.requests[-1] if self.requests else None

    def env(self) -> dict:
        """Environment variables that point cfai_magic (in this or another process) here."""
        return {"CLOUDFLARE_ACCOUNT_ID": self.account_id, "CLOUDFLARE_API_TOKEN": self.token,
                "CFAI_BASE_URL": self.url}

    def client(self, **kw):
        from ..client import WorkersAI
        kw.setdefault("backoff", 0.01)
        return WorkersAI(self.account_id, self.token, base_url=self.url, **kw)

    # scripting
    def enqueue(self, *replies, **fields) -> None:
        """Queue answers: strings, lists of chunks, or :class:`Reply` objects, in order.

        Keyword fields apply to each string or list given (``enqueue("hi", drip=0.1)``), or
        make one Reply of their own when nothing else is given (``enqueue(status=503)``).
        """
        items = []
        for r in replies:
            if isinstance(r, Reply):
                items.append(r)
            elif isinstance(r, (list, tuple)):
                items.append(Reply(chunks=list(r), **fields))
            else:
                items.append(Reply(text=str(r), **fields))
        if not replies:
            items.append(Reply(**fields))
        with self._lock:
            self._queue.extend(items)

    def pending(self) -> int:
        with self._lock:
            return sum(r.times for r in self._queue)

    def reset(self) -> None:
        with self._lock:
            self._queue.clear()
            self.requests.clear()

    def _next(self, request) -> Reply:
        with self._lock:
            if not self._queue:
                return self.default(request)
            reply = self._queue[0]
            reply.times -= 1
            if reply.times <= 0:
                self._queue.popleft()
            return reply

    # the app interface of ApiServer
    def received(self, request) -> None:
        with self._lock:
            self.requests.append(request)

    def search(self, request, handler) -> None:
        handler.send_json(200, envelope(self.models))

    def run(self, request, handler) -> None:
        if request.model not in {m["name"] for m in self.models}:
            raise ApiError(400, 5007, f"No such model {request.model}")
        reply = self._next(request)
        if reply.delay and self._server.stopping.wait(reply.delay):
            return
        if reply.status >= 400:
            raise ApiError(reply.status, reply.code or DEFAULT_CODES.get(reply.status, 0),
                           reply.message or f"Scripted error {reply.status}", reply.retry_after)
        pieces = reply.pieces()
        usage = reply.usage
        if usage is True:
            prompt = estimate_tokens(str(request.body.get("prompt") or request.body.get("messages")))
            usage = {"prompt_tokens": prompt, "completion_tokens": len(pieces),
                     "total_tokens": prompt + len(pieces)}
        if not request.stream:
            result = {"response": "".join(pieces), **({"usage": usage} if usage else {})}
            handler.send_json(200, envelope(result))
            return
        self._stream(request, handler, reply, pieces, usage)

    def _events(self, reply: Reply, pieces: list[str], usage) -> list[bytes]:
        events = []
        for i, piece in enumerate(pieces):
            if i == reply.malformed_at:
                events.append(b'data: {"response": "broken\n\n')
                continue
            event = sse({"response": piece, **reply.extra})
            if reply.comments:
                event = b": keep-alive\n" + event
            events.append(event)
        if reply.drop_after is not None:
            return events[:reply.drop_after]
        if usage:
            events.append(sse({"response": "", "usage": usage}))
        if reply.done:
            events.append(DONE)
        if reply.crlf:
            events = [e.replace(b"\n", b"\r\n") for e in events]
        return events

    def _stream(self, request, handler, reply: Reply, pieces, usage) -> None:
        events = self._events(reply, pieces, usage)
        handler.start_stream()
        if reply.split:
            data = b"".join(events)
            events = [data[i:i + reply.split] for i in range(0, len(data), reply.split)]
        try:
            if not reply.drip:
                handler.write_chunks(events)
            else:
                for i, event in enumerate(events):
                    if i and self._server.stopping.wait(reply.drip):
                        return
                    if handler.client_gone():
                        request.disconnected = True
                        return
                    handler.wfile.write(chunk(event))
            if reply.drop_after is not None:
                handler.drop()
                return
            handler.end_stream()
        except (BrokenPipeError, ConnectionResetError):
            request.disconnected = True
            handler.close_connection = True
