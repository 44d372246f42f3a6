"""ChatPanel: the notebook's chats in an ipywidgets panel. Wiring only: the exchange itself is
turn.py (as for %%cfai); HTTP is the client's.

Answers stream in a worker thread, so Stop stays clickable and the kernel stays free; the thread
only sets widget traits (never ``with output:``). Every panel listens to the ChatStore, so a
turn made anywhere (a cell, another panel) shows in every panel on that conversation.
"""
from __future__ import annotations

import threading
import time

import ipywidgets as w

from . import safe, turn
from .errors import CfaiError
from .messages import text_of
from .parsing import Parsed
from .client.answer import Answer
from .client.events import Reasoning, Text
from .images import pictures_in
from .render import (Meter, answer_code, backend_label, live_text, reasoning_block, step_html,
                     thumbnails)
from .tools import Step, Toolbox
from .session import Session, current


SHOWN_TURNS = 100      # the panel shows this many latest turns; %cfai history has them all
ROLES = ("system", "user", "assistant", "tool")     # the roles a message's CSS class may name


def named_tools(names: str) -> list:
    """The notebook's functions named in the panel's Tools field ("f, g" or "f g")."""
    from .session import user_namespace
    from .tools import named
    return named(names, user_namespace())


def steps_of(messages: list[dict]) -> list[Step]:
    """A kept turn's tool loop (its assistant calls and tool results) as steps to show."""
    import json
    results = {m.get("tool_call_id"): m for m in messages if m.get("role") == "tool"}
    steps = []
    for m in messages:
        for call in m.get("tool_calls") or ():
            fn = call.get("function") or {}
            try:
                args = json.loads(fn.get("arguments") or "{}")
            except (TypeError, ValueError):
                args = {"_raw": fn.get("arguments")}
            done = results.get(call.get("id"), {})
            said = str(done.get("content", ""))
            error = said[len("Error: "):] if said.startswith("Error: ") else None
            steps.append(Step(str(fn.get("name", "")), args if isinstance(args, dict) else {},
                              str(call.get("id", "")), "" if error else said, error))
    return steps


def _bundle(text: str, thumbs: str = "") -> dict:
    """A message as an output of the widget: untrusted, so through the door (ipywidgets'
    Output renders trusted); ``thumbs``, the images it sent, are our own."""
    return {"output_type": "display_data", "metadata": {},
            "data": {"text/html": (thumbs + safe.markdown(text)) or " ",
                     "text/plain": safe.plain(text)}}


def status_line(text: str) -> str:
    """A status line for an HTML widget: the footer, or a notice, escaped."""
    return safe.escape(text)


class Message(w.VBox):
    """One message of the transcript: its role, the reasoning (collapsed), and its Markdown."""

    def __init__(self, role: str, text: str = "", on_insert=None, reasoning: str = "",
                 steps=(), pictures=()):
        self.role = role
        self.text = text
        self.thumbs = thumbnails(pictures)
        self.body = w.Output()
        self.body.add_class("cfai-message-body")
        self.thinking = w.HTML()
        self.thinking.add_class("cfai-reasoning")
        self.steps: w.HTML | None = None           # a tool loop's calls, made when there are
        children = [w.HTML(f"<b>{safe.escape(role)}</b>"), self.thinking, self.body]
        if on_insert is not None:
            self.insert = w.Button(description="Insert as cell", icon="plus",
                                   tooltip="Put this answer's code in a new cell below")
            self.insert.add_class("cfai-insert")
            self.insert.on_click(lambda _: on_insert(self.text))
            children.append(self.insert)
        super().__init__(children)
        self.add_class(f"cfai-message-{role if role in ROLES else 'other'}")
        self.set_steps(steps)
        self.set_text(text, reasoning)

    def close(self) -> None:
        """Close the message, what it holds and their layouts and styles (a widget's close()
        leaves all of those open)."""
        for widget in (*self.children, self):
            for part in (getattr(widget, "style", None), getattr(widget, "layout", None)):
                if part is not None:
                    part.close()
            if widget is not self:
                widget.close()
        super().close()

    def set_steps(self, steps) -> None:
        """Show a tool loop's calls, collapsed, above the answer (a widget only if any)."""
        if not steps and self.steps is None:
            return
        if self.steps is None:
            self.steps = w.HTML()
            self.steps.add_class("cfai-steps")
            shown = tuple(self.children)  # type: ignore[has-type]   # a traitlets trait
            self.children = (shown[0], self.steps, *shown[1:])
        self.steps.value = "".join(step_html(step) for step in steps)

    def set_text(self, text: str, reasoning: str = "", streaming: bool = False) -> None:
        self.text = text
        self.body.outputs = (_bundle(text, self.thumbs),)
        if reasoning:
            self.thinking.value = reasoning_block(reasoning, streaming and not text)


