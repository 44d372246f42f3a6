"""Settings (traitlets), credentials and base URLs.

The API token is deliberately not a trait: ``%config CfaiMagics`` prints every trait's value.
It lives in a :class:`Secret`, whose repr and str never show it.
"""
from __future__ import annotations

import hashlib
import ipaddress
import os
from dataclasses import dataclass
from urllib.parse import urlsplit

from traitlets import Bool, Enum, Float, Int, TraitError, Unicode, default, validate
from traitlets.config import Configurable

from .errors import ConfigError

CLOUDFLARE_URL = "https://api.cloudflare.com/client/v4"
GATEWAY_URL = "https://gateway.ai.cloudflare.com/v1"
ENV_ACCOUNT = "CLOUDFLARE_ACCOUNT_ID"
ENV_TOKEN = "CLOUDFLARE_API_TOKEN"
ENV_BASE_URL = "CFAI_BASE_URL"
ENV_PROTOCOL = "CFAI_PROTOCOL"
ENV_OPENAI_KEY = "OPENAI_API_KEY"
# where the Cloudflare token belongs: Cloudflare's API and AI Gateway (scheme, host, port)
CLOUDFLARE_ORIGINS = frozenset({("https", "api.cloudflare.com", 443),
                                ("https", "gateway.ai.cloudflare.com", 443)})
DISPLAY_MODES = ("auto", "rich", "print", "final")


class Settings(Configurable):
    """What a user may set with ``%config CfaiMagics.<name> = ...``."""

    default_model = Unicode("", help="Model id or alias used when a cell gives no -m. Empty: "
                                     "the current free-plan model on Cloudflare, the embedded "
                                     "model offline.").tag(config=True)
    timeout = Float(60.0, help="Seconds to wait for the service to answer (and between "
                               "chunks of a stream).").tag(config=True)
    max_retries = Int(3, help="Retries on 429 (code 3040), 408, 5xx and connection errors, "
                              "before any text has arrived.").tag(config=True)
    updates_per_second = Float(20.0, help="Most display updates per second while an answer "
                                          "streams.").tag(config=True)
    display_mode = Enum(DISPLAY_MODES, "auto",
                        help="rich: one output updated in place; print: chunks printed as "
                             "they come (terminal IPython); final: one output when the answer "
                             "is complete (batch runs such as nbval). auto picks rich or print. "
                             "Default from CFAI_DISPLAY.").tag(config=True)
    @default("display_mode")
    def _display_from_env(self):
        mode = os.environ.get("CFAI_DISPLAY", "auto")
        return mode if mode in DISPLAY_MODES else "auto"

    local_idle_timeout = Float(900.0, help="Seconds the shared local backend stays up with "
                                           "no requests.").tag(config=True)
    value_budget = Int(0, help="Most characters one {name} may take in a prompt (0: half the "
                               "model's context); a DataFrame, a Series or an array is "
                               "described in 3,800 at most.").tag(config=True)

    cache_ttl = Int(0, help="Seconds AI Gateway keeps an answer in its cache (60 to 2592000; "
                            "0: the gateway's own setting). Only with a gateway; a cell's "
                            "--cache-ttl or --no-cache wins.").tag(config=True)
    log_payload = Bool(True, help="Whether AI Gateway's log keeps each prompt and answer. "
                                  "False sends cf-aig-collect-log-payload: false (tokens, cost "
                                  "and time are still logged).").tag(config=True)

    @validate("timeout", "max_retries", "updates_per_second", "local_idle_timeout",
              "value_budget")
    def _in_range(self, proposal):
        """A number out of range is refused when set, in one line with what is allowed."""
        name, value = proposal["trait"].name, proposal["value"]
        low, high, what = RANGES[name]
        if not (low <= value <= high) or value != value:
            raise TraitError(f"CfaiMagics.{name} = {value!r} is out of range: {what}")
        return value

    @validate("cache_ttl")
    def _ttl(self, proposal):
        value = proposal["value"]
        if value and not 60 <= value <= 30 * 86400:
            raise TraitError(f"CfaiMagics.cache_ttl = {value!r} is out of range: give 0 (the "
                             "gateway's own setting) or seconds from 60 to 2592000")
        return value

    @validate("default_model")
    def _model_text(self, proposal):
        value = proposal["value"].strip()
        if any(c.isspace() or ord(c) < 0x20 for c in value) or len(value) > 200:
            raise TraitError(f"CfaiMagics.default_model = {value[:60]!r} is not a model id: "
                             "give an id such as @cf/zai-org/glm-4.7-flash, or an alias")
        return value


