"""AI Gateway: the headers a request through a gateway carries, and what its answer says.

A gateway is named on the backend (``%cfai backend cloudflare --gateway NAME``). A request then
goes to Cloudflare's own API with ``cf-aig-gateway-id: NAME`` (the unified REST API, changelog
``ai-gateway/2026-05-21-rest-api``), or with ``--gateway-url`` to the older
``gateway.ai.cloudflare.com/v1/{account}/{gateway}/workers-ai/{model}``. Per request it may
carry the cache's settings (``features/caching.mdx``), ask the log to keep no payload, and tag
the request with metadata (``observability/custom-metadata``: five entries at most, each a
string, number or boolean). Only a backend with a gateway sends any of these.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass

from .errors import InputError

FORMS = ("header", "url")
MIN_TTL, MAX_TTL = 60, 30 * 86400           # the cache keeps an answer 60 s to one month
MAX_METADATA = 5                            # entries the gateway keeps
_KEY = re.compile(r"[\x21-\x7e]{1,256}")    # a cache key: printable ASCII, no space


@dataclass(frozen=True)
class Options:
    """What one request asks of the gateway. ``asked``: the user asked for the cache on this
    request (a flag or an argument), so a backend without a gateway is an error, not ignored."""
    cache_ttl: int | None = None
    no_cache: bool = False
    cache_key: str | None = None
    log_payload: bool = True
    metadata: dict | None = None
    asked: bool = False

    def check(self) -> Options:
        """Refuse what the gateway would not take, before anything is sent."""
        if self.cache_ttl is not None and not MIN_TTL <= self.cache_ttl <= MAX_TTL:
            raise InputError(f"--cache-ttl {self.cache_ttl} is out of range",
                             hint=f"AI Gateway caches for {MIN_TTL} s up to a month "
                                  f"({MAX_TTL:,} s)")
        if self.cache_key is not None and not _KEY.fullmatch(self.cache_key):
            raise InputError("--cache-key takes up to 256 printable characters, no spaces")
        return self


def headers(backend, options: Options | None) -> dict:
    """The gateway's request headers for ``backend`` (none without a gateway)."""
    options = options or Options()
    if backend.gateway is None:
        if options.asked and (options.cache_ttl or options.no_cache or options.cache_key):
            raise InputError("The answer cache is AI Gateway's, and this backend has no "
                             "gateway; nothing was sent",
                             hint="%cfai backend cloudflare --gateway NAME, or leave out "
                                  "--cache-ttl, --no-cache and --cache-key")
        return {}
    out = {"cf-aig-gateway-id": backend.gateway} if backend.gateway_form == "header" else {}
    if options.no_cache:
        out["cf-aig-skip-cache"] = "true"
    elif options.cache_ttl:
        out["cf-aig-cache-ttl"] = str(int(options.cache_ttl))
    if options.cache_key:
        out["cf-aig-cache-key"] = options.cache_key
    if not options.log_payload:
        out["cf-aig-collect-log-payload"] = "false"
    if options.metadata:
        kept = dict(list(options.metadata.items())[:MAX_METADATA])
        out["cf-aig-metadata"] = json.dumps(kept, ensure_ascii=True, separators=(",", ":"))
    return out


def metadata(notebook: str | None, chat: str | None, via: str) -> dict:
    """What a notebook's request says of itself: the client, the notebook's file name (not
    its folder), the chat and the surface (cell, panel, batch). Never the token or the text."""
    from . import __version__
    name = os.path.basename(notebook or "") or "(unknown)"
    return {"client": f"cfai_magic {__version__}", "notebook": name[:100],
            "chat": (chat or "(once)")[:100], "via": via}


def cache_status(response_headers) -> str | None:
    """``HIT`` or ``MISS`` when the gateway's cache answered (or was asked), else None."""
    value = (response_headers.get("cf-aig-cache-status") or "").strip().upper() \
        if response_headers else ""
    return value if value in ("HIT", "MISS") else None
