"""Every error cfai_magic raises, in one tree.

    CfaiError                  str() is one line: what happened, then what to do
    ├── ConfigError            missing credentials, a base URL we refuse
    ├── InputError             refused before anything is sent
    │   ├── UnknownModel       no such model or alias (names the closest ids)
    │   └── LimitExceeded      max_tokens over the sequence limit, context overflow
    ├── APIError               the service answered with an error (status, code)
    │   ├── AuthError          401/403, code 10000 (the hint names the credential in use)
    │   ├── Redirected         3xx: a redirect is never followed (it would resend the prompt)
    │   ├── ModelNotFound      400 5007, 404 3042
    │   ├── ModelRetired       5028 (or refused before sending: the catalog knows)
    │   ├── PlanRequired       403 5035: the model needs the Workers Paid plan
    │   ├── LicenseRequired    403 5016: the model's license was not agreed to yet
    │   ├── AccountNotFound    404 7003
    │   ├── InvalidRequest     400 5004/5006/3003, 413 3006
    │   ├── RequestTimeout     408 3007/3008             (retried)
    │   ├── RateLimited        429 3040, .retry_after    (retried)
    │   ├── QuotaExceeded      429 3036                  (never retried)
    │   └── ServerError        5xx                       (retried)
    ├── TransportError         no HTTP answer at all     (retried)
    │   ├── ConnectionFailed
    │   └── Timeout
    ├── StreamError            the stream broke after it began; .partial holds the text so far
    ├── EmptyAnswer            the answer ended with no text (or only reasoning)
    ├── StepLimit              a tool loop made --max-steps rounds of calls, and no answer
    ├── Unexpected             any other exception, caught once at the turn boundary
    ├── Interrupted            the user stopped the answer; .partial holds the text so far
    └── CassetteMiss           replay mode, and the cassette has no such request
"""
from __future__ import annotations

from .safe import plain

__all__ = [
    "CfaiError", "ConfigError", "InputError", "UnknownModel", "LimitExceeded", "APIError",
    "AuthError", "Redirected", "ModelNotFound", "ModelRetired", "PlanRequired",
    "LicenseRequired", "AccountNotFound", "InvalidRequest", "RequestTimeout",
    "RateLimited", "QuotaExceeded", "ServerError", "TransportError", "ConnectionFailed",
    "Timeout", "StreamError", "EmptyAnswer", "StepLimit", "Unexpected", "Interrupted",
    "CassetteMiss", "from_response",
]


class CfaiError(Exception):
    """Base class. ``str(err)`` is always a single line."""

    hint = ""
    details = ""            # a traceback kept for %cfai debug: never shown, never chained
    retryable = False

    def __init__(self, message: str, *, hint: str | None = None, status: int | None = None,
                 code: int | None = None):
        self.message = " ".join(plain(message).split())     # a server's words: no escapes
        self.status = status
        self.code = code
        if hint is not None:
            self.hint = hint
        super().__init__(self.message)

    def __str__(self) -> str:
        where = []
        if self.status:
            where.append(f"HTTP {self.status}")
        if self.code:
            where.append(f"code {self.code}")
        text = self.message + (f" ({', '.join(where)})" if where else "")
        return plain(f"{text}. {self.hint}" if self.hint else text)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class ConfigError(CfaiError):
    pass


class InputError(CfaiError):
    pass


class UnknownModel(InputError):
    hint = "See %cfai models for the list"


class LimitExceeded(InputError):
    pass


class APIError(CfaiError):
    retryable = False


class AuthError(APIError):
    hint = "Check CLOUDFLARE_API_TOKEN (or run %cfai login); the token needs Workers AI permission"


class Redirected(APIError):
    hint = ("If that address is the right one, make it the base URL yourself "
            "(%cfai backend URL)")

    @classmethod
    def to(cls, status: int, location: str | None) -> Redirected:
        where = (location or "").strip()[:160] or "another address (not said)"
        return cls(f"The server answered {status}, asking to send the request to {where}; "
                   "nothing was sent there", status=status)


class ModelNotFound(APIError):
    hint = "See %cfai models for the ids this account can use"


class ModelRetired(APIError):
    hint = "Choose a current model (%cfai models)"


class PlanRequired(APIError):
    hint = ("This model needs the Workers Paid plan or AI Gateway credits: upgrade the account, "
            "route through a gateway billed with credits, or choose a free-plan model "
            "(%cfai models)")


class LicenseRequired(APIError):
    hint = ("This model asks you to agree to its license once, by sending the prompt 'agree': "
            "%%cfai -m llama-vision --once, then agree on the next line; then run the cell "
            "again")


class AccountNotFound(APIError):
    hint = "Check CLOUDFLARE_ACCOUNT_ID (or run %cfai login)"


class InvalidRequest(APIError):
    hint = "Fix the input or parameters and run again"


class RequestTimeout(APIError):
    retryable = True
    hint = "The service timed out; try again or lower --max-tokens"


class RateLimited(APIError):
    retryable = True
    hint = "Out of capacity; wait a moment and run again"

    def __init__(self, message: str, *, retry_after: float | None = None, **kw):
        self.retry_after = retry_after
        if retry_after:
            kw.setdefault("hint", f"Out of capacity; try again in {retry_after:g} s")
        super().__init__(message, **kw)


