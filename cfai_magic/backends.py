"""Where requests go: a backend is a typed value, made once from the settings.

    Backend(kind, base_url, protocol, label, ...)
      cloudflare   Cloudflare's API (/ai/run, or /ai/v1 for the openai protocol): the
                   Cloudflare token; billed; 300 requests a minute
      gateway      through AI Gateway: Cloudflare's API with a cf-aig-gateway-id header (or,
                   with gateway_form="url", gateway.ai.cloudflare.com): the Cloudflare token;
                   billed
      custom       Cloudflare's protocol at a root the user set (CFAI_BASE_URL, base_url=):
                   the Cloudflare token, because the user sent it there on purpose; not billed
      engine       an OpenAI-compatible engine at a root the user set (vLLM, llama.cpp, Ollama):
                   OPENAI_API_KEY or the variable named by --key-env, never the Cloudflare token;
                   no key of its own means no Authorization header
      local        the embedded local backend: its own token only
      cassette     answers from a cassette: no network, no credential

Each carries its credential (sent only to its own origin, and only at the last moment, by a
requests auth object whose repr is masked), its label for footers, whether Cloudflare bills
its answers, its default pace for batches, and what to say when it refuses the credential.
Nothing here or elsewhere guesses a kind from a host name; the only comparison of hosts is
whether a URL the user gave is Cloudflare's own API (then the Cloudflare token belongs there).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

import requests

from . import config
from .config import Secret
from .errors import ConfigError

CLOUDFLARE_RATE = 300.0          # requests a minute for text generation
_LABEL = re.compile(r"[a-z][a-z0-9-]{0,23}")     # a name a server may give itself


class BearerAuth(requests.auth.AuthBase):
    """``Authorization: Bearer <token>``, added as the request leaves, and only when it goes to
    ``origin`` (so no header dict of ours ever holds the token)."""

    def __init__(self, token: Secret, origin: tuple):
        self._token, self._origin = token, origin

    def __call__(self, request):
        if config.origin(request.url) == self._origin:
            request.headers["Authorization"] = "Bearer " + self._token.reveal()
        return request

    def __repr__(self) -> str:
        return "BearerAuth('********')"

    def __eq__(self, other):
        return self is other

    __hash__ = object.__hash__


@dataclass(frozen=True, repr=False, eq=False)
class Backend:
    kind: str
    base_url: str
    protocol: str
    label: str
    account_id: str | None = None
    token: Secret | None = None
    key_name: str = ""              # where the token came from, for the hint on a 401
    gateway: str | None = None
    gateway_form: str = "header"    # header: cf-aig-gateway-id; url: the gateway's own URL
    billed: bool = False
    rate: float | None = None       # requests a minute a batch keeps to by default
    workers: int = 16               # threads a batch sends from by default

    def __repr__(self) -> str:
        key = f", key={self.key_name or 'given'}" if self.token else ""
        return f"Backend({self.kind!r}, {self.base_url!r}, protocol={self.protocol!r}{key})"

    @property
    def origin(self) -> tuple:
        return config.origin(self.base_url)

    def auth(self) -> BearerAuth | None:
        return BearerAuth(self.token, self.origin) if self.token else None

    @property
    def ours(self) -> bool:
        """It serves what the first version knew (the seed models): no live vetting."""
        return self.kind in ("local", "cassette")

    @property
    def queues(self) -> bool:
        """It has Cloudflare's asynchronous Batch API."""
        return self.kind in ("cloudflare", "gateway", "custom") and self.protocol == "workers-ai"

    def shown(self, declared: str | None = None) -> str:
        """The footer's label: ours, or for a server at a URL the user gave, the short name it
        gives itself (``fake``), else its address."""
        if self.kind in ("custom", "engine") and declared and _LABEL.fullmatch(declared):
            return declared
        return self.label

    def auth_hint(self) -> str:
        if self.kind == "engine":
            name = self.key_name or config.ENV_OPENAI_KEY
            return (f"The engine refused the key: check {name} (the key it was started with), "
                    "or choose another with %cfai backend URL --key-env NAME" if self.token else
                    f"The engine wants a key: set {config.ENV_OPENAI_KEY}, or "
                    "%cfai backend URL --key-env NAME")
        if self.kind == "local":
            return "The local backend refused its token: run cfai-local stop, then the cell again"
        return ("Check CLOUDFLARE_API_TOKEN (or run %cfai login); the token needs Workers AI "
                "permission")

    def key(self) -> tuple:
        """What identifies this backend for reusing a client (the token only by digest)."""
        digest = self.token.fingerprint() if self.token else ""
        return (self.kind, self.base_url, self.protocol, self.account_id, self.gateway,
                self.gateway_form, digest)

    @property
    def busy_option(self) -> bool:
        """It takes ``options.rejectIfBusy`` (Cloudflare's /ai/run and /ai/v1)."""
        return self.kind in ("cloudflare", "gateway", "custom")

    def per_minute(self, model) -> float | None:
        """Requests a minute a batch keeps to for ``model``: its own limit on Cloudflare
        (20 for frontier models), none elsewhere."""
        if self.rate is None:
            return None
        return min(self.rate, model.per_minute)


