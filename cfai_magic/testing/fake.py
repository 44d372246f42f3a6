"""FakeWorkersAI: a real HTTP server on 127.0.0.1 that speaks the Workers AI protocol."""
from __future__ import annotations

import gzip
import hashlib
import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace

from ..apiserver import (DONE, ApiError, ApiServer, Request, chunk, completion,
                         completion_chunk, envelope, search_item, sse)
from ..apicheck import check_limits, refuse_images, text_of
from ..catalog import estimate_messages, estimate_tokens
from ..models import BUILT_IN

DEFAULT_CODES = {400: 5004, 401: 10000, 403: 10000, 404: 3042, 408: 3007, 413: 3006,
                 429: 3040}


def dialect_of(model_id: str) -> str:
    """How a model answers /ai/run, as the built-in table says: the seed models and the Llama
    ``-fast`` ones in the legacy ``{"response"}`` shape, today's others as a chat.completion."""
    spec = next((m for m in BUILT_IN if m.id == model_id), None)
    return spec.dialect if spec is not None else "chat"


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

    Today's answers: ``reasoning`` (text, or a list of chunks) streams before the answer;
    ``tool_calls`` (``[{"name", "arguments": {...}}]``); ``dialect`` ``legacy``, ``chat`` or
    ``text`` (a ``text_completion``), by default the model's (:func:`dialect_of`), and
    ``chat`` on ``/chat/completions``; ``json_for_stream`` answers a streaming request with
    whole JSON (as gpt-oss and Kimi do); ``finish_reason`` (default ``stop``, or
    ``tool_calls``).

    Framing: ``bom`` starts the stream with a UTF-8 BOM; ``gzip`` compresses it
    (``Content-Encoding: gzip``); ``chunked=False`` sends it without chunked framing, ending it
    by closing the connection. ``stall`` waits that long after the headers, before the first
    event. ``raw`` is a list of event payloads (strings) sent as they are, then ``[DONE]``.
    ``headers`` are added to the answer's response headers (``X-Cfai-Served-By``, say).
    ``wire`` (bytes) is a whole event-stream body sent exactly as given; ``json`` a whole JSON
    body sent as it is (captured answers: Cloudflare's provider's test fixtures, say).
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
    reasoning: str | list | None = None
    tool_calls: list | None = None
    dialect: str | None = None
    json_for_stream: bool = False
    finish_reason: str | None = None
    bom: bool = False
    gzip: bool = False
    chunked: bool = True
    stall: float = 0.0
    raw: list | None = None
    headers: dict = field(default_factory=dict)
    wire: bytes | None = None
    json: dict | None = None

    def pieces(self) -> list[str]:
        if self.chunks is not None:
            return list(self.chunks)
        return words(self.text or "")

    def thoughts(self) -> list[str]:
        if isinstance(self.reasoning, list):
            return list(self.reasoning)
        return words(self.reasoning or "")

    @property
    def finish(self) -> str:
        return self.finish_reason or ("tool_calls" if self.tool_calls else "stop")

    @classmethod
    def large(cls, n_chunks: int, piece: str = "token ", **kw) -> Reply:
        """A very large answer of ``n_chunks`` chunks."""
        return cls(chunks=[piece] * n_chunks, **kw)


def _prompt_tokens(body: dict) -> int:
    """The input's size as the service would count it (an image as an image, not its base64)."""
    if "prompt" in body:
        return estimate_tokens(str(body["prompt"]))
    return estimate_messages(body.get("messages") or [])


