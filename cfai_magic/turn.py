"""One exchange with a model, shared by cells, the panel and batches; with tools, the loop.

``prepare`` turns a request into a plan (what is sent, which notices to show) without sending;
``execute`` streams the answer's events into a sink (a StreamRenderer, the panel's transcript,
a batch's null sink) and records the turn in the conversation only when the answer is
complete. With tools it loops: the model's calls are run in order (one call's error is its
result), their results sent back, until the model answers in text or ``max_steps`` rounds of
calls have been made. A sink has ``start(answer)`` (once per exchange), ``waiting(text)``,
``feed(event)``, ``step(step)`` (a call done), ``confirm(name, arguments) -> bool`` and
``finish(answer, metadata)``; it reads the text from the Answer and keeps no copy.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from . import messages
from .catalog import Model
from .catalog import no_think as no_think_params
from .client.answer import Answer
from .client.events import Event, ToolCall
from .errors import CfaiError, EmptyAnswer, InputError, StepLimit, Unexpected
from .parsing import Parsed
from .state import Conversation, Plan
from .tools import Step, Toolbox
from .usage import cost_of

MAX_STEPS = 8                                     # rounds of tool calls before a turn stops


class Sink(Protocol):
    """Where a turn shows itself: a cell's renderer, the panel, a batch's quiet sink."""

    def start(self, answer: Answer) -> None: ...
    def waiting(self, text: str) -> None: ...
    def feed(self, event: Event) -> None: ...
    def step(self, step: Step) -> None: ...
    def confirm(self, name: str, arguments: dict) -> bool: ...
    def finish(self, answer: Answer, metadata: dict) -> None: ...


class TurnSession(Protocol):
    """What a turn needs of its session (a notebook's Session, or _Alone for a client)."""

    catalog: Any
    ledger: Any

    def client(self, notify: Callable[[str], None] | None = None) -> Any: ...
    def vet(self, model: Model, client: Any) -> Model: ...
    def explain(self, err: CfaiError, model: Model) -> CfaiError: ...


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
    tools: Toolbox = field(default_factory=Toolbox)
    max_steps: int = MAX_STEPS
    gateway: Any = None                           # gateway.Options (cache, log, metadata)
    reject_if_busy: bool = False                  # fail at once (3040) rather than queue


@dataclass
class Prepared:
    ask: Ask
    conversation: Conversation | None
    plan: Plan | None
    request: dict                                 # prompt= or messages=, plus params

    notes: list[str] = field(default_factory=list)

    @property
    def notices(self) -> list[str]:
        return self.plan.notices if self.plan else self.notes


def params(model_id: str, *, max_tokens=None, temperature=None, top_p=None, top_k=None,
           seed=None, reasoning=None, no_think=False, lora=None, raw=False) -> dict:
    """The request parameters of a cell's (or a batch's) flags."""
    out = {"max_tokens": max_tokens, "temperature": temperature, "top_p": top_p,
           "top_k": top_k, "seed": seed, "reasoning_effort": reasoning, "lora": lora,
           "raw": True if raw else None}
    if no_think:
        out.update(no_think_params(model_id))
    return out


def prepare(session, ask: Ask) -> Prepared:
    """Plan the turn and check it against the model's limits; sends nothing."""
    prepared = _plan(session, ask)
    request = prepared.request
    if ask.tools:
        _offer(ask, request)
    prepared.notices.extend(ask.parsed.notes)
    for picture in ask.parsed.pictures:
        if picture.scaled_from:
            w, h = picture.scaled_from
            prepared.notices.append(f"Scaled an image from {w}×{h} to {picture.width}×"
                                    f"{picture.height} (the most sent).")
    session.catalog.check(ask.model, max_tokens=request.get("max_tokens"),
                          messages=request.get("messages"), prompt=request.get("prompt"),
                          lora=request.get("lora"))
    return prepared


def _offer(ask: Ask, request: dict) -> None:
    """Put the tools in the request, after checking the model can call them (an id the
    catalog does not know is the service's to judge)."""
    model = ask.model
    if not model.tools and model.source != "unverified":
        raise InputError(f"{model.id} does not call functions; nothing was sent",
                         hint="Use a model flagged tools in %cfai models, e.g. "
                              "-m @cf/zai-org/glm-4.7-flash")
    if ask.max_steps < 1:
        raise InputError(f"--max-steps must be at least 1, not {ask.max_steps}")
    request["tools"] = ask.tools.specs()
    if "prompt" in request:                       # tools go with messages
        request["messages"] = [{"role": "user", "content": request.pop("prompt")}]


def _plan(session, ask: Ask) -> Prepared:
    params = {k: v for k, v in ask.params.items() if v is not None}
    new_messages = ask.parsed.messages or [{"role": "user", "content": ask.parsed.text}]
    if ask.once:
        if not ask.parsed.is_messages and not ask.system and isinstance(ask.parsed.text, str):
            return Prepared(ask, None, None, {"prompt": ask.parsed.text, **params})
        head = [{"role": "system", "content": ask.system}] if ask.system else []
        return Prepared(ask, None, None, {"messages": head + new_messages, **params})
    conversation = session.store.get(ask.chat)
    plan = conversation.plan(new_messages, cell_id=ask.cell_id, model=ask.model,
                             max_tokens=params.get("max_tokens"), system=ask.system,
                             fresh=ask.new)
    return Prepared(ask, conversation, plan, {"messages": plan.messages, **params})


def execute(session: TurnSession, prepared: Prepared, sink: Sink,
            cancel: threading.Event | None = None,
            on_stream: Callable[[Answer], None] | None = None) -> Answer:
    """Stream the answer into ``sink`` (and, with tools, loop); never raises, but returns the
    final Answer with its status, its error and ``steps`` (after the sink has shown whatever
    came). This is the one place where an unexpected exception becomes one line."""
    ask = prepared.ask
    cancel = cancel or threading.Event()
    request = prepared.request
    steps: list[Step] = []
    added: list[dict] = []                      # the messages the tool rounds add
    answers: list[Answer] = []
    while True:
        answer = _exchange(session, prepared, request, sink, cancel, on_stream)
        answers.append(answer)
        answer.steps = steps
        calls = _calls(answer, request, ask.tools)
        if not calls:
            break
        if sum(m["role"] == "assistant" for m in added) >= ask.max_steps:
            answer.status, answer.error = "error", StepLimit.after(ask.max_steps)
            break
        calls = [c if c.id else c._replace(id=f"call_{len(steps) + i}")
                 for i, c in enumerate(calls)]
        said = messages.assistant(answer.text, calls)
        done: list[Step] = []
        try:
            _run_calls(ask.tools, calls, sink, cancel, done)
        except KeyboardInterrupt:              # Stop in the middle of a call
            answer.status = "interrupted"
        except Exception as exc:               # ours, while running the calls: one line
            answer.status, answer.error = "error", Unexpected.wrap(exc)
        steps += done
        results = [messages.tool_result(step) for step in done]
        added += [said, *results]
        if answer.status == "done" and (cancel.is_set() or len(done) < len(calls)):
            answer.status = "interrupted"
        if answer.status != "done":
            break
        request = {**request, "messages": [*request["messages"], said, *results]}
    text = answer.text
    if answer.status == "interrupted":        # what the user saw (the panel stops its view)
        text = getattr(sink, "seen", lambda a: a.text)(answer)
    stopped = answer.status == "interrupted" and text.strip()
    if (answer.done or stopped) and prepared.conversation is not None \
            and prepared.plan is not None:
        prepared.conversation.commit(prepared.plan, text, ask.model.id,
                                     reasoning=answer.reasoning, steps=added,
                                     interrupted=bool(stopped))
    metadata = answer.metadata(None if ask.once else ask.chat)
    if ask.parsed.pictures:                      # by size and digest, never the pixels
        metadata["images"] = [p.about() for p in ask.parsed.pictures]
    costs = [c for c in (cost_of(session.catalog.get(a.model) or ask.model, a) for a in answers)
             if c]
    if costs:
        metadata["cost"] = {"usd": sum(c["usd"] for c in costs),
                            "billed": all(c["billed"] for c in costs)}
    if any(a.started_sink for a in answers):
        sink.finish(answer, metadata)
    return answer


def _calls(answer: Answer, request: dict, tools: Toolbox) -> list:
    """The calls to run: the answer's, or one it leaked as text when a call was forced."""
    if not tools or not answer.done:
        return []
    if answer.tool_calls:
        return list(answer.tool_calls)
    leaked = messages.leaked_calls(answer.text, tools.names()) \
        if messages.forced(request.get("tool_choice")) else []
    if leaked:
        answer.parts, answer.size = [], 0      # the JSON was the call, not an answer
        answer.notes.append("The model wrote its tool call as text; it was read as a call.")
    return [ToolCall(name, args) for name, args in leaked]


def _run_calls(tools: Toolbox, calls: list[ToolCall], sink: Sink, cancel: threading.Event,
               done: list[Step]) -> None:
    """Run each call in order (asking first where asked to) into ``done``, so what ran is
    kept if one is interrupted; stop early on a cancel."""
    for call in calls:
        if cancel.is_set():
            break
        if tools.asks(call.name) and not sink.confirm(call.name, call.arguments):
            step = Step(call.name, call.arguments, call.id or "", declined=True,
                        error="The user declined this call")
        else:
            step = tools.call(call.name, call.arguments, call.id or "")
        done.append(step)
        sink.step(step)


def _exchange(session: TurnSession, prepared: Prepared, request: dict, sink: Sink,
              cancel: threading.Event, on_stream: Callable[[Answer], None] | None) -> Answer:
    """One request and its answer, streamed into the sink; errors become the answer's."""
    ask = prepared.ask
    answer = Answer(ask.model.id, request, stream=ask.stream, cancel=cancel)

    def begin() -> None:                         # once per exchange, as soon as it shows
        if not answer.started_sink:
            sink.start(answer)
            answer.started_sink = True

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
        answer.gateway = ask.gateway
        if ask.reject_if_busy and client.backend.busy_option:
            answer.options["rejectIfBusy"] = True
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
    # the live list is fetched beside the first request: its facts count once they are in
    model = session.catalog.get(model.id) or model
    session.ledger.add(answer, model, None if ask.once else ask.chat)
    return answer


class _Alone:
    """What execute needs of a session, for a client used on its own (WorkersAI.run)."""

    def __init__(self, client):
        from .usage import Ledger
        self._client, self.catalog, self.ledger = client, client.catalog, Ledger()

    def client(self, notify=None):
        return self._client

    def vet(self, model, client):
        return model

    def explain(self, err, model):
        return err


class _Quiet:
    """A sink that shows nothing and asks no one (a client, a batch row)."""

    def start(self, answer): pass
    def waiting(self, text): pass
    def feed(self, event): pass
    def step(self, step): pass
    def confirm(self, name, arguments): return False
    def finish(self, answer, metadata): pass


def run_tools(client, model: Model, request: dict, tools, max_steps: int = MAX_STEPS,
              stream: bool = False) -> Answer:
    """The tool loop for the Python client: the final Answer (with ``.steps``), or its
    error raised."""
    from .tools import as_tools
    ask = Ask(model, Parsed(), {}, once=True, stream=stream, tools=Toolbox(as_tools(tools)),
              max_steps=max_steps)
    request = dict(request)
    _offer(ask, request)
    answer = execute(_Alone(client), Prepared(ask, None, None, request), _Quiet())
    if answer.error is not None:
        raise answer.error
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
