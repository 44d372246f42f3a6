"""HTTP for the client: one requests.Session, timeouts, retries with backoff and jitter."""
from __future__ import annotations

import email.utils
import json
import os
import random
import threading
import time
from urllib.parse import urlsplit

import requests

from ..errors import (CfaiError, ConnectionFailed, RateLimited, Redirected, StreamError,
                      Timeout, from_response)
from ._sse import READ_ERRORS
from ._wire import Adapter

USER_AGENT = "cfai_magic/0.1 (+https://github.com/cfai-magic/cfai_magic)"


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds: a number, or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


MAX_BODY = 32 * 1024 * 1024      # a whole (not streamed) answer larger than this is refused
MAX_ERROR_BODY = 64 * 1024


class TooLarge(StreamError):
    """A body over its cap: not read further, nothing of it used."""


def read_body(response: requests.Response, cap: int = MAX_BODY) -> bytes:
    """The whole body, read in pieces up to ``cap`` bytes (then :class:`TooLarge`), so a huge
    answer is refused after ``cap`` bytes instead of held whole in memory; then closed."""
    parts, size = [], 0
    try:
        for chunk in response.iter_content(65536):
            size += len(chunk)
            if size > cap:
                raise TooLarge(f"The answer is over {cap // (1024 * 1024)} MiB; it was not read "
                               "further", hint="Ask for a shorter answer (--max-tokens)")
            parts.append(chunk)
    finally:
        response.close()
    return b"".join(parts)


def error_from(response: requests.Response) -> CfaiError:
    """The CfaiError for an HTTP error answer; reads (64 kB at most) and closes the body."""
    try:
        raw = read_body(response, MAX_ERROR_BODY)
    except (TooLarge, *READ_ERRORS):
        raw = b""
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        body = raw[:1000].decode("utf-8", "replace") or None
    return from_response(response.status_code, body,
                         retry_after_seconds(response.headers.get("Retry-After")))


def transport_error(exc: Exception, url: str) -> CfaiError:
    host = urlsplit(url).netloc
    if isinstance(exc, requests.ConnectTimeout):
        return Timeout(f"Could not connect to {host} in time")
    if isinstance(exc, (requests.Timeout, TimeoutError)):
        err = Timeout(f"No answer from {host} in time")
        err.retryable = False     # it accepted and said nothing: waiting again multiplies it
        return err
    return ConnectionFailed(f"Could not reach {host} ({type(exc).__name__})")


# What requests reads from the environment for an http(s) URL: proxies, the CA bundle.
ENVIRONMENT = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy",
               "all_proxy", "no_proxy", "REQUEST_METHOD", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


def environment(url: str) -> dict:
    """``proxies`` and ``verify`` for ``url``, as requests' Session.request reads them from the
    environment (it reads every variable twice a request: 0.3-0.4 ms of the first token)."""
    return {"proxies": requests.utils.get_environ_proxies(url),
            "verify": os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
            or True}


