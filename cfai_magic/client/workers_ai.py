"""WorkersAI: run a text-generation model, whole or streamed."""
from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from typing import Iterator
from urllib.parse import urlsplit

from .. import config
from ..catalog import Catalog
from ..errors import CfaiError, InputError, StreamError
from . import _sse
from ._http import Transport

_DEFAULT_CATALOG = Catalog()


@dataclass
class Result:
    """A whole answer."""
    text: str
    model: str
    usage: dict | None = None
    backend: str = ""
    served_by: str | None = None
    params: dict = field(default_factory=dict)
    replayed: bool = False

    def __str__(self) -> str:
        return self.text


def backend_name(base_url: str, headers=None) -> str:
    """Which kind of server answered: the server may say (X-Cfai-Backend), else the URL does."""
    if headers and headers.get("X-Cfai-Backend"):
        return headers["X-Cfai-Backend"]
    host = urlsplit(base_url).hostname or ""
    if host == "api.cloudflare.com":
        return "cloudflare"
    if host == "gateway.ai.cloudflare.com":
        return "gateway"
    if host.endswith(".invalid"):
        return "cassette"
    return "local" if config.is_loopback(host) else host


def origin(base_url: str, headers) -> tuple[str, str | None, bool]:
    """(backend, served_by, replayed) of an answer, from its response headers."""
    return (backend_name(base_url, headers), headers.get("X-Cfai-Served-By"),
            headers.get("X-Cfai-Cassette") == "replay")


class Stream:
    """Text chunks of one answer as they arrive. Iterate it; ``text`` holds what came so far.

    Opens the request on first use. A failure before the first chunk is retried (see
    Transport); after it, a :class:`StreamError` carries ``partial``. ``close()`` (or leaving a
    ``with`` block, or stopping early) closes the HTTP connection; ``abort()`` may be called
    from another thread to end a read that is blocked.
    """

    def __init__(self, client: "WorkersAI", model: str, body: dict,
                 cancel: threading.Event | None = None):
        self.client = client
        self.model = model
        self.params = {k: v for k, v in body.items() if k not in ("prompt", "messages", "stream")}
        self.usage: dict | None = None
        self.backend = ""
        self.served_by: str | None = None
        self.done = False
        self.replayed = False
        self._body = body
        self._cancel = cancel or threading.Event()
        self._parts: list[str] = []
        self._events: Iterator[dict] | None = None
        self._response = None
        self._iter = None

    @property
    def text(self) -> str:
        return "".join(self._parts)

    def __iter__(self):
        if self._iter is None:
            self._iter = self._chunks()
        return self._iter

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _take(self, event: dict) -> str:
        if isinstance(event.get("usage"), dict):
            self.usage = event["usage"]
        piece = event.get("response")
        if piece is None:
            return ""
        return piece if isinstance(piece, str) else json.dumps(piece)

    def _open(self):
        """Send the request and read up to the first chunk; retried as a whole."""
        def attempt():
            response = self.client._send(self.model, self._body, stream=True)
            self._response = response
            self.backend, self.served_by, self.replayed = origin(self.client.base_url,
                                                                 response.headers)
            if "text/event-stream" not in response.headers.get("Content-Type", ""):
                result = self.client._result(self.model, response, self._body)
                self.usage = result.usage
                return iter(()), [result.text] if result.text else []
            events = _sse.events(_sse.Body(response))
            first = []
            try:
                for event in events:
                    piece = self._take(event)
                    if piece:
                        first.append(piece)
                        break
            except StreamError as err:
                response.close()
                if "[DONE]" in err.message or "dropped" in err.message:
                    err.retryable = True   # nothing was handed out yet: safe to retry
                raise
            return events, first
        return self.client.transport.call(attempt, self._cancel)

    def _chunks(self):
        cancelled = self._cancel.is_set
        parts = self._parts
        try:
            if cancelled():
                return
            events, first = self._open()
            for piece in first:
                parts.append(piece)
                yield piece
            take = self._take
            for event in events:
                if cancelled():
                    return
                piece = event.get("response")
                if type(piece) is not str or "usage" in event:
                    piece = take(event)
                if piece:
                    parts.append(piece)
                    yield piece
            self.done = True
            self.client._record(self, self._body, parts)
        except StreamError as err:
            if cancelled():
                return
            err.partial = self.text
            raise self.client._scrub(err) from None
        except CfaiError as err:
            raise self.client._scrub(err) from None
        finally:
            self.close()

    def __next__(self) -> str:
        return next(iter(self))

    def close(self) -> None:
        """Close the connection (the server sees it closed). Safe to call twice."""
        if self._response is not None:
            self._response.close()

    def abort(self) -> None:
        """From another thread: stop now, even if a read is blocked waiting for data."""
        self._cancel.set()
        response = self._response
        if response is not None:
            try:
                response.raw.shutdown()
            except (AttributeError, ValueError, RuntimeError, OSError):
                pass
            response.close()


