"""Answer: one model answer, streamed or whole; the one object that owns its state.

Like simonw/llm's ``Response``: it drives the event source, keeps the text, reasoning, tool
calls, usage, timing and status, and everything else (renderer, panel, chat state, cassette)
reads it. Iterate it for text pieces, or call :meth:`events` for every typed event.
"""
from __future__ import annotations

import threading
import time
from typing import Any
from itertools import chain

from ..errors import CfaiError, StreamError
from .events import Done, Reasoning, Text, ToolCall, Usage

class Answer:
    """``status`` is pending, streaming, done, interrupted or error (with ``error``).

    Opens the request on first use. A failure before the first visible event is retried (see
    Transport); after it, a :class:`StreamError` carries ``partial``. ``close()`` (or leaving a
    ``with`` block, or stopping early) closes the connection; ``abort()`` may be called from
    another thread to end a read that is blocked.
    """

    def __init__(self, model: str, request: dict, *, stream: bool = True, opener=None,
                 cancel: threading.Event | None = None):
        self.model = model
        self.request = request                     # prompt or messages, and the parameters
        self.stream = stream
        self.parts: list[str] = []
        self._joined: tuple[list[str], int, str] = (self.parts, 0, "")   # text, joined once
        self.size = 0                               # characters of text so far
        self.reasoning_parts: list[str] = []
        self.tool_calls: list[ToolCall] = []
        self.usage: dict | None = None
        self.finish_reason: str | None = None
        self.backend = ""                           # the label of who answered
        self.billed = False                         # Cloudflare bills this answer
        self.served_by: str | None = None
        self.replayed = False
        self.status = "pending"
        self.error: CfaiError | None = None
        self.started: float | None = None           # time.monotonic() of the request
        self.first: float | None = None             # of the first text or reasoning
        self.ended: float | None = None
        self.cancel = cancel or threading.Event()
        self.headers: dict = {}                     # sent with the request, never recorded
        self.options: dict = {}                     # the body's "options" (rejectIfBusy): the
                                                    # same: they change how, not what, it answers
        self.gateway = None                         # gateway.Options of this request
        self.cache: str | None = None               # HIT or MISS: the gateway's cache said
        self.notes: list[str] = []                  # said under the answer (not an error)
        self.steps: list = []                       # a tool loop's calls and results
        self.started_sink = False                   # a sink has shown this answer
        self._opener = opener                       # (answer) -> (first events, the rest)
        self._response = None
        self._iter = None

    def __repr__(self) -> str:
        return (f"Answer({self.model!r}, status={self.status!r}, {len(self.text)} chars"
                + (f", {len(self.reasoning)} chars of reasoning" if self.reasoning_parts else "")
                + ")")

    def __str__(self) -> str:
        return self.text

    @property
    def text(self) -> str:
        """The text so far, joined once: later calls join only the parts that came since (a
        cell reads it four or five times; a 10 MB answer took 74 ms a join)."""
        parts, count, text = self._joined
        if parts is not self.parts or count > len(self.parts):      # the parts were replaced
            parts, count, text = self.parts, 0, ""
        if count < len(parts):
            text += "".join(parts[count:])
            self._joined = (parts, len(parts), text)
        return text

    def tail(self, limit: int) -> str:
        """The last ``limit`` characters or so of the text, without joining all of it."""
        taken, size = [], 0
        for part in reversed(self.parts):
            taken.append(part)
            size += len(part)
            if size >= limit:
                break
        return "".join(reversed(taken))[-limit:]

    @property
    def reasoning(self) -> str:
        return "".join(self.reasoning_parts)

    @property
    def params(self) -> dict:
        return {k: v for k, v in self.request.items() if k not in ("prompt", "messages")}

    @property
    def done(self) -> bool:
        return self.status == "done"

    @property
    def elapsed(self) -> float:
        if self.started is None:
            return 0.0
        return (self.ended or time.monotonic()) - self.started

    def metadata(self, chat: str | None = None) -> dict:
        """What a saved notebook keeps of the answer (the ``cfai`` output metadata)."""
        meta: dict[str, Any] = {"model": self.model, "params": self.params, "usage": self.usage,
                "backend": self.backend, "served_by": self.served_by,
                "replayed": self.replayed, "status": self.status, "chat": chat}
        if self.reasoning_parts:
            meta["reasoning"] = self.reasoning
        if self.tool_calls:
            meta["tool_calls"] = [c._asdict() for c in self.tool_calls]
        if self.steps:
            meta["steps"] = [s.as_dict() for s in self.steps]
        if self.finish_reason:
            meta["finish_reason"] = self.finish_reason
        if self.cache:
            meta["cache"] = self.cache.lower()
        return meta

    @property
    def cached(self) -> bool:
        """The gateway answered from its cache: the model did not run, nothing was billed."""
        return self.cache == "HIT"

    # driving the source --------------------------------------------------------------------
    def take(self, event) -> None:
        """Fold one event into the answer."""
        kind = type(event)
        if kind is Text:
            self.parts.append(event.text)
            self.size += len(event.text)
        elif kind is Reasoning:
            self.reasoning_parts.append(event.text)
        elif kind is Usage:
            self.usage = event.usage
        elif kind is ToolCall:
            self.tool_calls.append(event)
        elif kind is Done:
            self.finish_reason = event.finish_reason or self.finish_reason

    def events(self):
        """Every event as it arrives (the same iterator on every call)."""
        if self._iter is None:
            self._iter = self._run()
        return self._iter

    def __iter__(self):
        return (e.text for e in self.events() if type(e) is Text)

    def __next__(self) -> str:
        for piece in self:
            return piece
        raise StopIteration

    def consume(self) -> Answer:
        """Read to the end (raises what the stream raises)."""
        for _ in self.events():
            pass
        return self

    def _run(self):
        cancelled = self.cancel.is_set
        take = self.take
        self.started = time.monotonic()
        self.status = "streaming"
        try:
            if cancelled():
                self.status = "interrupted"
                return
            first, rest = self._opener(self)
            parts = self.parts
            for event in chain(first, rest):
                if cancelled():
                    self.status = "interrupted"
                    return
                if type(event) is Text:             # most events: taken here, one call less
                    if self.first is None:
                        self.first = time.monotonic()
                    parts.append(event.text)
                    self.size += len(event.text)
                else:
                    if self.first is None and type(event) is Reasoning:
                        self.first = time.monotonic()
                    take(event)
                yield event
            if cancelled():
                self.status = "interrupted"
                return
            self.status = "done"
        except StreamError as err:
            if cancelled():
                self.status = "interrupted"
                return
            err.partial = self.text
            self._fail(err)
            raise err from None
        except CfaiError as err:
            self._fail(err)
            raise err from None
        finally:
            self.ended = time.monotonic()
            if self.status == "streaming":        # closed early by the reader
                self.status = "interrupted"
            self.close()

    def _fail(self, err: CfaiError) -> None:
        self.status, self.error = "error", err

    def bind(self, client) -> None:
        """Let ``client`` open this answer (for an Answer made before its client)."""
        self._opener = client._open
        self.backend = client.backend.label

    def opened(self, response, backend: str, served_by: str | None, replayed: bool,
               billed: bool = False) -> None:
        """The opener says where the answer comes from (the response may be None)."""
        self._response = response
        self.backend, self.served_by, self.replayed = backend, served_by, replayed
        self.billed = billed and not replayed

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        """Close the connection (the server sees it closed). Safe to call twice."""
        if self._response is not None:
            self._response.close()

    def abort(self) -> None:
        """From another thread: stop now, even if a read is blocked waiting for data."""
        self.cancel.set()
        response = self._response
        if response is not None:
            try:
                response.raw.shutdown()
            except (AttributeError, ValueError, RuntimeError, OSError):
                pass
            response.close()
