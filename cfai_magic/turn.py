"""One exchange with a model, shared by the magic and the panel.

``prepare`` turns a request into a plan (what is sent, which notices to show) without sending;
``execute`` streams the answer into a sink (a StreamRenderer, or the panel's transcript) and
records the turn in the conversation only when the answer is complete.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from .catalog import Model
from .errors import CfaiError
from .parsing import Parsed
from .state import Conversation, Plan


@dataclass
class Ask:
    model: Model
    parsed: Parsed
    params: dict = field(default_factory=dict)    # max_tokens, temperature, top_p, ...
    chat: str = "default"
    once: bool = False                            # no history; a text cell goes as prompt
    new: bool = False                             # start the conversation afresh
    system: str | None = None
    cell_id: str | None = None
    stream: bool = True


@dataclass
class Prepared:
    ask: Ask
    conversation: Conversation | None
    plan: Plan | None
    request: dict                                 # prompt= or messages=, plus params

    @property
    def notices(self) -> list[str]:
        return self.plan.notices if self.plan else []


@dataclass
class Outcome:
    status: str                                   # done | interrupted | error
    text: str = ""
    usage: dict | None = None
    error: CfaiError | None = None
    backend: str = ""
    served_by: str | None = None
    replayed: bool = False
    elapsed: float = 0.0
    metadata: dict = field(default_factory=dict)

    def take(self, answer) -> None:
        """What a Stream or a Result knows about the answer."""
        self.text, self.usage = answer.text, answer.usage
        self.backend = answer.backend or self.backend
        self.served_by, self.replayed = answer.served_by, answer.replayed


def prepare(session, ask: Ask) -> Prepared:
    """Plan the turn and check it against the model's limits; sends nothing."""
    prepared = _plan(session, ask)
    request = prepared.request
    session.catalog.check(ask.model, max_tokens=request.get("max_tokens"),
                          messages=request.get("messages"), prompt=request.get("prompt"))
    return prepared


def _plan(session, ask: Ask) -> Prepared:
    params = {k: v for k, v in ask.params.items() if v is not None}
    new_messages = ask.parsed.messages or [{"role": "user", "content": ask.parsed.text}]
    if ask.once:
        if not ask.parsed.is_messages and not ask.system:
            return Prepared(ask, None, None, {"prompt": ask.parsed.text, **params})
        head = [{"role": "system", "content": ask.system}] if ask.system else []
        return Prepared(ask, None, None, {"messages": head + new_messages, **params})
    conversation = session.store.get(ask.chat)
    plan = conversation.plan(new_messages, cell_id=ask.cell_id, model=ask.model,
                             max_tokens=params.get("max_tokens"), system=ask.system,
                             fresh=ask.new)
    return Prepared(ask, conversation, plan, {"messages": plan.messages, **params})


def execute(session, prepared: Prepared, sink, cancel: threading.Event | None = None,
            on_stream=None) -> Outcome:
    """Stream the answer into ``sink``; never raises a CfaiError or KeyboardInterrupt, but
    returns them in the Outcome (after the sink has shown the partial answer)."""
    ask = prepared.ask
    cancel = cancel or threading.Event()
    start = time.monotonic()
    outcome = Outcome("error")
    stream = None
    started = False

    def begin() -> None:
        nonlocal started
        if not started:
            sink.start()
            started = True

    def notify(text: str) -> None:          # e.g. the local model is starting
        begin()
        sink.waiting(text)

    try:
        client = session.client(notify)
        outcome.backend = client.backend
        begin()
        if ask.stream:
            stream = client.stream(ask.model.id, cancel=cancel, **prepared.request)
            if on_stream:
                on_stream(stream)
            feed = sink.feed
            for piece in stream:
                feed(piece)
            outcome.take(stream)
            outcome.status = "interrupted" if cancel.is_set() and not stream.done else "done"
        else:
            result = client.run(ask.model.id, **prepared.request)
            sink.feed(result.text)
            outcome.take(result)
            outcome.status = "done"
    except KeyboardInterrupt:
        if stream is not None:
            stream.close()
            outcome.take(stream)
        outcome.status = "interrupted"
    except CfaiError as err:
        outcome.error = err
        outcome.text = getattr(err, "partial", "") or (stream.text if stream else "")
    outcome.elapsed = time.monotonic() - start
    outcome.metadata = {
        "model": ask.model.id, "params": {k: v for k, v in prepared.request.items()
                                          if k not in ("prompt", "messages")},
        "usage": outcome.usage, "backend": outcome.backend, "served_by": outcome.served_by,
        "replayed": outcome.replayed,
        "status": outcome.status, "chat": None if ask.once else ask.chat}
    if outcome.status == "done" and prepared.conversation is not None:
        prepared.conversation.commit(prepared.plan, outcome.text, ask.model.id)
    if started:
        backend = outcome.backend
        if outcome.served_by and outcome.served_by != ask.model.id:
            backend = f"{backend} ({outcome.served_by})"
        sink.finish(outcome.status, usage=outcome.usage, backend=backend,
                    metadata=outcome.metadata)
    return outcome
