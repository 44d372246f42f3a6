"""Wire protocols: each turns a request into a URL and body, and an HTTP answer into events.

A protocol module has:
- ``NAME``; ``ACCOUNT_IN_PATH`` (the account id is part of every URL, so an account id and a
  token are required) and ``ANY_MODEL`` (the engine names its models: any id is passed on);
- ``root(api_root, account_id)``: its root under a Cloudflare-style v4 API root;
- ``url(base_url, account_id, model, gateway)`` and ``body(model, request, stream, dialect)``
  (``dialect``: how the model answers /ai/run, from the catalog: ``chat`` or ``legacy``);
- ``models_url(base_url, account_id, page)``, ``model_names(json)`` and ``more_pages(json)``
  for the model list;
- a ``Decoder`` class: ``whole(obj)`` for a JSON answer, ``chunk(obj)`` for each stream event,
  ``end()`` when the stream closes, each returning events.
Adding a protocol is one module and one line here.
"""
from __future__ import annotations

from ...errors import ConfigError
from . import openai, workers_ai

PROTOCOLS = {m.NAME: m for m in (workers_ai, openai)}


def get(name: str | None):
    name = name or workers_ai.NAME
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise ConfigError(f"Unknown protocol {name!r}",
                          hint="Use " + " or ".join(PROTOCOLS)) from None