def _netloc(url: str) -> str:
    from urllib.parse import urlsplit
    return urlsplit(url).netloc


def cloudflare(account_id: str, token: Secret, protocol: str, base_url: str | None = None,
               gateway: str | None = None, key_name: str = config.ENV_TOKEN,
               gateway_form: str = "header") -> Backend:
    """Cloudflare's API (or a root the user set for it on purpose), through AI Gateway when
    ``gateway`` names one: by header by default, or at the gateway's URL (``/ai/run`` only)."""
    from .client import protocols
    from .client.protocols.paths import account_segment
    from .gateway import FORMS
    wire = protocols.get(protocol)
    if gateway is not None:
        account_segment(gateway, "gateway name")
        if gateway_form not in FORMS:
            raise ConfigError(f"The gateway form is header or url, not {gateway_form!r}")
        if gateway_form == "url" and wire.NAME != "workers-ai":
            raise ConfigError("The gateway's URL form serves /ai/run only",
                              hint="Use the header form (the default) with --protocol openai")
    by_url = gateway is not None and gateway_form == "url"
    if base_url is None:
        url = wire.root(config.GATEWAY_URL if by_url else config.CLOUDFLARE_URL, account_id)
        kind = "gateway" if gateway else "cloudflare"
    else:
        url = config.check_base_url(base_url)
        kind = "cloudflare" if config.origin(url) in config.CLOUDFLARE_ORIGINS else "custom"
        if kind == "cloudflare" and gateway:
            kind = "gateway"
    billed = kind in ("cloudflare", "gateway")
    return Backend(kind, url, wire.NAME, kind if billed else _netloc(url), account_id, token,
                   key_name, gateway, gateway_form, billed, CLOUDFLARE_RATE if billed else None)


def engine(base_url: str, token: Secret | None, key_name: str = config.ENV_OPENAI_KEY) -> Backend:
    url = config.check_base_url(base_url)
    return Backend("engine", url, "openai", _netloc(url), None, token or None, key_name)


def local(info: dict, protocol: str) -> Backend:
    from .client import protocols
    url = protocols.get(protocol).root(info["url"], "local")
    token = config.as_secret(info.get("token"))
    return Backend("local", config.check_base_url(url), protocol, "local", "local",
                   token or None, "the local backend's token", workers=2)


def cassette(protocol: str) -> Backend:
    from .cassette import REPLAY_URL
    return Backend("cassette", REPLAY_URL, protocol, "cassette", "cassette", workers=4)


def _env(name: str) -> str:
    """A setting from the environment, stripped (ids and keys are pasted). No function here
    takes the environment as an argument: a frame holding ``os.environ`` would show the token
    in a verbose traceback."""
    return (os.environ.get(name) or "").strip()


def _env_url() -> str | None:
    """CFAI_BASE_URL as written: a URL with stray white space is refused, not mended."""
    return os.environ.get(config.ENV_BASE_URL) or None


def engine_key(key_env: str | None = None) -> tuple[Secret | None, str]:
    """An engine's key: the variable named by --key-env, else OPENAI_API_KEY (or none)."""
    name = key_env or config.ENV_OPENAI_KEY
    value = _env(name)
    if key_env and not value:
        raise ConfigError(f"{name} is not set", hint=f"Set {name} to the engine's key, or "
                                                    "choose another with --key-env")
    return (Secret(value) if value else None), name


def from_args(account_id=None, api_token=None, base_url=None, gateway=None,
              protocol=None, gateway_form: str = "header") -> Backend:
    """The backend the client's arguments (and the environment) name; see the module doc."""
    from .client import protocols
    api_token = config.as_secret(api_token)
    wire = protocols.get(protocol or _env(config.ENV_PROTOCOL) or None)
    base_url = base_url or _env_url()
    if wire.ACCOUNT_IN_PATH or base_url is None or \
            config.origin(config.check_base_url(base_url)) in config.CLOUDFLARE_ORIGINS:
        creds = config.credentials(account_id, api_token)   # says what to set if missing
        return cloudflare(creds.account_id, creds.token, wire.NAME, base_url, gateway,
                          gateway_form=gateway_form)
    if gateway:
        raise ConfigError("AI Gateway is Cloudflare's: an engine at a URL of its own has none",
                          hint="Leave out gateway=, or use Cloudflare's API")
    if api_token:
        return engine(base_url, api_token, "the key given")
    return engine(base_url, *engine_key())


