"""The server side of the Workers AI protocol, shared by the fake test server and the local backend.

An :class:`ApiServer` binds 127.0.0.1 (a free port unless told), serves in a thread, and hands
each checked request to an app's ``run(request, handler)`` (``request.kind`` ``run`` or ``chat``);
``model_list(request)`` answers the model lists of both protocols.
Paths: ``/client/v4/accounts/{account}/ai/run/{model}``, ``.../ai/models/search``, AI
Gateway's ``/v1/{account}/{gateway}/workers-ai/{model}``, and the OpenAI-compatible
``/client/v4/accounts/{account}/ai/v1/chat/completions`` and ``/v1/chat/completions`` (with
``.../models`` beside them; kind ``chat``, the model in the body). Model ids may come raw
(``@cf/meta/x``) or percent-encoded (``@cf%2Fmeta%2Fx``). Errors at either OpenAI-compatible
root have the OpenAI shape, elsewhere the v4 envelope; methods other than GET and POST get 405.
Bodies are checked by apicheck.py.
"""
from __future__ import annotations

import hmac
import json
import select
import socket
import threading
import time
from typing import Any
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from .apicheck import check_body
from .messages import shown
from .config import is_loopback

API_ROOT = "/client/v4"
GATEWAY_ROOT = "/v1"
DONE = b"data: [DONE]\n\n"
MAX_BODY = 16 * 1024 * 1024        # the Batch API takes up to 10 MB
MAX_CONNECTIONS = 1024             # open at once; more are closed as they come
IDLE_TIMEOUT = 15.0                # seconds a connection may wait between (or inside) reads