def _number(value) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


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
    ``models`` is its live catalog (models/search items); by default the whole built-in table
    with its facts as properties, seed models included.

    AI Gateway (by URL, or by a ``cf-aig-gateway-id`` header): with ``cf-aig-cache-ttl`` (or
    ``gateway_cache_ttl``, the gateway's own setting) an answer is kept by its request (or by
    ``cf-aig-cache-key``) and served again with ``cf-aig-cache-status: HIT`` until it expires
    (``clock``); ``cf-aig-skip-cache: true`` passes the cache by. ``gateway_log`` is what the
    gateway logged: the metadata, and the request only when ``cf-aig-collect-log-payload`` is
    not ``false``. ``busy`` holds models out of capacity: a request with
    ``options.rejectIfBusy`` gets 429/3040 at once, another waits ``busy_wait`` s in the
    queue (``waited`` lists those), then is answered. ``finetunes`` maps a LoRA adapter's
    name (or id) to its base model.
    """

    def __init__(self, *, account_id: str = "fake-account-id", token: str = "fake-api-token",
                 models: list[dict] | None = None, port: int = 0, default=echo):
        self.account_id = account_id
        self.token = token
        self.models = models if models is not None else [search_item(m) for m in BUILT_IN]
        self.default = default
        self.requests: list = []
        self.jobs: dict = {}             # the Batch API's requests, by request_id
        self.queue_polls = 2             # polls a job answers "queued"/"running" before done
        self.model_list_delay = 0.0      # seconds each models/search page waits
        self.model_list_gate: threading.Event | None = None   # set: the list may answer
        self.gateway_cache_ttl: float | None = None
        self.gateway_log: list[dict] = []
        self.clock = time.monotonic
        self.busy: set[str] = set()
        self.busy_wait = 0.05
        self.waited: list = []
        self.finetunes: dict[str, str] = {}
        self._cache: dict[str, tuple] = {}
        self._jobs = 0
        self._queue: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._server = ApiServer(self, account_id=account_id, token=token, port=port)
        self._server.extra_headers["X-Cfai-Backend"] = "fake"

    # life cycle
    def start(self) -> FakeWorkersAI:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> FakeWorkersAI:
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
    def asked(self) -> list:
        """The requests for answers, in order (not the model list: a client fetches it beside
        its first request, so it may come before or after that one)."""
        with self._lock:
            return [r for r in self.requests if r.kind in ("run", "chat")]

    @property
    def last(self):
        """The last request for an answer, else the last request."""
        asked = self.asked
        return asked[-1] if asked else (self.requests[-1] if self.requests else None)

    @property
    def connections(self) -> int:
        """TCP connections accepted so far."""
        return self._server.connections

    @property
    def openai_url(self) -> str:
        """The OpenAI-compatible root, as Cloudflare serves it (``.../accounts/{id}/ai/v1``)."""
        return f"{self.url}/accounts/{self.account_id}/ai/v1"

    def env(self, protocol: str = "workers-ai") -> dict:
        """Environment variables that point cfai_magic (in this or another process) here."""
        env = {"CLOUDFLARE_ACCOUNT_ID": self.account_id, "CLOUDFLARE_API_TOKEN": self.token,
               "CFAI_BASE_URL": self.url}
        if protocol == "openai":      # an engine at a URL of its own: its key, not Cloudflare's
            env.update(CFAI_PROTOCOL="openai", CFAI_BASE_URL=self.openai_url,
                       OPENAI_API_KEY=self.token)
        return env

    def client(self, protocol: str = "workers-ai", **kw):
        from ..client import WorkersAI
        kw.setdefault("backoff", 0.01)
        url = self.openai_url if protocol == "openai" else self.url
        return WorkersAI(self.account_id, self.token, base_url=url, protocol=protocol, **kw)

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

    def model_list(self, request) -> list[dict]:
        if self.model_list_delay:                 # a slow catalog (a benchmark's latency)
            self._server.stopping.wait(self.model_list_delay)
        gate = self.model_list_gate
        while gate is not None and not gate.wait(0.05) and not self._server.stopping.is_set():
            pass
        return self.models

    def status(self) -> dict:
        return {"backend": "fake", "requests": len(self.requests)}

    def run(self, request, handler) -> None:
        if request.model not in {m["name"] for m in self.models}:
            raise ApiError(400, 5007, f"No such model {request.model}")
        if request.query.get("queueRequest") == "true":
            handler.send_json(200, envelope(self._queued(request)))
            return
        self._check(request)
        self._lora(request)
        if request.model in self.busy:
            if (request.body.get("options") or {}).get("rejectIfBusy") is True:
                raise ApiError(429, 3040, "Capacity temporarily exceeded, please try again.")
            self.waited.append(request)             # in the capacity queue, then answered
            if self._server.stopping.wait(self.busy_wait):
                return
        reply = self._through_gateway(request)
        if reply.delay and self._server.stopping.wait(reply.delay):
            return
        if reply.status >= 400:
            raise ApiError(reply.status, reply.code or DEFAULT_CODES.get(reply.status, 0),
                           reply.message or f"Scripted error {reply.status}", reply.retry_after)
        if reply.status >= 300:                  # a redirect (headers={"Location": ...})
            handler.send_json(reply.status, {}, reply.headers)
            return
        if reply.json is not None:
            handler.send_json(200, reply.json, reply.headers)
            return
        if reply.wire is not None:
            handler.start_stream(reply.headers)
            handler.write_chunks([reply.wire])
            handler.end_stream()
            return
        chat = request.kind == "chat"
        dialect = reply.dialect or ("chat" if chat else dialect_of(request.model))
        pieces = reply.pieces()
        thoughts = reply.thoughts() if dialect == "chat" else []    # others carry none
        usage = reply.usage
        if usage is True:
            prompt = _prompt_tokens(request.body)
            out = len(pieces) + len(thoughts)
            usage = {"prompt_tokens": prompt, "completion_tokens": out,
                     "total_tokens": prompt + out}
            if thoughts:
                usage["completion_tokens_details"] = {"reasoning_tokens": len(thoughts)}
        if not request.stream or reply.json_for_stream:
            handler.send_json(200, self._whole(request, reply, dialect, usage), reply.headers)
            return
        if reply.raw is not None:
            objs = list(reply.raw)
        elif dialect == "legacy":
            objs = self._legacy_events(reply, pieces, usage)
        else:
            objs = self._chat_events(request, reply, dialect, pieces, thoughts, usage)
        self._stream(request, handler, reply, objs)

    # AI Gateway, LoRA
    def _through_gateway(self, request) -> Reply:
        """The reply, from the gateway's cache when it holds one for this request."""
        if not request.gateway:
            return self._next(request)
        sent = {k.lower(): v for k, v in request.headers.items()}
        status = None
        ttl = _number(sent.get("cf-aig-cache-ttl")) or self.gateway_cache_ttl
        if ttl and sent.get("cf-aig-skip-cache", "").lower() != "true":
            key = sent.get("cf-aig-cache-key") or hashlib.sha256(json.dumps(
                [request.kind, request.model, request.body], sort_keys=True).encode()).hexdigest()
            with self._lock:
                kept = self._cache.get(key)
            if kept is not None and kept[1] > self.clock():
                reply, status = kept[0], "HIT"
            else:
                reply, status = self._next(request), "MISS"
                if reply.status < 300:
                    with self._lock:
                        self._cache[key] = (reply, self.clock() + ttl)
        else:
            reply = self._next(request)
        try:
            metadata = json.loads(sent.get("cf-aig-metadata") or "null")
        except ValueError:
            metadata = None
        payload = sent.get("cf-aig-collect-log-payload", "").lower() != "false"
        self.gateway_log.append({
            "gateway": request.gateway, "model": request.model, "cache": status,
            "metadata": dict(list(metadata.items())[:5]) if isinstance(metadata, dict) else None,
            "request": request.body if payload else None})
        if status is None:
            return reply
        return replace(reply, headers={**reply.headers, "cf-aig-cache-status": status})

    def _lora(self, request) -> None:
        adapter = request.body.get("lora")
        if adapter is None:
            return
        item = next((m for m in self.models if m.get("name") == request.model), {})
        takes = any(p.get("property_id") == "lora" for p in item.get("properties") or ())
        if not takes:
            raise ApiError(400, 5006, f"AiError: Bad input: {request.model} takes no LoRA "
                                      "adapter")
        if self.finetunes.get(adapter) != request.model:
            raise ApiError(400, 5004, f"Invalid input: no fine-tune {adapter!r} for "
                                      f"{request.model} on this account")

    @staticmethod
    def _check(request) -> None:
        """What the service (and the local backend) refuses: max_tokens over the model's
        sequence limit, input over its context, images for a model that cannot see."""
        spec = next((m for m in BUILT_IN if m.id == request.model), None)
        if spec is None:
            return
        if not spec.vision:
            refuse_images(request.body, spec.id)
        body = request.body
        prompt = estimate_tokens(body["prompt"]) if "prompt" in body else \
            estimate_messages([{"content": text_of(m.get("content"))} for m in body["messages"]])
        check_limits(spec, body, prompt, stream=request.stream)

    # the asynchronous Batch API
    def _queued(self, request) -> dict:
        """Submit (``{"requests": [...]}``) or poll (``{"request_id"}``). A job answers
        ``queued``, then ``running`` for ``queue_polls`` polls in all, then its responses, each
        from the scripted replies (or the default) as a whole answer."""
        body = request.body
        if isinstance(body.get("requests"), list):
            with self._lock:
                self._jobs += 1
                rid = f"fake-batch-{self._jobs}"
                self.jobs[rid] = {"model": request.model, "requests": body["requests"],
                                  "polls": 0}
            return {"status": "queued", "request_id": rid, "model": request.model}
        job = self.jobs.get(body.get("request_id"))
        if job is None or job["model"] != request.model:
            raise ApiError(404, 3042, "No such batch request")
        job["polls"] += 1
        if job["polls"] <= self.queue_polls:
            return {"status": "queued" if job["polls"] == 1 else "running",
                    "request_id": body["request_id"], "model": request.model}
        if "responses" not in job:
            job["responses"], job["usage"] = self._batch_answers(request, job["requests"])
        return {"responses": job["responses"], "usage": job["usage"]}

    def _batch_answers(self, request, items) -> tuple[list, dict]:
        responses, total = [], {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
        for i, item in enumerate(items):
            one = Request("POST", request.path, "run", request.account_id, request.model,
                          body={k: v for k, v in item.items() if k != "external_reference"})
            reply = self._next(one)
            ref = item.get("external_reference")
            if reply.status >= 400:
                responses.append({"id": i, "success": False, "external_reference": ref,
                                  "result": {"errors": [{"code": reply.code or 0, "message":
                                             reply.message or f"Scripted error {reply.status}"}]}})
                continue
            dialect = reply.dialect or dialect_of(request.model)
            prompt = _prompt_tokens(one.body)
            out = len(reply.pieces())
            usage = {"prompt_tokens": prompt, "completion_tokens": out,
                     "total_tokens": prompt + out}
            for k in total:
                total[k] += usage[k]
            result = self._whole(one, reply, dialect, usage)["result"]
            responses.append({"id": i, "result": result, "success": True,
                              "external_reference": ref})
        return responses, total

    def _whole(self, request, reply: Reply, dialect: str, usage) -> dict:
        text = "".join(reply.pieces())
        if dialect == "legacy":
            result = {"response": text, **({"usage": usage} if usage else {})}
            if reply.tool_calls:
                result["tool_calls"] = reply.tool_calls
            return envelope(result)
        answer = completion(request.model, text,
                            reasoning="".join(reply.thoughts()) if dialect == "chat" else "",
                            tool_calls=reply.tool_calls, usage=usage or None, finish=reply.finish,
                            kind="text_completion" if dialect == "text" else "chat.completion")
        return answer if request.kind == "chat" else envelope(answer)

    @staticmethod
    def _legacy_events(reply: Reply, pieces, usage) -> list:
        objs = [{"response": piece, **reply.extra} for piece in pieces]
        if reply.tool_calls:
            objs += [{"tool_calls": reply.tool_calls}, {"finish_reason": "tool_calls"}]
        if usage:
            objs.append({"response": "", "usage": usage})
        return objs

    @staticmethod
    def _chat_events(request, reply: Reply, dialect: str, pieces, thoughts, usage) -> list:
        """chat.completion.chunk (or text_completion) events. On /ai/run each carries the
        running usage; on /chat/completions only the last, when stream_options asks."""
        model, running = request.model, request.kind != "chat"
        wanted = running or bool((request.body.get("stream_options") or {}).get("include_usage"))
        prompt = (usage or {}).get("prompt_tokens", 0)

        def so_far(n):
            if not running or not usage:
                return None
            return {"prompt_tokens": prompt, "completion_tokens": n, "total_tokens": prompt + n}

        if dialect == "text":
            objs = [completion_chunk(model, text=p, usage=so_far(i + 1))
                    for i, p in enumerate(pieces)]
            objs.append(completion_chunk(model, text="", finish=reply.finish))
        else:
            deltas = [{"reasoning_content": t} for t in thoughts]
            deltas += [{"content": p} for p in pieces]
            if deltas:
                deltas[0] = {"role": "assistant", **deltas[0]}
            for i, call in enumerate(reply.tool_calls or ()):
                args = json.dumps(call["arguments"])
                half = len(args) // 2          # arguments arrive in pieces, as OpenAI sends them
                deltas.append({"tool_calls": [{"index": i, "id": f"call_{i}", "type": "function",
                                               "function": {"name": call["name"],
                                                            "arguments": args[:half]}}]})
                deltas.append({"tool_calls": [{"index": i,
                                               "function": {"arguments": args[half:]}}]})
            objs = [completion_chunk(model, d, usage=so_far(i + 1)) for i, d in enumerate(deltas)]
            objs.append(completion_chunk(model, {}, finish=reply.finish,
                                         usage=so_far(len(deltas))))
        for obj in objs:
            obj.update(reply.extra)
        if usage and wanted:
            objs.append(completion_chunk(model, usage=usage))
        return objs

    def _stream(self, request, handler, reply: Reply, objs) -> None:
        events = []
        for i, obj in enumerate(objs):
            if i == reply.malformed_at:
                events.append(b'data: {"response": "broken\n\n')
                continue
            event = b"data: %s\n\n" % obj.encode() if isinstance(obj, str) else sse(obj)
            if reply.comments:
                event = b": keep-alive\n" + event
            events.append(event)
        if reply.drop_after is not None:
            events = events[:reply.drop_after]
        elif reply.done:
            events.append(DONE)
        if reply.crlf:
            events = [e.replace(b"\n", b"\r\n") for e in events]
        if reply.bom:
            events = [b"\xef\xbb\xbf" + events[0], *events[1:]] if events else []
        if reply.gzip:
            events = [gzip.compress(b"".join(events))]
        handler.start_stream({**reply.headers, **({"Content-Encoding": "gzip"} if reply.gzip
                                                  else {})}, chunked=reply.chunked)
        if not reply.chunked:
            handler.wfile.write(b"".join(events))
            handler.drop()
            return
        if reply.split:
            data = b"".join(events)
            events = [data[i:i + reply.split] for i in range(0, len(data), reply.split)]
        try:
            if reply.stall:
                handler.wfile.flush()
                if self._server.stopping.wait(reply.stall):
                    return
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