BACKENDS = ("auto", "cloudflare", "local")


class Chooser:
    """What the user chose: the backend (``auto``, ``cloudflare``, ``local`` or an API root
    URL), the protocol, an engine's key variable (``--key-env``), and %cfai login's
    credentials. :meth:`backend` makes the Backend they mean; nothing is remembered but the
    choice."""

    def __init__(self):
        self.setting = _env("CFAI_BACKEND") or "auto"
        self.protocol = _env(config.ENV_PROTOCOL) or "workers-ai"
        self.key_env: str | None = None
        self.gateway: str | None = _env("CFAI_GATEWAY") or None
        self.gateway_form = "header"
        self._account: str | None = None
        self._token: Secret | None = None

    def __repr__(self) -> str:
        return f"Chooser({self.setting!r}, protocol={self.protocol!r})"

    def login(self, account_id: str | None, token) -> None:
        token = config.as_secret(token)
        if account_id:
            self._account = account_id.strip()
        if token:
            self._token = token

    def choose(self, setting: str, protocol: str | None = None,
               key_env: str | None = None, gateway: str | None = None,
               gateway_form: str | None = None) -> None:
        """``gateway``: a name, or "" for none; None leaves it as it is."""
        from .client import protocols
        from .client.protocols.paths import account_segment
        if setting not in BACKENDS:
            config.check_base_url(setting)
        if gateway:
            account_segment(gateway, "gateway name")
            if setting == "local":
                raise ConfigError("AI Gateway is Cloudflare's: the local backend has none",
                                  hint="%cfai backend cloudflare --gateway NAME")
        if protocol is not None:
            protocols.get(protocol)               # an unknown one says which there are
        if key_env is not None and not key_env.isidentifier():
            raise ConfigError(f"--key-env needs a variable name, not {key_env!r}")
        if key_env is not None or setting != self.setting:
            self.key_env = key_env            # a new backend starts from OPENAI_API_KEY
        self.setting = setting
        self.protocol = protocol or self.protocol
        if gateway is not None:
            self.gateway = gateway or None
        if gateway_form is not None:
            self.gateway_form = gateway_form

    @property
    def wire(self):
        from .client import protocols
        return protocols.get(self.protocol)

    def url(self) -> str | None:
        """The API root the user set: a URL backend, or CFAI_BASE_URL for ``cloudflare``/auto."""
        if self.setting not in BACKENDS:
            return self.setting
        return _env_url()

    def has_credentials(self) -> bool:
        """Whether ``auto`` goes to Cloudflare, or (for a protocol without the account in its
        path) to the engine at the URL the user set."""
        if not self.wire.ACCOUNT_IN_PATH and self.url():
            return True
        return bool((self._account or _env(config.ENV_ACCOUNT))
                    and (self._token or _env(config.ENV_TOKEN)))

    def resolved(self) -> str:
        """``cloudflare``, ``local`` or the URL: what ``auto`` means now."""
        if self.setting == "auto":
            return "cloudflare" if self.has_credentials() else "local"
        return self.setting

    def backend(self, start_local) -> Backend:
        """The Backend of the current choice; ``start_local()`` gives the local backend's
        record (starting it if need be)."""
        setting = self.resolved()
        if setting == "local":
            return local(start_local(), self.protocol)
        url = self.url()
        wire = self.wire
        if wire.ACCOUNT_IN_PATH or url is None or \
                config.origin(config.check_base_url(url)) in config.CLOUDFLARE_ORIGINS:
            creds = config.credentials(self._account, self._token)
            return cloudflare(creds.account_id, creds.token, wire.NAME, url, self.gateway,
                              gateway_form=self.gateway_form)
        return engine(url, *engine_key(self.key_env))

    def masked(self) -> dict:
        """Which credentials are set, for %cfai config (never any of them)."""
        key = self.key_env or config.ENV_OPENAI_KEY
        return {"account_id": config.mask(self._account or _env(config.ENV_ACCOUNT)),
                "api_token": config.mask(self._token or _env(config.ENV_TOKEN)),
                "engine_key": f"{key}: {config.mask(_env(key))}"}