class ApiError(Exception):
    """An error answer in the v4 envelope."""

    def __init__(self, status: int, code: int, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.retry_after = status, code, message, retry_after


def envelope(result) -> dict:
    return {"result": result, "success": True, "errors": [], "messages": []}


def error_envelope(code: int, message: str) -> dict:
    return {"result": None, "success": False, "errors": [{"code": code, "message": message}],
            "messages": []}


def openai_error(status: int, code: int, message: str) -> dict:
    kinds = {401: "authentication_error", 404: "not_found_error", 429: "rate_limit_error"}
    return {"error": {"message": message, "type": kinds.get(status, "invalid_request_error"),
                      "code": code}}


def completion(model: str, text: str = "", *, reasoning: str = "", tool_calls=None,
               usage: dict | None = None, finish: str | None = "stop",
               kind: str = "chat.completion") -> dict:
    """A whole OpenAI answer: ``chat.completion`` (``message``) or ``text_completion``
    (``text``)."""
    if kind == "text_completion":
        choice = {"index": 0, "text": text, "finish_reason": finish}
    else:
        message: dict[str, Any] = {"role": "assistant",
                                   "content": text if text or not tool_calls else None}
        if reasoning:
            message["reasoning_content"] = reasoning
        if tool_calls:
            message["tool_calls"] = [
                {"id": f"call_{i}", "type": "function",
                 "function": {"name": c["name"], "arguments": json.dumps(c["arguments"])}}
                for i, c in enumerate(tool_calls)]
        choice = {"index": 0, "message": message, "finish_reason": finish}
    out: dict[str, Any] = {"id": "chatcmpl-cfai", "object": kind, "created": int(time.time()),
                           "model": model, "choices": [choice]}
    if usage:
        out["usage"] = usage
    return out


def completion_chunk(model: str, delta: dict | None = None, *, finish: str | None = None,
                     usage: dict | None = None, text: str | None = None) -> dict:
    """One streamed OpenAI event; ``delta=None`` and ``text=None`` is the last, usage-only
    one (``choices: []``); ``text`` makes a ``text_completion`` chunk."""
    out: dict[str, Any]
    if text is not None:
        out = {"object": "text_completion",
               "choices": [{"index": 0, "text": text, "finish_reason": finish}]}
    else:
        choices = [] if delta is None and finish is None else [
            {"index": 0, "delta": delta or {}, "finish_reason": finish}]
        out = {"object": "chat.completion.chunk", "choices": choices}
    out.update({"id": "chatcmpl-cfai", "created": int(time.time()), "model": model})
    if usage is not None:
        out["usage"] = usage
    return out


def search_item(model, description: str | None = None) -> dict:
    """A models/search item for ``model`` (a catalog Model), its facts as the service gives
    them: a list of ``{property_id, value}`` with string values, prices as a list."""
    props: list[tuple[str, Any]] = []
    if model.context_tokens:
        props.append(("context_window", str(model.context_tokens)))
    prices = [{"unit": f"per M {unit} tokens", "price": price, "currency": "USD"}
              for unit, price in (("input", model.price_in), ("output", model.price_out),
                                  ("cached input", model.price_cached)) if price is not None]
    if prices:
        props.append(("price", prices))
    for flag, prop in (("tools", "function_calling"), ("reasoning", "reasoning"),
                        ("vision", "vision"), ("paid", "require_workers_paid"),
                        ("batch", "async_queue"), ("lora", "lora")):
        if getattr(model, flag):
            props.append((prop, "true"))
    if model.retires:
        props.append(("planned_deprecation_date", model.retires))
    return {"name": model.id, "description": description or model.description,
            "task": {"name": "Text Generation"},
            "properties": [{"property_id": k, "value": v} for k, v in props]}


def sse(obj) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


def chunk(data: bytes) -> bytes:
    """One HTTP/1.1 chunk."""
    return b"%x\r\n%s\r\n" % (len(data), data)


@dataclass
class Request:
    """What a server received (never the token: only whether it matched)."""
    method: str
    path: str
    kind: str                     # run | search | chat | models
    account_id: str
    model: str = ""
    gateway: str | None = None
    body: dict = field(default_factory=dict)
    query: dict = field(default_factory=dict)
    authorized: bool = False
    credential: str = "none"      # the Authorization header: none, ours, or another
    headers: dict = field(default_factory=dict)
    time: float = field(default_factory=time.time)
    disconnected: bool = False    # the client went away before the answer was complete
    finished: bool = False        # the server is done with it (answered, refused or left)

    @property
    def cut_short(self) -> bool:
        """The answer was not sent in full: still going, or the client left first."""
        return not self.finished or self.disconnected

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream"))

    @property
    def input_text(self) -> str:
        """The prompt, or the last user message (an image in it as ``[image W×H, n kB]``)."""
        if "prompt" in self.body:
            return str(self.body["prompt"])
        users = [shown(m.get("content")) for m in self.body.get("messages", [])
                 if isinstance(m, dict) and m.get("role") == "user"]
        return users[-1] if users else ""


def parse_path(path: str):
    """(kind, account, gateway, model) for a known path, else None."""
    raw = urlsplit(path).path
    if raw.startswith(API_ROOT + "/accounts/"):
        rest = raw[len(API_ROOT + "/accounts/"):]
        account, _, tail = rest.partition("/")
        if tail.startswith("ai/run/") and len(tail) > len("ai/run/"):
            return "run", account, None, unquote(tail[len("ai/run/"):])
        if tail.rstrip("/") == "ai/models/search":
            return "search", account, None, ""
        if tail.startswith("ai/v1/") and tail[len("ai/v1/"):] in OPENAI_PATHS:
            return OPENAI_PATHS[tail[len("ai/v1/"):]], account, None, ""
    if raw == "/status":
        return "status", None, None, ""
    if raw.startswith("/v1/") and raw[len("/v1/"):] in OPENAI_PATHS:
        return OPENAI_PATHS[raw[len("/v1/"):]], None, None, ""
    if raw.startswith(GATEWAY_ROOT + "/"):
        parts = raw[len(GATEWAY_ROOT) + 1:].split("/", 3)
        if len(parts) == 4 and parts[2] == "workers-ai" and parts[3]:
            return "run", parts[0], parts[1], unquote(parts[3])
    return None


OPENAI_PATHS = {"chat/completions": "chat", "models": "models"}
POSTS = ("run", "chat")
METHODS = "GET, POST"


def page_of(items: list[dict], query: dict) -> tuple[list[dict], dict]:
    """models/search as Cloudflare answers it: filtered by ``search`` (in the name or the
    description), ``task`` and ``author``, then one ``page`` of ``per_page`` (default 20, at most
    1000) with its ``result_info``; a page past the end is empty."""
    def has(item, key, value):
        if key == "search":
            return value.lower() in (item.get("name", "") + " " +
                                     str(item.get("description") or "")).lower()
        if key == "task":
            return (item.get("task") or {}).get("name", "").lower() == value.lower()
        parts = item.get("name", "").split("/")
        return len(parts) > 2 and parts[1].lower() == value.lower()
    for key in ("search", "task", "author"):
        if query.get(key):
            items = [m for m in items if has(m, key, query[key])]
    try:
        page = max(1, int(query.get("page") or 1))
        per_page = max(1, min(1000, int(query.get("per_page") or 20)))
    except ValueError:
        raise ApiError(400, 5004, "Invalid input: page and per_page are numbers") from None
    shown = items[(page - 1) * per_page:page * per_page]
    return shown, {"page": page, "per_page": per_page, "count": len(shown),
                   "total_count": len(items)}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True      # else a reused connection stalls ~40 ms a request
    server: ApiServer

    def log_message(self, format, *args):   # keep test output quiet
        pass

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def _refuse_method(self):
        """405, in the shape of the path's API; HEAD gets the headers only."""
        found = parse_path(self.path)
        self.close_connection = True           # a body, if any, is not read
        body = openai_error(405, 7001, f"Method {self.command} not allowed") \
            if found and found[0] in ("chat", "models") else \
            error_envelope(7001, f"Method {self.command} not allowed: use {METHODS}")
        self.send_json(405, body, {"Allow": METHODS}, head=self.command == "HEAD")

    do_HEAD = do_OPTIONS = do_PUT = do_DELETE = do_PATCH = _refuse_method

    def setup(self):
        self.timeout = self.server.idle_timeout       # idle and slow clients are let go
        super().setup()

    def _dispatch(self, method: str) -> None:
        app = self.server.app
        found = parse_path(self.path)
        openai_shape = found is not None and found[0] in ("chat", "models")   # both roots
        self._body_read = method != "POST"
        req = None
        try:
            if not self.server.host_allowed(self.headers.get("Host", "")):
                raise ApiError(403, 10000, "Host not allowed: this server answers its own "
                                           "address only")
            if found is None or (found[0] in POSTS) != (method == "POST"):
                raise ApiError(404, 7000, f"No route for {method} {urlsplit(self.path).path}")
            kind, account, gateway, model = found
            if kind in POSTS and gateway is None:      # AI Gateway by header (the unified API)
                gateway = self.headers.get("cf-aig-gateway-id") or None
            credential = self._credential()
            req = Request(method, self.path, kind, account, model, gateway,
                          query={k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()},
                          authorized=self.server.token is None or credential == "ours",
                          credential=credential,
                          headers={k: v for k, v in self.headers.items()
                                   if k.lower() != "authorization"})
            if method == "POST" and req.authorized:     # the token first: no body read for
                req.body = self._read_json()            # a request that has none
                if kind == "chat" and isinstance(req.body, dict):
                    req.model = str(req.body.get("model") or "")
            app.received(req)
            if not req.authorized:
                raise ApiError(401, 10000, "Authentication error")
            if self.server.account_id and account is not None \
                    and account != self.server.account_id:
                raise ApiError(404, 7003, "Could not route to the account: no such account id")
            if kind == "status":
                self.send_json(200, app.status())
                return
            if kind == "search":
                shown, info = page_of(app.model_list(req), req.query)
                self.send_json(200, {**envelope(shown), "result_info": info})
                return
            if kind == "models":
                self.send_json(200, {"object": "list", "data": [
                    {"id": m["name"], "object": "model", "owned_by": "cfai"}
                    for m in app.model_list(req)]})
                return
            check_body(req.body, kind, queued=req.query.get("queueRequest") == "true")
            app.run(req, self)
        except ApiError as err:
            if not self._body_read:           # what is left of the body cannot be a request
                self.close_connection = True
            headers = {"Retry-After": f"{err.retry_after:g}"} if err.retry_after is not None else {}
            body = openai_error(err.status, err.code, err.message) if openai_shape \
                else error_envelope(err.code, err.message)
            self.send_json(err.status, body, headers)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            if req is not None:
                req.finished = True

    def _credential(self) -> str:
        """Whether the request carries our token ("ours"), another one, or none."""
        auth = self.headers.get("Authorization")
        if not auth:
            return "none"
        token = self.server.token
        if token is None:
            return "ours"
        return "ours" if hmac.compare_digest(auth.encode(), f"Bearer {token}".encode()) \
            else "other"

    def _read_json(self):
        raw = self._read_body(self.server.max_body)
        try:
            return json.loads(raw or b"null")
        except (ValueError, RecursionError):
            raise ApiError(400, 5004, "Invalid input: the body is not JSON") from None

    def _read_body(self, limit: int) -> bytes:
        """The request body, chunked or by Content-Length, refused at once past ``limit``."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked(limit)
        given = self.headers.get("Content-Length")
        if given is None:
            self._body_read = True
            return b""
        if not given.strip().isdigit():
            raise ApiError(400, 5004, "Invalid input: Content-Length must be a number of bytes")
        length = int(given)
        if length > limit:
            raise ApiError(413, 3006, f"Request too large: {length:,} bytes, over the "
                                      f"{limit:,}-byte limit")
        data = self.rfile.read(length)
        if len(data) < length:
            raise ApiError(400, 5004, "Invalid input: the body ended before Content-Length")
        self._body_read = True
        return data

    def _read_chunked(self, limit: int) -> bytes:
        parts: list[bytes] = []
        size = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                n = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise ApiError(400, 5004, "Invalid input: a broken chunk in the body") from None
            if n < 0:
                raise ApiError(400, 5004, "Invalid input: a broken chunk in the body")
            if n == 0:
                while self.rfile.readline(65537).strip():      # trailers
                    pass
                self._body_read = True
                return b"".join(parts)
            size += n
            if size > limit:
                raise ApiError(413, 3006, f"Request too large: over the {limit:,}-byte limit")
            parts.append(self.rfile.read(n))
            self.rfile.readline(3)                              # the chunk's CRLF

    def send_json(self, status: int, obj, headers: dict | None = None,
                  head: bool = False) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        for key, value in {**self.server.extra_headers, **(headers or {})}.items():
            self.send_header(key, value)
        self.end_headers()
        if not head:
            self.wfile.write(data)

    def start_stream(self, headers: dict | None = None, chunked: bool = True) -> None:
        """Status 200, text/event-stream, chunked transfer encoding (as the live service), or
        (``chunked=False``) a body that ends when the connection closes."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        for key, value in {**self.server.extra_headers, **(headers or {})}.items():
            self.send_header(key, value)
        self.end_headers()

    def write_chunks(self, pieces) -> None:
        """Each piece as its own HTTP chunk, written in one go."""
        self.wfile.write(b"".join(chunk(p) for p in pieces if p))

    def end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")

    def drop(self) -> None:
        """Close the connection abruptly, mid-answer."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def client_gone(self) -> bool:
        """Whether the client closed its end (without writing to find out)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True


class ApiServer(ThreadingHTTPServer):
    """A loopback HTTP server in a daemon thread. ``url`` is the API root for ``base_url``."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = MAX_CONNECTIONS   # the listen backlog: socketserver's 5 made a burst
                                           # of clients wait a second each for SYN retries

    def __init__(self, app, *, account_id: str | None, token: str | None, host: str = "127.0.0.1",
                 port: int = 0, max_body: int = MAX_BODY, max_connections: int = MAX_CONNECTIONS,
                 idle_timeout: float = IDLE_TIMEOUT):
        self.app = app
        self.account_id = account_id
        self.token = token
        self.max_body, self.max_connections = max_body, max_connections
        self.idle_timeout = idle_timeout
        self.extra_headers: dict = {}
        self.connections = 0
        self.open = 0                        # connections being served now
        self._open_lock = threading.Lock()
        self.stopping = threading.Event()
        self._thread: threading.Thread | None = None
        super().__init__((host, port), Handler)

    def host_allowed(self, host: str) -> bool:
        """The Host header names a loopback address or the one we are bound to (a DNS-rebinding
        page would send its own name)."""
        name = host.rsplit(":", 1)[0] if host.count(":") <= 1 else host.rsplit("]", 1)[0] + "]"
        name = name.strip("[]").lower()
        return name in ("localhost", str(self.server_address[0]).lower()) or is_loopback(name)

    def process_request(self, request, client_address):
        with self._open_lock:
            full = self.open >= self.max_connections
            if not full:
                self.open += 1
        if full:                             # no thread for it: closed at once
            self.shutdown_request(request)
            return
        self.connections += 1                # for tests: is a connection reused?
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._open_lock:
                self.open -= 1

    def handle_error(self, request, client_address):
        """A client that went away is normal here; anything else is printed as usual."""
        import sys
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)

    @property
    def origin(self) -> str:
        host, port = self.server_address[:2]          # kept after the socket closes
        return f"http://{host if isinstance(host, str) else host.decode()}:{port}"

    @property
    def url(self) -> str:
        return self.origin + API_ROOT

    @property
    def gateway_url(self) -> str:
        return self.origin + GATEWAY_ROOT

    def start(self) -> ApiServer:
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"{type(self.app).__name__}-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self._thread is not None:
            self.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self.server_close()
