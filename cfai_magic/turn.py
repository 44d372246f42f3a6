"""One exchange with a model, shared by the magic and the panel.

``prepare`` turns a request into a plan (what is sent, which notices to show) without sending;
``execute`` streams the answer's events into a sink (a StreamRenderer, or the panel's
transcript) and records the turn in the conversation only when the answer is complete. A sink
has ``start(answer)``, ``waiting(text)``, ``feed(event)`` and ``finish(answer, metadata)``; it
reads the text from the Answer and keeps no copy.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

from .catalog import Model
from .catalog import no_think as no_think_params
from .client.answer import Answer
from .errors import CfaiError, EmptyAnswer, Unexpected
from .parsing import Parsed
from .state import Conversation, Plan
from .usage import cost_of


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


def params(model_id: str, *, max_tokens=None, temperature=None, top_p=None, top_k=None,
           seed=None, reasoning=None, no_think=False) -> dict:
    """The request parameters of a cell's (or a batch's) flags."""
    out = {"max_tokens": max_tokens, "temperature": temperature, "top_p": top_p,
           "top_k": top_k, "seed": seed, "reasoning_effort": reasoning}
    if no_think:
        out.update(no_think_params(model_id))
    return out


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
            on_stream=None) -> Answer:
    """Stream the answer into ``sink``; never raises, but returns the Answer with its status
    and error (after the sink has shown whatever came). This is the one place where an
    unexpected exception becomes one line."""
    ask = prepared.ask
    answer = Answer(ask.model.id, prepared.request, stream=ask.stream,
                    cancel=cancel or threading.Event())
    started = False

    def begin() -> None:
        nonlocal started
        if not started:
            sink.start(answer)
            started = True

    def notify(text: str) -> None:          # e.g. the local model is starting
        begin()
        sink.waiting(text)

    model, client = ask.model, None
    if prepared.conversation is not None:     # the service's prompt cache follows a chat
        answer.headers["x-session-affinity"] = prepared.conversation.affinity
    try:
        client = session.client(notify)
        model = session.vet(ask.model, client)
        answer.bind(client)
        begin()
        if on_stream:
            on_stream(answer)
        feed = sink.feed
        for event in answer.events():
            feed(event)
        if answer.done:
            check_text(answer)
    except KeyboardInterrupt:
        answer.close()
        answer.status = "interrupted"
    except CfaiError as err:
        answer.status, answer.error = "error", session.explain(err, model)
    except Exception as exc:                 # a bug of ours or a library's: one line, still
        answer.close()
        error = Unexpected.wrap(exc)
        answer.status, answer.error = "error", client.scrub(error) if client else error
    if answer.status == "streaming":
        answer.status = "interrupted"
    if answer.done and prepared.conversation is not None:
        prepared.conversation.commit(prepared.plan, answer.text, ask.model.id,
                                     reasoning=answer.reasoning)
    chat = None if ask.once else ask.chat
    metadata = answer.metadata(chat)
    cost = cost_of(model, answer)
    if cost:
        metadata["cost"] = cost
    session.ledger.add(answer, model, chat)
    if started:
        sink.finish(answer, metadata)
    return answer


def check_text(answer: Answer) -> None:
    """An answer with no text (and no tool call) is an error, never an empty turn."""
    if answer.text.strip() or answer.tool_calls:
        return
    reason = answer.finish_reason
    if answer.reasoning.strip():
        limit = answer.request.get("max_tokens")
        spent = f"all {limit} tokens" if limit else "its whole token budget"
        raise EmptyAnswer(
            f"{answer.model} spent {spent} reasoning and wrote no answer "
            f"(finish reason: {reason or 'not given'})",
            hint="Raise --max-tokens, or think less with --reasoning low or --no-think")
    raise EmptyAnswer(f"The model returned no text (finish reason: {reason or 'not given'})")