class PanelSink:
    """Where turn.execute streams a panel's answer: the last message, throttled. It reads the
    text from the Answer; the Meter only counts and paces."""

    def __init__(self, panel: ChatPanel, message: Message, model: str, rate: float):
        self.panel, self.message, self.model = panel, message, model
        self.meter = Meter(rate)
        self.answer: Answer | None = None
        self.active = True
        self.steps: list[Step] = []
        self.stopped_with: str | None = None     # the text shown when Stop was pressed

    def seen(self, answer) -> str:
        """What the user saw of a stopped answer (what the conversation keeps)."""
        return self.stopped_with if self.stopped_with is not None else answer.text

    def _status(self, line: str) -> None:
        """Show a progress line unless Stop already ended this turn; under the panel's lock,
        so a late update from the worker never overwrites what Stop wrote."""
        with self.panel._lock:
            if self.active:
                self.panel.status.value = status_line(line)

    def start(self, answer) -> None:
        self.answer = answer
        self._status(self.meter.status(self.model, "streaming") + " · waiting")

    def waiting(self, text: str) -> None:
        self._status(f"⏳ {self.model} · {text}")

    def feed(self, event) -> None:
        answer = self.answer
        if answer is None or type(event) not in (Text, Reasoning) \
                or not self.meter.tick(answer.size):
            return
        with self.panel._lock:
            if not self.active:
                return
            text = live_text(answer)
            self.message.set_text(text, answer.reasoning, streaming=True)
            self._status(self.meter.status(self.model, "streaming"))
        self.meter.sent(2 * len(text))

    def step(self, step: Step) -> None:
        self.steps.append(step)
        with self.panel._lock:
            if self.active:
                self.message.set_steps(self.steps)
        self._status(f"⏳ {self.model} · sending the results")

    def confirm(self, name: str, arguments: dict) -> bool:
        return self.panel.ask_before(name, arguments) if self.active else False

    def finish(self, answer, metadata=None, state: str | None = None) -> None:
        with self.panel._lock:
            if not self.active:
                return
            state = state or (answer.status if answer.status != "pending" else "error")
            self.message.set_text(self.seen(answer) + ("\n\n*⏹ interrupted*"
                                                 if state == "interrupted" else ""),
                                  answer.reasoning)
            self.panel.status.value = status_line(self.meter.status(
                self.model, state, answer.usage, backend_label(answer), answer.replayed,
                (metadata or {}).get("cost"), answer.cached))


