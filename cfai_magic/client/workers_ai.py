"""WorkersAI: the client. Sends a request in the chosen wire protocol and hands back an Answer.

``protocol="workers-ai"`` (``/ai/run/{model}``, the default) or ``"openai"``
(``/chat/completions``: Cloudflare's ``/ai/v1``, vLLM, llama.cpp's server, Ollama); also
``CFAI_PROTOCOL``. A cassette, when set, answers at the event seam: a recorded answer is
replayed as the same events, whatever the protocol.
"""
from __future__ import annotations

import json
import threading
from urllib.parse import urlsplit

from .. import backends, config, gateway, safe
from ..backends import Backend
from ..catalog import Catalog, Model
from ..errors import AuthError, CfaiError, InputError, RateLimited, StreamError, Timeout
from . import _sse, protocols
from ._http import Transport, read_body
from .answer import Answer
from .events import Reasoning, Text, ToolCall

Result = Stream = Answer          # the names of the first version: one object now
VISIBLE = (Text, Reasoning)
SAID = (Text, Reasoning, ToolCall)           # what makes an answer more than empty
MODEL_PAGES = 20                             # of the model list, 100 models each, at most


def served_by(headers) -> str | None:
    """The model a server says answered (``X-Cfai-Served-By``): its words, kept short."""
    value = headers.get("X-Cfai-Served-By") if headers else None
    return safe.plain(value)[:100] if value else None


