"""Settings (traitlets), credentials and base URLs.

The API token is deliberately not a trait: ``%config CfaiMagics`` prints every trait's value.
It lives in a :class:`Secret`, whose repr and str never show it.
"""
from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from urllib.parse import urlsplit

from traitlets import Enum, Float, Int, Unicode, default
from traitlets.config import Configurable

from .errors import ConfigError

CLOUDFLARE_URL = "https://api.cloudflare.com/client/v4"
GATEWAY_URL = "https://gateway.ai.cloudflare.com/v1"
ENV_ACCOUNT = "CLOUDFLARE_ACCOUNT_ID"
ENV_TOKEN = "CLOUDFLARE_API_TOKEN"
ENV_BASE_URL = "CFAI_BASE_URL"
ENV_PROTOCOL = "CFAI_PROTOCOL"
ENV_OPENAI_KEY = "OPENAI_API_KEY"
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


class Secret:
    """A string that does not show itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

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


def credentials(account_id: str | None = None, api_token: str | Secret | None = None,
                env=os.environ) -> Credentials:
    """Credentials from the arguments or the environment; a missing one says how to set it."""
    account_id = account_id or env.get(ENV_ACCOUNT, "").strip()
    if isinstance(api_token, Secret):
        token = api_token
    else:
        token = Secret((api_token or env.get(ENV_TOKEN, "")).strip())
    if not account_id:
        raise ConfigError("No Cloudflare account id",
                          hint=f"Set {ENV_ACCOUNT} (in a notebook, %cfai login asks for it)")
    if not token:
        raise ConfigError("No Cloudflare API token",
                          hint=f"Set {ENV_TOKEN} (in a notebook, %cfai login asks for it)")
    return Credentials(account_id, token)


def engine_credentials(account_id: str | None = None, api_token: str | Secret | None = None,
                       env=os.environ) -> tuple[str | None, Secret]:
    """(account id or None, token) for an engine at a base URL of its own (the OpenAI-compatible
    protocol): the token from the argument, CLOUDFLARE_API_TOKEN or OPENAI_API_KEY, and
    possibly empty (a local engine that wants none)."""
    if isinstance(api_token, Secret):
        token = api_token
    else:
        token = Secret((api_token or env.get(ENV_TOKEN) or env.get(ENV_OPENAI_KEY) or "").strip())
    return (account_id or env.get(ENV_ACCOUNT, "").strip() or None), token


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_base_url(url: str) -> str:
    """The URL without a trailing slash; plain http only to a loopback host."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"Base URL {url!r} is not an http(s) URL",
                          hint="Give the API root, e.g. " + CLOUDFLARE_URL)
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ConfigError(f"Refusing plain http to {parts.hostname}: the token would travel "
                          "unencrypted", hint="Use https, or a loopback address for a local server")
    return url.rstrip("/")


def mask(value: str | None) -> str:
    """How settings show a secret: whether it is set, never any of it."""
    return "set (hidden)" if value else "not set"