class WorkersAI:
    """A client for Workers AI text generation (or any server speaking its protocol).

    ``base_url`` is the API root (``CFAI_BASE_URL``, else Cloudflare's); the client appends
    ``/accounts/{account_id}/ai/run/{model}``. ``gateway="name"`` goes through AI Gateway.
    Credentials default to CLOUDFLARE_ACCOUNT_ID and CLOUDFLARE_API_TOKEN.
    """

    def __init__(self, account_id: str | None = None, api_token=None, base_url: str | None = None,
                 gateway: str | None = None, timeout: float = 60.0, max_retries: int = 3, *,
                 backoff: float = 0.5, catalog: Catalog | None = None, session=None,
                 cassette=None):
        self._creds = config.credentials(account_id, api_token)
        default = config.GATEWAY_URL if gateway else config.CLOUDFLARE_URL
        self.base_url = config.check_base_url(
            base_url or os.environ.get(config.ENV_BASE_URL) or default)
        self.gateway = gateway
        self.catalog = catalog or _DEFAULT_CATALOG
        self.cassette = cassette
        if cassette is not None and session is None:
            session = cassette.session()
        self.transport = Transport(timeout=timeout, max_retries=max_retries, backoff=backoff,
                                   session=session)

    def __repr__(self) -> str:
        via = f", gateway={self.gateway!r}" if self.gateway else ""
        return f"WorkersAI(base_url={self.base_url!r}{via}, api_token=Secret('********'))"

    @property
    def backend(self) -> str:
        return backend_name(self.base_url)

    def url(self, model: str) -> str:
        account = self._creds.account_id
        if self.gateway:
            return f"{self.base_url}/{account}/{self.gateway}/workers-ai/{model}"
        return f"{self.base_url}/accounts/{account}/ai/run/{model}"

    def _headers(self) -> dict:
        return {"Authorization": f"Bearer {self._creds.token.reveal()}"}

    def _scrub(self, err: CfaiError) -> CfaiError:
        """Make sure a server that echoes the token cannot put it into our error."""
        token = self._creds.token.reveal()
        if token and token in err.message:
            err.message = err.message.replace(token, "********")
            err.args = (err.message,)
        return err

    def body(self, model: str, prompt=None, messages=None, max_tokens=None, stream=False,
             **params) -> tuple[str, dict]:
        """The checked model id and JSON body for a request (raises InputError)."""
        if (prompt is None) == (messages is None):
            raise InputError("Give either a prompt or messages, not both and not neither")
        spec = self.catalog.resolve(model)
        self.catalog.check(spec, max_tokens=max_tokens, messages=messages, prompt=prompt)
        body = {"prompt": prompt} if prompt is not None else {"messages": list(messages)}
        body["stream"] = stream
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        body.update({k: v for k, v in params.items() if v is not None})
        return spec.id, body

    def _record(self, answer, body: dict, chunks: list[str]) -> None:
        """Give a complete answer that came from a real backend to the cassette."""
        if self.cassette is not None and not answer.replayed:
            self.cassette.record(backend=answer.backend, model=answer.model, body=body,
                                 chunks=chunks, usage=answer.usage, served_by=answer.served_by)

    def _send(self, model: str, body: dict, stream: bool):
        return self.transport.send("POST", self.url(model), headers=self._headers(), json=body,
                                   stream=stream)

    def _result(self, model: str, response, body: dict) -> Result:
        try:
            envelope = response.json()
        except ValueError:
            raise StreamError("The service answered with something that is not JSON") from None
        finally:
            response.close()
        result = envelope.get("result") if isinstance(envelope, dict) else None
        if not isinstance(result, dict):
            raise StreamError("The answer has no result in its envelope")
        text = result.get("response", "")
        text = text if isinstance(text, str) else json.dumps(text)
        params = {k: v for k, v in body.items() if k not in ("prompt", "messages", "stream")}
        backend, served_by, replayed = origin(self.base_url, response.headers)
        return Result(text, model, result.get("usage"), backend, served_by, params, replayed)

    def run(self, model: str, prompt: str | None = None, messages: list | None = None,
            max_tokens: int | None = None, **params) -> Result:
        """The whole answer at once."""
        model, body = self.body(model, prompt, messages, max_tokens, False, **params)
        try:
            result = self.transport.call(
                lambda: self._result(model, self._send(model, body, False), body))
        except CfaiError as err:
            raise self._scrub(err) from None
        self._record(result, body, [result.text])
        return result

    def stream(self, model: str, prompt: str | None = None, messages: list | None = None,
               max_tokens: int | None = None, *, cancel: threading.Event | None = None,
               **params) -> Stream:
        """The answer as text chunks while it is generated (see :class:`Stream`)."""
        model, body = self.body(model, prompt, messages, max_tokens, True, **params)
        return Stream(self, model, body, cancel)

    def models(self) -> list[dict]:
        """The account's text-generation models (models/search)."""
        url = (f"{self.base_url}/accounts/{self._creds.account_id}/ai/models/search"
               "?task=Text%20Generation&per_page=100")
        try:
            response = self.transport.call(
                lambda: self.transport.send("GET", url, headers=self._headers()))
        except CfaiError as err:
            raise self._scrub(err) from None
        try:
            found = response.json().get("result") or []
        except (ValueError, AttributeError):
            return []
        return [m for m in found if isinstance(m, dict) and "name" in m
                and (m.get("task") or {}).get("name", "Text Generation") == "Text Generation"]

    def close(self) -> None:
        self.transport.close()