RANGES = {   # (lowest, highest, what is allowed), for the one line that refuses a value
    "timeout": (0.1, 3600.0, "give seconds from 0.1 to 3600"),
    "max_retries": (0, 20, "give a whole number from 0 to 20"),
    "updates_per_second": (0.1, 120.0, "give from 0.1 to 120 updates a second"),
    "local_idle_timeout": (10.0, 7 * 86400.0, "give seconds from 10 to a week (604800)"),
    "value_budget": (0, 10_000_000, "give 0 (half the model's context) or characters up to "
                                    "10,000,000"),
}


class Secret:
    """A string that does not show itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def scrub(self, text: str) -> str:
        """``text`` with this secret, wherever it appears, masked (a secret of a few letters
        would mask them in every word: real tokens are 40 characters)."""
        if len(self._value) < 8:
            return text
        return text.replace(self._value, "********")

    def fingerprint(self) -> str:
        """A digest that tells two secrets apart without showing either."""
        return hashlib.sha256(self._value.encode()).hexdigest()[:16]

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self):
        raise TypeError("a Secret cannot be pickled")


@dataclass(frozen=True)
class Credentials:
    account_id: str
    token: Secret

    def __repr__(self) -> str:
        return "Credentials(account_id='…', token=Secret('********'))"


def as_secret(value) -> Secret | None:
    """A token given as a string, wrapped at once (so no frame keeps it in a plain local)."""
    if value is None or isinstance(value, Secret):
        return value
    return Secret(str(value).strip())


def credentials(account_id: str | None = None,
                api_token: str | Secret | None = None) -> Credentials:
    """Credentials from the arguments or the environment; a missing one says how to set it.
    (The environment is never an argument: a frame holding it would show the token.)"""
    api_token = as_secret(api_token)
    account_id = account_id or os.environ.get(ENV_ACCOUNT, "").strip()
    token = api_token if api_token else Secret(os.environ.get(ENV_TOKEN, "").strip())
    if not account_id:
        raise ConfigError("No Cloudflare account id",
                          hint=f"Set {ENV_ACCOUNT} (in a notebook, %cfai login asks for it)")
    if not token:
        raise ConfigError("No Cloudflare API token",
                          hint=f"Set {ENV_TOKEN} (in a notebook, %cfai login asks for it)")
    return Credentials(account_id, token)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _parse(url: str):
    """The URL as requests will read it (urllib3's parser), or None."""
    from urllib3.exceptions import LocationParseError
    from urllib3.util import parse_url
    try:
        return parse_url(url)
    except (LocationParseError, ValueError):
        return None


def origin(url: str) -> tuple:
    """(scheme, host, port) of a URL, as the request to it would go."""
    parts = _parse(url)
    if parts is None or not parts.host:
        return ("", "", None)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme or "")
    return (parts.scheme, parts.host.strip("[]").lower(), port)


def check_base_url(url: str) -> str:
    """The URL without a trailing slash, parsed once by the parser that sends the request and
    refused where another parser reads it differently: no user name or password, backslash,
    white space, control character, query or fragment; plain http only to a loopback host."""
    shown = repr(url)[:120]
    hint = "Give the API root, e.g. " + CLOUDFLARE_URL
    if not isinstance(url, str) or any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7f
                                       or c == "\\" for c in url):
        raise ConfigError(f"Base URL {shown} holds a space, a control character or a "
                          "backslash", hint=hint)
    parts = _parse(url)
    if parts is None or parts.scheme not in ("http", "https") or not parts.host:
        raise ConfigError(f"Base URL {shown} is not an http(s) URL", hint=hint)
    if parts.auth is not None or "@" in url:
        raise ConfigError(f"Base URL {shown} holds a user name or password ('@')",
                          hint="Give the token as a setting (CLOUDFLARE_API_TOKEN, "
                               "OPENAI_API_KEY), never in the URL")
    if parts.query is not None or parts.fragment is not None:
        raise ConfigError(f"Base URL {shown} holds a query or a fragment ('?', '#')", hint=hint)
    host = parts.host.strip("[]").lower()
    other = urlsplit(url)
    if (other.scheme, other.hostname, other.port) != (parts.scheme, host, parts.port):
        raise ConfigError(f"Base URL {shown} reads differently to different parsers",
                          hint=hint)
    if parts.scheme == "http" and not is_loopback(host):
        raise ConfigError(f"Refusing plain http to {host}: the token would travel "
                          "unencrypted", hint="Use https, or a loopback address for a local server")
    return url.rstrip("/")


def mask(value: object) -> str:
    """How settings show a secret: whether it is set, never any of it."""
    return "set (hidden)" if value else "not set"
