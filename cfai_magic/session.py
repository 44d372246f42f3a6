"""The state of one kernel (one notebook): settings, chats, catalog, ledger, cassette, and the
client of the backend in use (which backend: backends.Chooser; what it is: backends.Backend).

The magic and the panel share the Session of their shell, so a model chosen in one is the model
of the other, and a turn made in one continues in the other.
"""
from __future__ import annotations

import os
import threading

from . import backends, config
from .backends import BACKENDS, Backend, Chooser  # noqa: F401 (BACKENDS: the magic's choices)
from .catalog import Catalog
from .config import Settings
from .errors import CfaiError, InputError, ModelRetired, PlanRequired, UnknownModel
from .models import DEFAULT_CLOUDFLARE, LOCAL_MODEL
from .state import ChatStore
from .usage import Ledger


class Session:
    def __init__(self, settings: Settings | None = None):
        self.settings = settings if settings is not None else Settings()
        self.store = ChatStore()
        self.catalog = Catalog()
        self.chooser = Chooser()
        self._cassette = None                 # %cfai record / replay, or CFAI_CASSETTE
        self._cassette_error = None           # a CFAI_CASSETTE that cannot be used
        if os.environ.get("CFAI_CASSETTE"):   # (imported only then: requests loads slowly)
            from .cassette import Cassette
            try:
                self.cassette = Cassette.from_env()
            except CfaiError as err:          # every cell says so; %load_ext still works
                err.hint = (err.hint + "; " if err.hint else "") + \
                    "fix CFAI_CASSETTE / CFAI_CASSETTE_MODE, or %cfai cassette off"
                self._cassette_error = err
        self.pending_code: str | None = None  # picked with a panel's "Insert as cell"
        self._client = None
        self._client_key = None
        self._lock = threading.RLock()
        self._said: set[str] = set()
        self._lab = None
        self._vetted = None                   # the client key whose live list we have
        self._listing: threading.Thread | None = None     # fetching that list
        self.ledger = Ledger()
        self._answers = None

    def __repr__(self) -> str:
        return (f"Session(backend={self.backend!r}, protocol={self.protocol!r}, "
                f"model={self.model!r}, {self.store!r})")

    @property
    def backend(self) -> str:
        """The backend chosen: auto, cloudflare, local or an API root URL."""
        return self.chooser.setting

    @property
    def protocol(self) -> str:
        return self.chooser.protocol

    @property
    def answers(self):
        """The answers batches got in this kernel, by request (batch/store.py)."""
        if self._answers is None:
            from .batch.store import Answers
            self._answers = Answers()
        return self._answers

    # the notebook's default model (a trait of the settings, so %config and the panel agree)
    @property
    def model(self) -> str:
        return self.settings.default_model or self.auto_model()

    @model.setter
    def model(self, name: str) -> None:
        self.settings.default_model = self.resolve(name).id

    def auto_model(self) -> str:
        """The default when none is set: the embedded model offline, Cloudflare's current
        free-plan model on Cloudflare, none for an engine that names its own models. A cassette
        that replays decides by where it was recorded, so a notebook recorded on Cloudflare
        replays the same cells offline."""
        recorded = self.cassette.recorded_backend() if self.cassette is not None else None
        if recorded and self.cassette.mode != "record":
            backend = "local" if recorded == "local" else "cloudflare"
        else:
            backend = self.chooser.resolved()
        if backend == "local":
            return LOCAL_MODEL
        own_engine = backend != "cloudflare" or os.environ.get(config.ENV_BASE_URL)
        return "" if own_engine and self.wire.ANY_MODEL else DEFAULT_CLOUDFLARE

    @property
    def lab(self):
        """ipylab's bridge to JupyterLab's commands (None without ipylab)."""
        if self._lab is None:
            try:
                from ipylab import JupyterFrontEnd
            except ImportError:
                return None
            self._lab = JupyterFrontEnd()
        return self._lab

    @property
    def cassette(self):
        return self._cassette

    @cassette.setter
    def cassette(self, cassette) -> None:
        """In auto mode a miss goes to the real backend, resolved only when it happens."""
        self._cassette_error = None
        if cassette is not None and cassette.mode == "auto":
            cassette.forward = self._real_target
        self._cassette = cassette

    def login(self, account_id: str | None, token) -> None:
        with self._lock:
            self.chooser.login(account_id, token)
            self._drop_client()

    @property
    def wire(self):
        """The protocol module in use."""
        return self.chooser.wire

    def has_credentials(self) -> bool:
        return self.chooser.has_credentials()

    def set_backend(self, backend: str, protocol: str | None = None,
                    key_env: str | None = None, gateway: str | None = None,
                    gateway_form: str | None = None) -> None:
        with self._lock:
            self.chooser.choose(backend, protocol, key_env, gateway, gateway_form)
            self._drop_client()

    def resolve(self, name: str):
        """The model for an id or alias; any id when the engine names its own models."""
        if not (name or "").strip():
            raise InputError("No model chosen, and this engine names its own",
                             hint="Give one with -m NAME or %cfai model NAME "
                                  "(%cfai models --refresh lists the engine's)")
        try:
            return self.catalog.resolve(name, open=self.wire.ANY_MODEL)
        except UnknownModel as err:
            if name != self.settings.default_model:
                raise
            raise UnknownModel(f"{err.message} (from CfaiMagics.default_model, used when a cell "
                               "gives no -m)",
                               hint=f"{err.hint}; set another with %cfai model NAME") from None

    def vet(self, model, client, wait: bool = False):
        """Just before sending: the backend's live model list (fetched once per backend,
        beside the first request rather than before it: limits are checked with the built-in
        facts until it comes), its facts for ``model``, and a retired model refused with
        nothing sent (that one waits for the list: the backend may still serve it)."""
        if client.backend.ours:                 # they serve what the first version knew
            return model
        backend = client.backend.key()
        with self._lock:
            if self._vetted != backend:
                self._vetted = backend
                self._listing = threading.Thread(target=self._fetch_list, args=(client,),
                                                 name="cfai-model-list", daemon=True)
                self._listing.start()
        # an engine of the user's own waits for its list: llama.cpp's server stops an answer
        # it is streaming when another request comes in (interrupt_requests, on by default)
        if wait or client.backend.kind == "engine":
            self.settle()
        current, gone = self._standing(model)
        if gone:
            self.settle()
            current, gone = self._standing(model)
        if gone:
            raise ModelRetired(f"{current.id} was retired on {current.retires}; nothing was sent",
                               hint=self._instead(current) + ", or %cfai backend local to run "
                                    "it on the embedded model")
        return current

    def _standing(self, model):
        """``model`` as the catalog knows it now, and whether it is retired and not served."""
        current = self.catalog.get(model.id) or model
        return current, current.retired() and current.id not in self.catalog.served

    def _fetch_list(self, client) -> None:
        try:
            self.catalog.refresh(client)
            self.ledger.reprice(self.catalog.get)
        except Exception:        # a bug there must not print a traceback from a thread: the
            pass                 # built-in table stays, as when the service cannot be reached

    def settle(self, timeout: float | None = None) -> None:
        """Wait for the live model list being fetched, if one is (at most the timeout)."""
        listing = self._listing
        if listing is not None and listing is not threading.current_thread():
            listing.join(self.settings.timeout if timeout is None else timeout)

    def close(self) -> None:
        """When the extension is unloaded: let the model list finish, close the connections."""
        self.settle(5.0)
        with self._lock:
            self._drop_client()

    def explain(self, err: CfaiError, model) -> CfaiError:
        """Say what to do instead when the service refuses a model."""
        current = self.catalog.get(model.id) or model
        if isinstance(err, ModelRetired):
            err.hint = self._instead(current)
        elif isinstance(err, PlanRequired):
            err.hint = (f"{current.id} needs the Workers Paid plan or AI Gateway credits: "
                        "upgrade the account, route through a gateway billed with credits "
                        "(%cfai backend cloudflare --gateway NAME), or use a free-plan model "
                        f"({self._instead(current).lower()})")
        return err

    @staticmethod
    def _instead(model) -> str:
        return f"Use -m {model.replacement or DEFAULT_CLOUDFLARE} instead"

    def gateway_options(self, chat: str | None, via: str, *, cache_ttl: int | None = None,
                        no_cache: bool = False, cache_key: str | None = None):
        """What a request asks of AI Gateway: the cell's cache flags (else the settings'), the
        log's payload setting, and metadata naming the notebook (sent only through a
        gateway)."""
        from .gateway import Options, metadata
        s = self.settings
        asked = bool(cache_ttl or no_cache or cache_key)
        return Options(cache_ttl=cache_ttl or s.cache_ttl or None,
                       no_cache=no_cache, cache_key=cache_key, log_payload=s.log_payload,
                       metadata=metadata(self.store.notebook, chat, via), asked=asked).check()

    def once(self, key: str) -> bool:
        """True the first time a one-off notice is asked for."""
        if key in self._said:
            return False
        self._said.add(key)
        return True

    def target(self, notify=None) -> Backend:
        """The backend in use: the cassette's when it replays, else the one chosen."""
        if self._cassette_error is not None:
            raise self._cassette_error
        if self.cassette is not None and self.cassette.mode in ("replay", "auto"):
            return backends.cassette(self.protocol)
        return self._real_target(notify)

    def _real_target(self, notify=None) -> Backend:
        def start_local():
            from .local.runtime import ensure_backend
            return ensure_backend(self.settings.local_idle_timeout, notify)
        return self.chooser.backend(start_local)

    def client(self, notify=None):
        """A WorkersAI for the current backend and settings (reused while they hold)."""
        from .client import WorkersAI
        backend = self.target(notify)
        s = self.settings
        key = (backend.key(), s.timeout, s.max_retries, id(self.cassette))
        with self._lock:
            if self._client is None or self._client_key != key:
                self._drop_client()
                self._client = WorkersAI(backend=backend, timeout=s.timeout,
                                         max_retries=s.max_retries, catalog=self.catalog,
                                         cassette=self.cassette)
                self._client_key = key
            return self._client

    def _drop_client(self) -> None:
        """Forget the client, closing its idle connections (an answer still streaming keeps
        its own until it ends)."""
        if self._client is not None:
            self._client.close()
        self._client = None

    def describe(self) -> dict:
        """The settings, for %cfai config (secrets only as set / not set)."""
        s = self.settings
        return {
            "backend": self.backend, "protocol": self.protocol,
            "base_url": self.chooser.url() or config.CLOUDFLARE_URL,
            **self.chooser.masked(),
            "default_model": s.default_model or f"(auto) {self.auto_model() or '-'}",
            "timeout": s.timeout,
            "max_retries": s.max_retries, "updates_per_second": s.updates_per_second,
            "notebook": self.store.notebook or "(unknown)",
            "cassette": repr(self.cassette) if self.cassette else "off",
            "gateway": (f"{self.chooser.gateway} ({self.chooser.gateway_form} form)"
                        if self.chooser.gateway else "none"),
            "cache_ttl": s.cache_ttl or "off",
            "log_payload": s.log_payload,
        }


_lock = threading.Lock()


def user_namespace() -> dict:
    """The running notebook's variables ({} outside IPython)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return {}
    shell = get_ipython()
    return shell.user_ns if shell is not None else {}


def current(shell=None) -> Session:
    """The Session of the running IPython (loading the extension if needed), else a module one."""
    if shell is None:
        try:
            from IPython import get_ipython
            shell = get_ipython()
        except ImportError:
            shell = None
    if shell is not None:
        magics = shell.magics_manager.registry.get("CfaiMagics")
        if magics is None:
            shell.extension_manager.load_extension("cfai_magic")
            magics = shell.magics_manager.registry["CfaiMagics"]
        return magics.session
    global _standalone
    with _lock:
        if _standalone is None:
            _standalone = Session()
        return _standalone


_standalone: Session | None = None