class ChatPanel(w.VBox):
    """A chat panel over the notebook's conversations: ``ChatPanel(chat="default")``."""

    def __init__(self, chat: str = "default", session: Session | None = None, **kwargs):
        super().__init__(**kwargs)
        self.session = session or current()
        self.chat_name = chat
        self._worker: threading.Thread | None = None
        self._cancel: threading.Event | None = None
        self._stream = None
        self._sink: PanelSink | None = None
        self._lock = threading.RLock()
        self._shown: list = []            # (turn, its Message widgets) in the transcript
        self._pending: list = []          # widgets of the turn being asked
        self._refreshing = False
        self.add_class("cfai-panel")
        _ = self.session.lab           # start ipylab's bridge early, so it is ready when needed
        self._build()
        self._unsubscribe = self.session.store.subscribe(self._on_store_change)
        self.session.settings.observe(self._on_default_model, "default_model")
        self.session.store.get(chat)
        self._refresh_chats()
        self.render_transcript()

    # layout -----------------------------------------------------------------------------
    def _build(self) -> None:
        def labelled(widget, cls):
            widget.add_class(cls)
            return widget
        wide = dict(style={"description_width": "90px"}, layout=w.Layout(width="460px"))
        self.model = labelled(w.Dropdown(description="Model", options=self._model_options(),
                                         value=self._current_model(), **wide), "cfai-model")
        self.model.observe(self._on_model_pick, "value")
        self.limits = labelled(w.HTML(), "cfai-limits")
        self._show_limits()
        self.system = labelled(w.Textarea(description="System", rows=2,
                                          placeholder="optional system prompt", **wide),
                               "cfai-system")
        narrow = dict(style={"description_width": "90px"}, layout=w.Layout(width="228px"))
        self.max_tokens = labelled(w.BoundedIntText(description="Max tokens", value=256, min=1,
                                                    max=100_000, **narrow), "cfai-max-tokens")
        self.temperature = labelled(w.BoundedFloatText(description="Temperature", value=0.6,
                                                       min=0.0, max=5.0, step=0.1, **narrow),
                                    "cfai-temperature")
        self.chats = labelled(w.Dropdown(description="Chat", **wide), "cfai-chat")
        self.chats.observe(self._on_chat_pick, "value")
        self.new_chat = labelled(w.Button(description="New chat", icon="plus"), "cfai-new-chat")
        self.new_chat.on_click(lambda _: self.start_new_chat())
        self.transcript = labelled(w.VBox(), "cfai-transcript")
        self.earlier = labelled(w.HTML(), "cfai-earlier")
        self.status = labelled(w.HTML(), "cfai-status")
        self.error = labelled(w.HTML(), "cfai-error")
        self.message = labelled(w.Text(placeholder="Message (Enter sends)", continuous_update=True,
                                       layout=w.Layout(width="auto", flex="1")), "cfai-input")
        self.message.on_msg(self._on_text_msg)
        self.upload = labelled(w.FileUpload(accept="image/*", multiple=True,
                                            description="Image"), "cfai-upload")
        self.send = labelled(w.Button(description="Send", button_style="primary",
                                      icon="paper-plane"), "cfai-send")
        self.send.on_click(lambda _: self.submit())
        self.stop = labelled(w.Button(description="Stop", icon="stop", disabled=True), "cfai-stop")
        self.stop.on_click(lambda _: self.stop_answer())
        self.tools = labelled(w.Text(description="Tools", placeholder="functions the model may "
                                     "call, e.g. get_weather, add", **wide), "cfai-tools")
        self.confirm_calls = labelled(w.Checkbox(description="Ask before each call",
                                                 indent=False), "cfai-confirm-calls")
        self.question = labelled(w.HTML(), "cfai-question")
        self.yes = labelled(w.Button(description="Run it", button_style="warning"), "cfai-yes")
        self.no = labelled(w.Button(description="Don't"), "cfai-no")
        self.asking = labelled(w.HBox([self.question, self.yes, self.no],
                                      layout=w.Layout(display="none")), "cfai-asking")
        self.yes.on_click(lambda _: self._answer_question(True))
        self.no.on_click(lambda _: self._answer_question(False))
        self._question: tuple[threading.Event, list[bool]] | None = None   # while a call waits
        self.children = [
            w.HBox([self.model, self.limits]), self.system,
            w.HBox([self.max_tokens, self.temperature]),
            w.HBox([self.tools, self.confirm_calls]),
            w.HBox([self.chats, self.new_chat]),
            self.transcript, self.asking, self.status, self.error,
            w.HBox([self.message, self.upload, self.send, self.stop]),
        ]

    def _model_options(self):
        options = [(safe.plain(f"{m.id}  ({m.summary()})"), m.id) for m in self.session.catalog]
        current = self._current_model()
        if current not in [v for _, v in options]:
            options.append((safe.plain(current), current))
        return options

    def _current_model(self) -> str:
        try:
            return self.session.resolve(self.session.model).id
        except CfaiError:
            return self.session.model

    def _show_limits(self) -> None:
        try:
            model = self.session.resolve(self.model.value)
            about = f"<br>{safe.escape(model.description)}" if model.description else ""
            limits = model.limits()
            self.limits.value = (f"<small><b>{safe.escape(model.summary())}</b><br>"
                                 f"{safe.escape(limits[:1].upper() + limits[1:])}.{about}"
                                 "</small>")
        except CfaiError:
            self.limits.value = ""

    # model and chat selection ---------------------------------------------------------------
    def _on_model_pick(self, change) -> None:
        if change["new"] and change["new"] != self._current_model():
            self.session.model = change["new"]
        self._show_limits()

    def _on_default_model(self, change) -> None:
        current = self._current_model()
        if current not in [v for _, v in self.model.options]:
            self.model.options = self._model_options()
        if self.model.value != current:
            self.model.value = current

    def _on_chat_pick(self, change) -> None:
        if change["new"] and change["new"] != self.chat_name and not self._refreshing:
            self.chat_name = change["new"]
            self.render_transcript()

    def start_new_chat(self) -> str:
        names = set(self.session.store.names())
        n = 1
        while f"chat-{n}" in names:
            n += 1
        self.chat_name = f"chat-{n}"
        self.session.store.get(self.chat_name)
        self._refresh_chats()
        self.render_transcript()
        return self.chat_name

    def _refresh_chats(self) -> None:
        """The chat list as the store has it, still showing this panel's chat (new options
        reset a Dropdown's value; that is not the user picking another chat)."""
        names = self.session.store.names()
        self._refreshing = True
        try:
            if list(self.chats.options) != names:
                self.chats.options = names
            if self.chats.value != self.chat_name:
                self.chats.value = self.chat_name
        finally:
            self._refreshing = False

    def _on_store_change(self, name: str) -> None:
        self._refresh_chats()
        if name == self.chat_name and not self.busy:
            self.render_transcript()
            turns = len(self.conversation.turns)
            self.status.value = status_line(f"{turns} turn{'s' if turns != 1 else ''} in “{name}”")

    # transcript -------------------------------------------------------------------------------
    @property
    def conversation(self):
        return self.session.store.get(self.chat_name)

    def render_transcript(self) -> None:
        """Show the conversation's latest :data:`SHOWN_TURNS` turns. Widgets of turns already
        shown are kept, new turns add theirs, and what no longer belongs (an older turn,
        another chat, a rewind, a finished ask) is closed: a long conversation costs a bounded
        set of widgets, not one set per change."""
        conversation = self.conversation
        self.system.value = conversation.system or ""
        turns = list(conversation.turns)
        window = turns[-SHOWN_TURNS:]
        had = {id(t): ws for t, ws in self._shown}
        shown = [(t, had.pop(id(t), None) or self._messages(t)) for t in window]
        for widget in [w_ for ws in had.values() for w_ in ws] + self._pending:
            widget.close()
        self._pending = []
        self._shown = shown
        earlier = len(turns) - len(window)
        self.earlier.value = (f"<small>… {earlier} earlier turns (<code>%cfai history</code> "
                              "shows them all)</small>" if earlier else "")
        self.transcript.children = [self.earlier] * bool(earlier) + \
            [w_ for _, ws in shown for w_ in ws]

    def _messages(self, turn) -> list:
        return [*(Message(m["role"], text_of(m.get("content")), pictures=pictures_in([m]))
                  for m in turn.messages),
                Message("assistant", turn.answer + ("\n\n*⏹ interrupted*"
                                                    if turn.interrupted else ""),
                        on_insert=self.insert_cell,
                        reasoning=turn.reasoning, steps=steps_of(turn.steps))]

    def insert_cell(self, text: str) -> None:
        """Put an answer's code (or its text) into a new cell below the panel's cell.

        In JupyterLab this goes through ipylab's command bridge; where the front end has no
        ipylab (another client), the code waits for ``%cfai insert``.
        """
        code = answer_code(text)
        lab = self.session.lab
        if lab is not None and lab.version:
            lab.commands.execute("notebook:insert-cell-below")
            lab.commands.execute("notebook:replace-selection", {"text": code})
            self.status.value = "Inserted the answer's code in a new cell below."
            return
        self.session.pending_code = code
        self.status.value = ("This front end cannot add cells from a widget: run "
                             "<code>%cfai insert</code> in a cell to put the code below it.")

    # sending --------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        worker = self._worker
        return worker is not None and worker.is_alive() and self._sink is not None \
            and self._sink.active

    def _on_text_msg(self, _, content, buffers) -> None:
        if content.get("event") == "submit":
            self.submit_when_typed()

    def submit_when_typed(self, quiet: float = 0.15, most: float = 1.0) -> None:
        """Enter, from the message box: send once its value has been still for ``quiet``
        seconds (``most`` at the latest). The front end throttles value updates but not the
        Enter event, so a fast typist's last keystrokes arrive after it: sent at once, the
        message lost its end, and the late value refilled the cleared box."""
        start = last = time.monotonic()

        def changed(_):
            nonlocal last
            last = time.monotonic()

        def check():
            now = time.monotonic()
            if now - last < quiet and now - start < most:
                threading.Timer(quiet - (now - last), check).start()
                return
            self.message.unobserve(changed, "value")
            self.submit()
        self.message.observe(changed, "value")
        threading.Timer(quiet, check).start()

    def submit(self, text: str | None = None) -> threading.Thread | None:
        """Send the message box (or ``text``); the answer streams in a worker thread."""
        text = (text if text is not None else self.message.value).strip()
        if not text or self.busy:
            return None
        self.error.value = ""
        try:
            model = self.session.resolve(self.model.value)
            parsed = self._parsed(text)
            ask = turn.Ask(model, parsed, chat=self.chat_name,
                           params={"max_tokens": self.max_tokens.value,
                                   "temperature": self.temperature.value},
                           system=self.system.value.strip() or None,
                           tools=Toolbox(named_tools(self.tools.value),
                                         confirm=self.confirm_calls.value),
                           reject_if_busy=True,
                           gateway=self.session.gateway_options(self.chat_name, "panel"))
            prepared = turn.prepare(self.session, ask)
        except CfaiError as err:
            self.show_error(err)
            return None
        self.message.value = ""
        self.upload.value = ()
        answer = Message("assistant", "", on_insert=self.insert_cell)
        self._pending = [Message("user", text, pictures=parsed.pictures), answer]
        self.transcript.children = (*self.transcript.children, *self._pending)
        self._cancel = threading.Event()
        self._sink = PanelSink(self, answer, model.id, self.session.settings.updates_per_second)
        self.send.disabled, self.stop.disabled = True, False
        self._worker = threading.Thread(target=self._run, args=(prepared, self._sink, self._cancel),
                                        name="cfai-panel", daemon=True)
        self._worker.start()
        return self._worker

    def _run(self, prepared, sink: PanelSink, cancel: threading.Event) -> None:
        answer = turn.execute(self.session, prepared, sink, cancel,
                              on_stream=lambda s: setattr(self, "_stream", s))
        with self._lock:
            if not sink.active:          # Stop already finished this turn in the UI
                return
            self._end_turn(sink)
            if answer.error is not None:
                self.show_error(answer.error)
            if answer.done:
                self.render_transcript()

    def _parsed(self, text: str) -> Parsed:
        """The message box as a cell reads it ({name} from the notebook, images included),
        with the images uploaded beside it after the text."""
        from .images import picture_of
        from .parsing import parse_cell
        from .session import user_namespace
        from .context import budget_for
        model = self.session.resolve(self.model.value)
        parsed = parse_cell(text, user_namespace(),
                            budget=budget_for(model, self.session.settings.value_budget))
        uploaded = [p for p in (picture_of(bytes(f["content"])) for f in self.upload.value)
                    if p is not None]
        if not uploaded:
            return parsed
        if parsed.is_messages:
            raise CfaiError("Upload images with a plain message, not role lines",
                            hint="Or put the image in a variable and write {name}")
        content = parsed.text if isinstance(parsed.text, list) else \
            [{"type": "text", "text": parsed.text}]
        return Parsed(text=[*content, *(p.part() for p in uploaded)],
                      pictures=[*parsed.pictures, *uploaded])

    def ask_before(self, name: str, arguments: dict) -> bool:
        """From the worker thread: ask in the panel before a call; wait for Run it or Don't
        (Stop declines)."""
        args = ", ".join(f"{k}={v!r}" for k, v in arguments.items())
        answered, choice = threading.Event(), []   # type: tuple[threading.Event, list[bool]]
        self._question = (answered, choice)
        self.question.value = safe.escape(f"Run {name}({args})?")
        self.asking.layout.display = "flex"
        cancel = self._cancel
        while not answered.wait(0.05):
            if cancel is not None and cancel.is_set():
                break
        self.asking.layout.display = "none"
        self._question = None
        return bool(choice and choice[0])

    def _answer_question(self, yes: bool) -> None:
        question = self._question
        if question is not None:
            question[1].append(yes)
            question[0].set()

    def stop_answer(self) -> None:
        """Stop the streaming answer now; the partial answer stays, marked."""
        with self._lock:
            sink, stream, cancel = self._sink, self._stream, self._cancel
            if sink is None or not sink.active:
                return
            if cancel is not None:
                cancel.set()
            if stream is not None:
                stream.abort()
            if sink.answer is not None:
                sink.stopped_with = sink.answer.text
                sink.finish(sink.answer, state="interrupted")
            self._end_turn(sink)

    def _end_turn(self, sink: PanelSink) -> None:
        sink.active = False
        self._stream = None
        self.send.disabled, self.stop.disabled = False, True

    def show_error(self, err: CfaiError) -> None:
        self.error.value = (f"<span style='color:var(--jp-error-color1,#c00)'>"
                            f"{type(err).__name__}: {safe.escape(str(err))}</span>")

    def close(self) -> None:
        self.stop_answer()
        for widget in [w_ for _, ws in self._shown for w_ in ws] + self._pending:
            widget.close()
        self._unsubscribe()
        self.session.settings.unobserve(self._on_default_model, "default_model")
        super().close()