class WorkersAI:
    """A client for Workers AI text generation, or any server speaking one of our protocols.

    ``base_url`` is the API root (``CFAI_BASE_URL``, else Cloudflare's). For ``workers-ai`` the
    client appends ``/accounts/{account_id}/ai/run/{model}`` (``gateway="name"`` goes through
    AI Gateway: a ``cf-aig-gateway-id`` header, or ``gateway_form="url"`` for the gateway's own
    URL; ``gateway_options`` sets its cache, log and metadata); for ``openai`` it appends
    ``/chat/completions`` (default root: Cloudflare's ``/accounts/{account_id}/ai/v1``).
    Credentials default to CLOUDFLARE_ACCOUNT_ID and CLOUDFLARE_API_TOKEN. An
    OpenAI-compatible engine at a root of its own (vLLM, llama.cpp) gets ``api_token`` if
    given, else OPENAI_API_KEY, else no Authorization header: never the Cloudflare token.
    ``backend=`` (a :class:`~cfai_magic.backends.Backend`) says it all at once.
    """

    def __init__(self, account_id: str | None = None, api_token=None, base_url: str | None = None,
                 gateway: str | None = None, timeout: float = 60.0, max_retries: int = 3, *,
                 backoff: float = 0.5, catalog: Catalog | None = None, session=None,
                 cassette=None, protocol: str | None = None, backend: Backend | None = None,
                 gateway_form: str = "header", gateway_options: gateway.Options | None = None):
        api_token = config.as_secret(api_token)      # no frame keeps the token as a plain str
        if backend is None:
            backend = backends.from_args(account_id, api_token, base_url, gateway, protocol,
                                         gateway_form)
        self.gateway_options = gateway_options.check() if gateway_options else None
        self.backend = backend
        self.protocol = protocols.get(backend.protocol)
        self.base_url = backend.base_url
        self.gateway = backend.gateway
        self._auth = backend.auth()
        self._catalog = catalog
        self.cassette = cassette
        self.transport = Transport(timeout=timeout, max_retries=max_retries, backoff=backoff,
                                   session=session)
        self._forward: WorkersAI | None = None     # auto cassette: the real client for a miss

    def __repr__(self) -> str:
        via = f", gateway={self.gateway!r}" if self.gateway else ""
        return (f"WorkersAI(base_url={self.base_url!r}{via}, protocol={self.protocol.NAME!r}, "
                "api_token=Secret('********'))")

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            self._catalog = Catalog()
        return self._catalog

    @property
    def label(self) -> str:
        return self.backend.label

    def url(self, model: str) -> str:
        by_url = self.gateway if self.backend.gateway_form == "url" else None
        return self.protocol.url(self.base_url, self.backend.account_id, model, by_url)

    def scrub(self, err: CfaiError) -> CfaiError:
        """Make sure a server that echoes the token cannot put it into our error, and say
        which credential a refusal is about."""
        secret = self.backend.token
        if secret:
            err.message = secret.scrub(err.message)
            err.args = (err.message,)
            if getattr(err, "details", ""):
                err.details = secret.scrub(err.details)
        if isinstance(err, AuthError):
            err.hint = self.backend.auth_hint()
        return err

    # requests ---------------------------------------------------------------------------------
    def resolve(self, model) -> Model:
        """A Model as given, or the catalog's for an id or alias (any id for an engine that
        names its own models)."""
        if isinstance(model, Model):
            return model
        return self.catalog.resolve(model, open=self.protocol.ANY_MODEL)

    def request(self, model, prompt=None, messages=None, max_tokens=None,
                **params) -> tuple[Model, dict]:
        """The model and the protocol-neutral request (checked against the model's limits)."""
        if (prompt is None) == (messages is None):
            raise InputError("Give either a prompt or messages, not both and not neither")
        spec = self.resolve(model)
        self.catalog.check(spec, max_tokens=max_tokens, messages=messages, prompt=prompt,
                           lora=params.get("lora"))
        request = {"prompt": prompt} if prompt is not None else {"messages": list(messages)}
        if max_tokens is not None:
            request["max_tokens"] = max_tokens
        request.update({k: v for k, v in params.items() if v is not None})
        return spec, request

    def answer(self, model, request: dict, *, stream: bool = True,
               cancel: threading.Event | None = None) -> Answer:
        """An Answer for a model already resolved and a request already checked."""
        model_id = model.id if isinstance(model, Model) else model
        return Answer(model_id, request, stream=stream, opener=self._open, cancel=cancel)

    def run(self, model, prompt: str | None = None, messages: list | None = None,
            max_tokens: int | None = None, *, tools=None, max_steps: int = 8,
            **params) -> Answer:
        """The whole answer at once (a finished :class:`Answer`). With ``tools=[f, g]`` the
        model may call those functions: the loop runs them and sends their results until it
        answers in text (``answer.steps`` holds each call and its result)."""
        spec, request = self.request(model, prompt, messages, max_tokens, **params)
        if tools:
            from ..turn import run_tools
            return run_tools(self, spec, request, tools, max_steps)
        return self.answer(spec, request, stream=False).consume()

    def stream(self, model, prompt: str | None = None, messages: list | None = None,
               max_tokens: int | None = None, *, cancel: threading.Event | None = None,
               **params) -> Answer:
        """The answer while it is generated: iterate for text, ``.events()`` for all."""
        spec, request = self.request(model, prompt, messages, max_tokens, **params)
        return self.answer(spec, request, stream=True, cancel=cancel)

    # the seam: a recorded answer, or one from the network --------------------------------------
    def _open(self, answer: Answer):
        """(first events, the rest) of an answer; the first are read inside the retries."""
        try:
            cassette = self.cassette
            if cassette is not None and cassette.mode != "record":
                hit = cassette.find(answer.model, answer.request)
                if hit is not None:
                    response = hit["response"]
                    answer.opened(None, str(hit["request"].get("backend") or "cassette"),
                                  response.get("served_by"), True)
                    return [], iter(cassette.events(hit))
                if cassette.replays_only:
                    raise cassette.miss(answer.model, answer.request)
                if cassette.forward is not None:
                    first, rest = self._forwarded()._open(answer)
                    return first, self._recorded(answer, rest)
            first, rest = self.transport.call(lambda: self._attempt(answer), answer.cancel)
            return first, self._recorded(answer, rest)
        except CfaiError as err:
            raise self.scrub(err) from None

    def _recorded(self, answer: Answer, events):
        """The events, then (the answer being complete) the answer into the cassette."""
        try:
            yield from events
        except CfaiError as err:
            raise self.scrub(err) from None
        if self.cassette is not None and not answer.replayed and not answer.cancel.is_set():
            self.cassette.record(answer)

    def _forwarded(self) -> WorkersAI:
        if self._forward is None:
            t = self.transport
            self._forward = WorkersAI(backend=self.cassette.forward(), timeout=t.timeout,
                                      max_retries=t.max_retries, backoff=t.backoff)
        return self._forward

    def dialect(self, model: str) -> str:
        spec = self.catalog.get(model)
        return spec.dialect if spec is not None else "chat"

    def _send(self, answer: Answer, stream: bool):
        """POST the answer's request: its body (with the options it sends but never records)
        and its headers (the gateway's among them); note where the answer came from."""
        body = self.protocol.body(answer.model, answer.request, stream,
                                  self.dialect(answer.model))
        if answer.options:
            body["options"] = {**(body.get("options") or {}), **answer.options}
        headers = {**gateway.headers(self.backend, answer.gateway or self.gateway_options),
                   **answer.headers}
        refused = None
        try:
            response = self.transport.send("POST", self.url(answer.model),
                                           headers=headers or None, json=body, stream=stream,
                                           auth=self._auth)
        except RateLimited as err:
            if not (answer.options.get("rejectIfBusy") and err.code == 3040):
                raise
            refused = busy(answer.model)
        if refused is not None:              # raised here, so chained to nothing
            raise refused
        got = response.headers
        answer.opened(response, self.backend.shown(got.get("X-Cfai-Backend")), served_by(got),
                      False, billed=self.backend.billed)
        answer.cache = gateway.cache_status(got)
        return response

    def _attempt(self, answer: Answer):
        response = self._send(answer, answer.stream)
        headers = response.headers
        decoder = self.protocol.Decoder()
        if "text/event-stream" not in headers.get("Content-Type", ""):
            whole = decoder.whole(_json(response))             # a whole answer: one chunk
            if answer.stream and not any(type(e) in SAID for e in whole):
                return self._unstreamed(answer), iter(())      # an empty one: ask again
            return whole, iter(())
        rest = _sse.events(_sse.Body(response), decoder)
        first = []
        try:
            for event in rest:
                first.append(event)
                if type(event) in VISIBLE:
                    break
        except StreamError as err:
            response.close()
            if err.stalled:            # nothing came: a timeout, not a broken answer
                host = urlsplit(self.base_url).netloc
                late = Timeout(f"No answer from {host} in time (the stream began, then "
                               "nothing came)")
                late.retryable = False
                raise late from None
            if "[DONE]" in err.message or "dropped" in err.message:
                err.retryable = True   # nothing was handed out yet: safe to retry
            raise
        return first, rest

    def _unstreamed(self, answer: Answer) -> list:
        """A model that cannot stream may answer a streaming request with empty JSON; its
        answer comes when asked again without streaming (as Cloudflare's provider does)."""
        return self.protocol.Decoder().whole(_json(self._send(answer, False)))

    # the asynchronous Batch API -----------------------------------------------------------------
    def queue(self, model: str, payload: dict, cancel: threading.Event | None = None) -> dict:
        """POST ``payload`` to ``/ai/run/{model}?queueRequest=true`` (``{"requests": [...]}``
        to submit, ``{"request_id": ...}`` to poll); the ``result`` of the answer."""
        if self.protocol.NAME != "workers-ai":
            raise InputError("The Batch API is Workers AI's /ai/run: it needs the workers-ai "
                             "protocol", hint="%cfai backend --protocol workers-ai")
        url = self.url(model) + "?queueRequest=true"
        headers = gateway.headers(self.backend, None) or None
        try:
            response = self.transport.call(
                lambda: self.transport.send("POST", url, headers=headers, json=payload,
                                            auth=self._auth), cancel)
            obj = _json(response)
        except CfaiError as err:
            raise self.scrub(err) from None
        result = obj.get("result")
        if not isinstance(result, dict):
            raise StreamError("The Batch API answered without a result")
        return result

    # the model list -----------------------------------------------------------------------------
    def models(self) -> list[dict]:
        """The text-generation models the backend offers (``[{"name": ...}, ...]``)."""
        if self.cassette is not None and self.cassette.mode == "replay":
            return self.cassette.models()
        found: list[dict] = []
        for page in range(1, MODEL_PAGES + 1):           # models/search comes in pages
            url = self.protocol.models_url(self.base_url, self.backend.account_id, page)
            try:
                response = self.transport.call(
                    lambda url=url: self.transport.send("GET", url, auth=self._auth))
            except CfaiError as err:
                raise self.scrub(err) from None
            try:
                data = _json(response)
            except StreamError:
                return found
            found += self.protocol.model_names(data)
            if not self.protocol.more_pages(data):
                return found
        return found

    def close(self) -> None:
        self.transport.close()
        if self._forward is not None:
            self._forward.close()

    def __enter__(self) -> WorkersAI:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def busy(model: str):
    """A 3040 on a request that asked not to wait: one line, at once, with what to do."""
    err = RateLimited(f"{model} is busy: Cloudflare has no capacity for it right now, and this "
                      "cell asked not to wait in its queue; nothing was generated",
                      hint="Run the cell again in a moment, choose another model with -m, or "
                           "add --wait to queue for capacity", code=3040, status=429)
    err.retryable = False
    return err


def _json(response) -> dict:
    try:
        obj = json.loads(read_body(response))
    except (ValueError, RecursionError):
        raise StreamError("The service answered with something that is not JSON") from None
    except _sse.READ_ERRORS as exc:
        raise StreamError(f"The connection dropped mid-answer ({type(exc).__name__})") from None
    if not isinstance(obj, dict):
        raise StreamError("The service answered with JSON that is not an object")
    return obj