class Transport:
    """Sends requests and retries what is worth retrying.

    ``call(fn)`` runs ``fn`` until it returns, retrying a :class:`CfaiError` whose class is
    ``retryable`` (connection errors, timeouts, 408, 429 code 3040, 5xx) up to ``max_retries``
    times. The wait doubles each time (``backoff`` seconds first, ``max_backoff`` at most) with
    jitter, and is never shorter than the server's ``Retry-After``; a Retry-After longer than
    ``max_retry_after`` is not waited for but raised. ``cancel`` (a threading.Event) ends a wait.

    A batch sets ``limiter`` (shared by every thread that sends: each attempt waits for its
    turn, and a 429 pauses them all) and ``rate_limit_retries`` (429s retried apart from other
    faults: a busy account is not a failed row).
    """

    def __init__(self, *, timeout: float = 60.0, max_retries: int = 3, backoff: float = 0.5,
                 max_backoff: float = 8.0, max_retry_after: float = 60.0,
                 session: requests.Session | None = None):
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        self.session.trust_env = False      # read here, per host, when its variables change
        self._environment: dict = {}
        for prefix in ("http://", "https://"):     # 1xx informational answers are skipped
            self.session.mount(prefix, Adapter())
        self.attempts = 0   # requests sent by the last call(), retries included
        self.limiter = None
        self.rate_limit_retries = max_retries
        self.connections = 10               # requests' default pool per host

    def pool(self, size: int) -> None:
        """Keep up to ``size`` connections per host (one per thread that sends at once)."""
        if size <= self.connections:
            return
        for prefix in ("http://", "https://"):
            self.session.mount(prefix, Adapter(pool_connections=size, pool_maxsize=size))
        self.connections = size

    def send(self, method: str, url: str, *, headers=None, json=None, stream: bool = False,
             auth=None) -> requests.Response:
        """One request; an HTTP error status or a transport failure raises a CfaiError.

        ``auth`` adds the credential as the request leaves (no header dict here holds it). A
        redirect is never followed: it would resend the prompt to another address. Errors are
        raised outside the ``except`` block, so none is chained to requests' frames.

        The request is prepared here and sent with ``Session.send``: ``Session.request`` merges
        settings that never change between our requests, 0.5-0.8 ms a request here (a first
        token over loopback takes about 1 ms). Proxies and the CA bundle still come from the
        environment, read again when one of their variables changes."""
        failure = None
        try:
            session = self.session
            prepared = requests.PreparedRequest()
            prepared.prepare(method=method, url=url, json=json, auth=auth,
                             headers={**session.headers, **(headers or {})},
                             cookies=session.cookies)
            response = session.send(prepared, stream=True, allow_redirects=False,
                                    timeout=(min(10.0, self.timeout), self.timeout),
                                    **self._settings(url))
        except requests.RequestException as exc:
            failure = transport_error(exc, url)
        if failure is not None:
            raise failure
        if 300 <= response.status_code < 400:
            response.close()
            raise Redirected.to(response.status_code, response.headers.get("Location"))
        if response.status_code >= 400:
            raise error_from(response)
        return response

    def _settings(self, url: str) -> dict:
        """The environment's proxies and CA bundle for ``url``'s host, kept until one of the
        variables they come from changes (a check of eleven names, not of the environment)."""
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc, *(os.environ.get(name) for name in ENVIRONMENT))
        found = self._environment.get(key)
        if found is None:
            if len(self._environment) > 8:
                self._environment.clear()
            found = self._environment[key] = environment(url)
        return found

    def delay(self, attempt: int, err: CfaiError) -> float | None:
        wait = min(self.max_backoff, self.backoff * 2 ** attempt) * random.uniform(0.5, 1.0)
        after = getattr(err, "retry_after", None)
        if after is not None:
            if after > self.max_retry_after:
                return None
            wait = max(wait, after)
        return wait

    def call(self, fn, cancel: threading.Event | None = None):
        self.attempts = 0
        faults = limited = 0          # retries so far: for faults, and for 429s
        while True:
            self.attempts += 1
            limiter = self.limiter
            if limiter is not None:
                limiter.wait(cancel)
            try:
                return fn()
            except CfaiError as err:
                wait = self._retry_wait(err, faults, limited)
                if wait is None:
                    raise
                busy = isinstance(err, RateLimited)
            faults, limited = faults + (not busy), limited + busy
            if busy and limiter is not None:
                limiter.pause(wait)           # every sender waits, not only this one
                continue
            if cancel is not None:
                if cancel.wait(wait):
                    raise ConnectionFailed("Cancelled while waiting to retry", hint="")
            else:
                time.sleep(wait)

    def _retry_wait(self, err: CfaiError, faults: int, limited: int) -> float | None:
        """Seconds to wait before retrying ``err``, or None to raise it."""
        if not getattr(err, "retryable", False):
            return None
        if isinstance(err, RateLimited):
            if err.code not in (None, 3040) or limited >= self.rate_limit_retries:
                return None
            after = getattr(err, "retry_after", None)
            if after is not None and after <= self.max_retry_after:
                return after * random.uniform(1.0, 1.1)     # the server said when
            return self.delay(limited, err)
        return None if faults >= self.max_retries else self.delay(faults, err)

    def close(self) -> None:
        self.session.close()
