"""Wire protocols: each turns a request into a URL and body, and an HTTP answer into events.

A protocol module has ``NAME``, ``url(base_url, account_id, model, gateway)``,
``body(model, request, stream)`` and a ``Decoder`` class (``whole(obj)`` for a JSON answer,
``chunk(obj)`` for each stream event, ``end()`` when the stream closes). Adding a protocol is one
module and one line here.
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