class QuotaExceeded(APIError):
    def __init__(self, message: str, **kw):
        kw.setdefault("hint", "The daily free allocation (10,000 neurons) is used up; it resets "
                              f"at 00:00 UTC ({free_reset()}), or move to the Workers Paid plan")
        super().__init__(message, **kw)


def free_reset(now=None) -> str:
    """When the daily free allocation resets, in the user's own time: ``01:00 CET, in 3 h 12
    min``."""
    import datetime as dt
    now = now or dt.datetime.now(dt.timezone.utc)
    reset = (now + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    hours, minutes = divmod(int((reset - now).total_seconds()) // 60, 60)
    local = reset.astimezone()
    mine = "" if not local.utcoffset() else f"{local:%H:%M} {local.tzname()} your time, "
    return f"{mine}in {hours} h {minutes:02d} min"


class ServerError(APIError):
    retryable = True
    hint = "The service failed; try again in a moment"


class TransportError(CfaiError):
    retryable = True


class ConnectionFailed(TransportError):
    hint = "Check the network and the base URL (%cfai config)"


class Timeout(TransportError):
    hint = "No answer in time; try again, or raise the timeout (%config CfaiMagics.timeout = 120)"


class _Partial:
    """A hint that depends on whether any text had arrived (known only once it ends)."""

    def __init__(self, some: str, none: str):
        self.some, self.none = some, none

    def __get__(self, err, owner=None):
        if err is None:
            return self.some
        given = err.__dict__.get("_hint")
        if given is not None:
            return given
        return self.some if (err.partial or "").strip() else self.none

    def __set__(self, err, value):
        err.__dict__["_hint"] = value


class StreamError(CfaiError):
    hint = _Partial("The partial answer is kept in the output; run the cell again for a full one",
                    "Nothing had arrived; run the cell again")

    def __init__(self, message: str, *, partial: str = "", stalled: bool = False, **kw):
        self.partial = partial
        self.stalled = stalled            # nothing came within the read timeout
        super().__init__(message, **kw)


class EmptyAnswer(CfaiError):
    hint = "Run the cell again, rephrase it, or raise --max-tokens"


class StepLimit(CfaiError):
    hint = "Raise --max-steps (max_steps=), or ask so that fewer calls are needed"

    @classmethod
    def after(cls, steps: int) -> StepLimit:
        return cls(f"The model kept calling tools: {steps} rounds of calls and no answer, so "
                   "the loop stopped")


class Unexpected(CfaiError):
    hint = ("This is a bug; the conversation is as it was. The details: "
            "print(_cfai_answer.error.details) (please report them with the cell)")

    @classmethod
    def wrap(cls, exc: BaseException) -> Unexpected:
        import traceback
        detail = str(exc).splitlines()[0][:200] if str(exc) else ""
        err = cls(f"Unexpected {type(exc).__name__}" + (f": {detail}" if detail else ""))
        err.details = "".join(traceback.format_exception(exc))     # on request, never shown
        return err          # not chained: the exception's frames may hold request headers


class Interrupted(CfaiError):
    hint = _Partial("What had arrived is kept in the conversation, marked interrupted; run the "
                    "cell again to replace it",
                    "Nothing had arrived; the conversation is as it was before the cell")

    def __init__(self, message: str = "Interrupted", *, partial: str = "", **kw):
        self.partial = partial
        super().__init__(message, **kw)


class CassetteMiss(CfaiError):
    hint = "Record it first (%cfai record PATH, or CFAI_CASSETTE_MODE=auto)"


_BY_CODE = {
    10000: AuthError, 5007: ModelNotFound, 3042: ModelNotFound, 7003: AccountNotFound,
    5028: ModelRetired, 5035: PlanRequired, 5016: LicenseRequired,
    5004: InvalidRequest, 5006: InvalidRequest, 3003: InvalidRequest, 3006: InvalidRequest,
    3007: RequestTimeout, 3008: RequestTimeout, 3040: RateLimited, 3036: QuotaExceeded,
}
_BY_STATUS = {401: AuthError, 403: AuthError, 404: ModelNotFound, 408: RequestTimeout,
              413: InvalidRequest, 429: RateLimited}


def from_response(status: int, body, retry_after: float | None = None) -> APIError:
    """The error for an HTTP error answer; ``body`` is the parsed JSON (or None)."""
    code, message = None, None
    if isinstance(body, str):                              # a plain-text error page
        message = (body.strip().splitlines() or [""])[0][:200]
    if isinstance(body, dict):
        errors = body.get("errors") or []
        if errors and isinstance(errors[0], dict):
            code = errors[0].get("code")
            message = errors[0].get("message")
        elif isinstance(body.get("error"), str):
            message = body["error"]
        elif isinstance(body.get("error"), dict):          # the OpenAI error body
            message = body["error"].get("message")
            code = body["error"].get("code")
        elif isinstance(body.get("detail"), str):           # FastAPI's (llama_cpp.server)
            message = body["detail"]
    code = code if isinstance(code, int) else None
    cls = (_BY_CODE.get(code) if code is not None else None) or _BY_STATUS.get(status)
    if cls is None:
        cls = ServerError if status >= 500 else InvalidRequest
    message = message if isinstance(message, str) and message else f"The service answered {status}"
    if cls is RateLimited:
        return RateLimited(message, status=status, code=code, retry_after=retry_after)
    return cls(message, status=status, code=code)
