"""%%cfai and %cfai: argument parsing and dispatch. No HTTP, no display logic here."""
from __future__ import annotations

import getpass
import shlex

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import MagicArgumentParser, argument, magic_arguments

from . import safe, turn
from .config import Secret, Settings
from .errors import CfaiError, Interrupted
from .client.protocols import PROTOCOLS
from .parsing import parse_cell
from .render import StreamRenderer, answer_code, answer_json, display_mode
from .messages import shown
from .session import Session
from .context import budget_for
from .tools import Toolbox, named

FORMATS = ("markdown", "text", "code", "json")


def one_line(err: CfaiError) -> CfaiError:
    """Make IPython show ``err`` as one red line instead of a traceback (our colour codes
    only: the message went through the door)."""
    line = f"\x1b[0;31m{type(err).__name__}: {safe.plain(err)}\x1b[0m"
    setattr(err, "_render_traceback_", lambda: [line])     # noqa: B010  (IPython's hook)
    return err


def say(text: str) -> None:
    """Print a line that may hold untrusted text (names, roles, a server's words)."""
    print(safe.plain(text))


def _parse(parser, line: str):
    """Parse with shell quoting (so -s "two words" is one value); errors are UsageErrors."""
    try:
        words = shlex.split(line)
    except ValueError as err:
        raise UsageError(f"{parser.prog}: {err}") from None
    try:
        return parser.parse_args(words)
    except UsageError as err:
        hint = _closest(parser, words, str(err))
        if not hint:
            raise
        raise UsageError(f"{err}. {hint}") from None


def _closest(parser, words: list[str], error: str) -> str:
    """'--temprature: did you mean --temperature?' for each flag (or command) the error names."""
    import argparse
    import difflib
    flags, commands = [], []
    parsers = [parser]
    while parsers:
        p = parsers.pop()
        for action in p._actions:
            flags += action.option_strings
            if isinstance(action, argparse._SubParsersAction):
                commands += list(action.choices)
                parsers += list(action.choices.values())
    said = []
    for word in dict.fromkeys(words):
        flag = word.split("=", 1)[0]
        named = f"{flag} " in f"{error} " or f"'{flag}'" in error
        pool = flags if flag.startswith("-") else commands
        if named and flag not in pool:
            close = difflib.get_close_matches(flag, pool, n=1 if flag.startswith("-") else 2,
                                              cutoff=0.6)
            if close:
                said.append(f"{flag}: did you mean {' or '.join(close)}?")
    return " ".join(said)


def _subcommands() -> MagicArgumentParser:
    parser = MagicArgumentParser(prog="%cfai", description="Settings, models and chats.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name, help, *args):
        p = sub.add_parser(name, help=help, description=help)
        for flags, kw in args:
            p.add_argument(*flags, **kw)
        return p

    add("model", "Show or set the notebook's default model.",
        (["name"], dict(nargs="?", help="model id or alias")))
    add("models", "The models: context, $ per million tokens in and out, flags, status.",
        (["text"], dict(nargs="?", help="show only ids that contain this")),
        (["--refresh"], dict(action="store_true", help="ask the service for its live list")))
    add("usage", "This notebook's tokens and cost, by model and by chat, and today's neurons.")
    add("history", "Show a conversation.",
        (["name"], dict(nargs="?", default="default")))
    add("reset", "Empty a conversation (or --all of them).",
        (["name"], dict(nargs="?", default="default")),
        (["--all"], dict(action="store_true")))
    add("chats", "List this notebook's conversations.")
    add("save", "Save the conversations as JSON (default: beside the notebook).",
        (["file"], dict(nargs="?")))
    add("load", "Load conversations saved with %cfai save.",
        (["file"], dict(nargs="?")))
    add("login", "Ask for the account id and API token (nothing is echoed or saved).")
    add("config", "Show the settings (secrets masked).")
    add("backend", "Show or choose the backend: auto, cloudflare, local, or an API root URL; "
                   "--protocol openai speaks /chat/completions (vLLM, llama.cpp, Cloudflare's "
                   "/ai/v1); --key-env names the variable holding an engine's key (default "
                   "OPENAI_API_KEY; the Cloudflare token only goes to Cloudflare).",
        (["name"], dict(nargs="?")),
        (["--protocol"], dict(choices=sorted(PROTOCOLS))),
        (["--key-env"], dict(metavar="NAME", help="environment variable with the engine's key")),
        (["--gateway"], dict(metavar="NAME", help="route Cloudflare requests through this AI "
                                                  "Gateway (a cf-aig-gateway-id header)")),
        (["--gateway-url"], dict(action="store_true", help="with --gateway: use the gateway's "
                                                           "own URL instead of the header")),
        (["--no-gateway"], dict(action="store_true", help="stop using AI Gateway")))
    add("fix", "Ask why a cell failed (default: the last that did) and put the corrected code "
               "in a new cell below, not run.",
        (["cell"], dict(nargs="?", type=int, help="the cell's number, as In[n]")),
        (["-m", "--model"], dict(help="model id or alias")))
    add("explain", "Ask what a cell (default: the one before) does and what its output shows.",
        (["cell"], dict(nargs="?", type=int, help="the cell's number, as In[n]")),
        (["-m", "--model"], dict(help="model id or alias")))
    add("panel", "Show the chat panel.",
        (["--chat"], dict(default="default")))
    add("insert", "Put the code of the last answer (or the one picked in a panel) in a new "
                  "cell below.")
    add("record", "Record every answer into a cassette file.",
        (["path"], dict()))
    add("replay", "Answer from a cassette file: no network, no credentials.",
        (["path"], dict()),
        (["--auto"], dict(action="store_true", help="record what the cassette lacks")))
    add("cassette", "Show the cassette, or turn it off.",
        (["state"], dict(nargs="?", choices=["off", "status"])))
    return parser


LINE_PARSER = _subcommands()


def _usage(parser) -> str:
    """A parser's usage line, plain (IPython's formatter adds '::' and another '%')."""
    import argparse
    formatter = argparse.HelpFormatter(parser.prog)
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups,
                        prefix="")
    return formatter.format_help().strip()


@magics_class
class CfaiMagics(Magics, Settings):
    """The magics. Settings are traits: ``%config CfaiMagics.default_model = "mistral"``."""

    def __init__(self, shell=None, **kwargs):
        super().__init__(shell=shell, **kwargs)
        self.session = Session(self)
        if shell is not None:
            from . import context
            context.install(shell, self.session)            # Err, filled like Out

    # %%cfai ------------------------------------------------------------------------------
    @magic_arguments(name="%cfai")           # its help says %%cfai, not %cfai_cell
    @argument("-m", "--model", help="model id or alias (default: %%cfai model)")
    @argument("-s", "--system", help="system prompt for this conversation")
    @argument("--max-tokens", type=int, help="most tokens in the answer")
    @argument("--temperature", type=float)
    @argument("--top-p", type=float)
    @argument("--top-k", type=int)
    @argument("--seed", type=int, help="sampling seed (same seed, same answer)")
    @argument("--chat", default="default", help="continue the conversation of this name")
    @argument("--new", action="store_true", help="start that conversation afresh")
    @argument("--once", action="store_true", help="no history: the cell alone is sent")
    @argument("--no-stream", action="store_true", help="wait for the whole answer")
    @argument("--reasoning", choices=("low", "medium", "high"),
              help="how hard a reasoning model thinks (sent as reasoning_effort)")
    @argument("--no-think", action="store_true",
              help="ask a reasoning model not to think (as its family expects)")
    @argument("-f", "--format", choices=FORMATS, default="markdown",
              help="markdown, text, code (answer's code into a new cell below) or json")
    @argument("--tools", metavar="F,G", help="functions of the notebook the model may call "
                                              "(the loop shows each call; _cfai_answer.steps)")
    @argument("--max-steps", type=int, default=8, metavar="N",
              help="with --tools: rounds of calls before the loop stops (default 8)")
    @argument("--confirm", action="store_true", help="with --tools: ask before each call")
    @argument("--wait", action="store_true",
              help="queue for capacity when the model is busy (a cell otherwise fails at once)")
    @argument("--cache-ttl", type=int, metavar="S",
              help="AI Gateway: keep this answer in the gateway's cache for S seconds")
    @argument("--no-cache", action="store_true", help="AI Gateway: do not answer from its cache")
    @argument("--cache-key", metavar="KEY", help="AI Gateway: the cache key for this request")
    @argument("--lora", metavar="NAME", help="a LoRA adapter (fine-tune name or id) to run on "
                                             "the model (one flagged lora in %%cfai models)")
    @argument("--raw", action="store_true",
              help="skip the model's chat template (as a LoRA adapter often wants)")
    @argument("--out", metavar="VAR", help="also store the answer in this variable")
    @argument("--no-vars", action="store_true", help="send {name} fields as written")
    @argument("--context", type=int, metavar="N",
              help="add the last N code cells and their outputs before the prompt")
    @argument("--map", metavar="ROWS",
              help="send the cell once per row of this variable (a list, a Series, a list of "
                   "dicts or a DataFrame: {column} fields); the answers go to --out (and "
                   "_cfai_batch.values), in order")
    @argument("--cache", metavar="PATH", help="with --map: keep the answers in this file too")
    @argument("--concurrency", type=int, metavar="N", help="with --map: requests at once")
    @argument("--batch-api", action="store_true",
              help="with --map: run the rows on Cloudflare's asynchronous Batch API")
    @cell_magic("cfai")  # type: ignore[arg-type]      # IPython's decorators are untyped
    def cfai_cell(self, line, cell):
        """Send the cell to a Workers AI model and stream the answer into the output.

        The cell is the user's turn, or messages written as ``system:``/``user:``/
        ``assistant:`` lines or as a JSON list of {role, content}. ``{name}`` fields are filled
        from the notebook's variables; ``{{name}}`` keeps the braces. ``_cfai`` holds the last
        answer; ``_cfai_answer`` the whole Answer (``.reasoning``, ``.usage``, ``.tool_calls``).
        A reasoning model's thinking shows apart, collapsed, and is never sent back.
        """
        args = _parse(self.cfai_cell.parser, line)
        if args.out is not None and not args.out.isidentifier():
            raise UsageError(f"--out needs a variable name, not {args.out!r}")
        try:
            return self._map(args, cell) if args.map else self._ask(args, cell)
        except CfaiError as err:
            raise one_line(err) from None
        except KeyboardInterrupt:            # before a turn or a batch took over: nothing sent
            say("Interrupted before anything was sent.")

    def _map(self, args, cell):
        from .batch import map as run_map
        from .parsing import MISSING, lookup
        if args.new or args.once or args.chat != "default" or args.no_stream:
            raise UsageError("--map sends each row on its own: --chat, --new, --once and "
                             "--no-stream do not apply")
        if args.format == "code":
            raise UsageError("--map answers go to --out, not into new cells: use -f markdown, "
                             "text or json")
        if args.confirm:
            raise UsageError("--map runs its rows unattended: --confirm does not apply")
        rows = lookup(args.map, self.shell.user_ns) if args.map[:1].isidentifier() else MISSING
        if rows is MISSING:
            raise UsageError(f"--map needs a variable holding the rows (like df or "
                             f"df.reviews); {args.map!r} is not one")
        if args.no_cache or args.cache_ttl or args.cache_key:
            raise UsageError("--map uses the gateway's cache as the settings say "
                             "(CfaiMagics.cache_ttl): --cache-ttl, --no-cache and --cache-key "
                             "are for one cell")
        values = run_map(cell, rows, model=args.model, system=args.system,
                         max_tokens=args.max_tokens, temperature=args.temperature,
                         top_p=args.top_p, top_k=args.top_k, seed=args.seed,
                         reasoning=args.reasoning, no_think=args.no_think,
                         lora=args.lora, raw=args.raw,
                         json_mode=args.format == "json", concurrency=args.concurrency,
                         cache=args.cache, batch_api=args.batch_api, no_vars=args.no_vars,
                         tools=named(args.tools or "", self.shell.user_ns),
                         max_steps=args.max_steps,
                         session=self.session, namespace=self.shell.user_ns, mode=self._mode())
        if args.out:
            self.shell.user_ns[args.out] = values

    def _ask(self, args, cell):
        session = self.session
        model = session.resolve(args.model or session.model)
        budget = budget_for(model, self.value_budget)
        added = None
        if args.context:
            cell, added = self._with_context(cell, args.context, budget, args.no_vars)
        parsed = parse_cell(cell, self.shell.user_ns, fill=not args.no_vars, budget=budget)
        params = turn.params(model.id, max_tokens=args.max_tokens,
                             temperature=args.temperature, top_p=args.top_p, top_k=args.top_k,
                             seed=args.seed, reasoning=args.reasoning, no_think=args.no_think,
                             lora=args.lora, raw=args.raw)
        stream = not args.no_stream
        if args.format == "json" and (model.json_mode or session.wire.ANY_MODEL):
            from .batch.schema import JSON_OBJECT
            params["response_format"] = dict(JSON_OBJECT)   # JSON mode (it does not stream)
            stream = False
        ask = turn.Ask(model, parsed, params, chat=args.chat, once=args.once, new=args.new,
                       system=args.system, cell_id=self._cell_id(), stream=stream,
                       tools=Toolbox(named(args.tools or "", self.shell.user_ns),
                                     confirm=args.confirm),
                       max_steps=args.max_steps, reject_if_busy=not args.wait,
                       gateway=session.gateway_options(
                           None if args.once else args.chat, "cell", cache_ttl=args.cache_ttl,
                           no_cache=args.no_cache, cache_key=args.cache_key))
        prepared = turn.prepare(session, ask)
        notices = list(prepared.notices)
        renamed = session.catalog.renamed(args.model or session.settings.default_model)
        if renamed:
            notices.insert(0, renamed)
        note = self._backend_notice()
        if note:
            notices.insert(0, note)
        if added:
            notices.insert(0, added)              # (line, what was added): shown collapsed
        renderer = StreamRenderer(model.id, fmt=args.format, mode=self._mode(),
                                  updates_per_second=self.updates_per_second, notices=notices,
                                  pictures=parsed.pictures)
        answer = turn.execute(session, prepared, renderer)
        self.shell.user_ns["_cfai_answer"] = answer
        if answer.done:
            self.shell.user_ns["_cfai"] = answer.text
            self._deliver(args, answer.text)
        if answer.status == "interrupted":
            raise Interrupted(f"Stopped after {renderer.tokens} chunks", partial=answer.text)
        if answer.error is not None:
            raise answer.error

    def _with_context(self, cell: str, n: int, budget: int, no_vars: bool):
        """The cell with the last ``n`` code cells put before it (braces doubled, so their
        code is sent as written), and the notice of what was added (a line and the text)."""
        if n < 1:
            raise UsageError(f"--context needs a number of cells, 1 or more, not {n}")
        from .context import recent_cells
        text, found = recent_cells(self.shell, n, budget, self.session)
        if not found:
            return cell, None
        added = (f"📎 Added the last {found} code cell{'s' if found > 1 else ''} and their "
                 f"outputs as context (about {-(-len(text) // 4):,} tokens).", text)
        quoted = text if no_vars else text.replace("{", "{{").replace("}", "}}")
        return f"The notebook's last cells, for context:\n\n{quoted}\n\n{cell}", added

    def _deliver(self, args, text: str) -> None:
        value = text
        if args.format == "json":
            try:
                value = answer_json(text)
            except ValueError:
                say("The answer is not valid JSON; --out holds the text.")
        if args.out:
            self.shell.user_ns[args.out] = value         # type: ignore[union-attr]
        if args.format == "code":
            self.shell.set_next_input(answer_code(text), replace=False)  # type: ignore[union-attr]

    def _cell_id(self) -> str | None:
        kernel = getattr(self.shell, "kernel", None)
        try:
            return kernel.get_parent()["metadata"].get("cellId") if kernel else None
        except Exception:       # not in a kernel that sends cell ids: no rewind
            return None

    def _mode(self) -> str:
        return display_mode(self.display_mode, self.shell)

    def _backend_notice(self) -> str | None:
        cassette = self.session.cassette
        if cassette is not None and cassette.mode != "record":
            return None
        if self.session.backend == "auto" and not self.session.has_credentials() \
                and self.session.once("local-backend"):
            return ("No Cloudflare credentials: answering with the embedded local model "
                    "(%cfai login or %cfai backend cloudflare to change).")
        return None

    # %cfai ---------------------------------------------------------------------------------
    @line_magic("cfai")  # type: ignore[arg-type]
    def cfai_line(self, line):
        """Settings, models and chats: %cfai COMMAND [ARGS]. Commands:"""
        args = _parse(LINE_PARSER, line)
        if args.command is None:
            return self._status()
        try:
            return getattr(self, "_cmd_" + args.command)(args)
        except CfaiError as err:
            raise one_line(err) from None

    def _status(self):
        s = self.session
        say(f"model {s.model} · backend {s.backend} · chats: {', '.join(s.store.names()) or '-'}"
              "  (%cfai? for the commands)")

    def _cmd_model(self, args):
        if args.name:
            self.session.model = args.name
        model = self.session.resolve(self.session.model)
        how = "" if self.session.settings.default_model else " (automatic for this backend)"
        say(f"Default model: {model.id}{how} · {model.summary()}"
            + (f"\n  {model.description}" if model.description else ""))

    def _cmd_models(self, args):
        from IPython.display import display

        from .tables import ModelTable
        catalog = self.session.catalog
        if args.refresh and not catalog.refresh(self.session.client()):
            say("Could not reach the model list; showing the built-in table.")
        text = (args.text or "").lower()
        try:
            current = self.session.resolve(self.session.model).id     # an alias is starred too
        except CfaiError:
            current = ""
        display(ModelTable([m for m in catalog if text in m.id.lower()], current))

    def _cmd_usage(self, args):
        self.session.settle()                # the live prices, if the list is still coming
        say(self.session.ledger.report())

    def _cmd_history(self, args):
        if args.name not in self.session.store:
            say(f"No conversation named {args.name!r} (%cfai chats lists them).")
            return
        conversation = self.session.store.get(args.name)
        if not conversation.messages():
            say(f"The conversation {args.name!r} is empty.")
        if conversation.system:
            say(f"system: {shown(conversation.system)}")
        for t in list(conversation.turns):
            for m in t.as_messages():
                say(f"{m['role']}: {shown(m.get('content'))}")
            if t.interrupted:
                say("  (⏹ interrupted: the answer is what had arrived when it was stopped)")

    def _cmd_reset(self, args):
        names = self.session.store.reset(None if args.all else args.name)
        say(f"Reset: {', '.join(names) or 'nothing to reset'}.")

    def _cmd_chats(self, args):
        store = self.session.store
        if not store.names():
            say("No conversations yet.")
        for name in store.names():
            n = len(store.get(name).turns)
            say(f"{name}: {n} turn{'s' if n != 1 else ''}")

    def _cmd_save(self, args):
        path = self.session.store.save(args.file)
        say(f"Saved {len(self.session.store.names())} conversations to {_shown(path)}")

    def _cmd_load(self, args):
        path, names, skipped = self.session.store.load(args.file)
        say(f"Loaded {', '.join(names) or 'no conversations'} from {_shown(path)}"
            + (f"; skipped {len(skipped)} damaged: {'; '.join(skipped)}" if skipped else ""))

    def _cmd_login(self, args):
        account = getpass.getpass("Cloudflare account id (hidden): ")
        token = Secret(getpass.getpass("Cloudflare API token (hidden): ").strip())
        if not token:
            say("No token given; nothing changed.")
            return
        self.session.login(account, token)
        say("Credentials set for this kernel only (not saved anywhere).")

    def _cmd_config(self, args):
        for key, value in self.session.describe().items():
            say(f"{key:18} {value}")

    def _cmd_backend(self, args):
        if args.gateway_url and not args.gateway:
            raise UsageError("--gateway-url goes with --gateway NAME")
        gateway = "" if args.no_gateway else args.gateway
        form = ("url" if args.gateway_url else "header") if args.gateway else None
        if args.name or args.protocol or args.key_env or gateway is not None:
            self.session.set_backend(args.name or self.session.backend, args.protocol,
                                     args.key_env, gateway, form)
        chooser = self.session.chooser
        protocol, key = self.session.protocol, chooser.key_env
        via = ""
        if chooser.gateway and chooser.resolved() != "local":
            via = (f", through AI Gateway {chooser.gateway} ("
                   + ("its own URL" if chooser.gateway_form == "url"
                      else "cf-aig-gateway-id header") + ")")
        say(f"Backend: {self.session.backend}"
            + (f" (protocol {protocol})" if protocol != "workers-ai" else "")
            + (f", key from {key}" if key else "") + via)
        if self.session.chooser.resolved() == "local":
            from .local import runtime
            say(f"Local model: {runtime.whose(runtime.record_path())} (cfai-local status "
                "shows whether it runs, and every other one)")

    def _cmd_fix(self, args):
        from .context import fix_prompt
        prompt, _ = fix_prompt(self.shell, args.cell, self.session)
        return self._ask_about(prompt, args.model, fmt="code")

    def _cmd_explain(self, args):
        from .context import explain_prompt
        model = self.session.resolve(args.model or self.session.model)
        prompt, _ = explain_prompt(self.shell, args.cell, budget_for(model, self.value_budget),
                                   self.session)
        return self._ask_about(prompt, args.model)

    def _ask_about(self, prompt: str, model: str | None, fmt: str = "markdown"):
        """fix and explain: the prompt asked as a --once cell (its braces sent as written);
        with ``fmt="code"`` the answer's code goes into a new cell below."""
        line = ["--once", "--no-vars", "-f", fmt] + (["-m", model] if model else [])
        return self._ask(self.cfai_cell.parser.parse_args(line), prompt)

    def _cmd_panel(self, args):
        from IPython.display import display

        from .widget import ChatPanel
        display(ChatPanel(chat=args.chat, session=self.session))

    def _cmd_insert(self, args):
        code = self.session.pending_code
        if code is None:
            last = self.shell.user_ns.get("_cfai")
            code = answer_code(last) if last else None
        if not code:
            say("No answer yet: run a %%cfai cell or pick an answer in the panel first.")
            return
        self.session.pending_code = None
        self.shell.set_next_input(code, replace=False)

    def _cmd_record(self, args):
        from .cassette import Cassette
        self.session.cassette = Cassette(args.path, "record")
        say(f"Recording answers into {args.path}")

    def _cmd_replay(self, args):
        from .cassette import Cassette
        cassette = Cassette(args.path, "auto" if args.auto else "replay")
        self.session.cassette = cassette
        say(f"Replaying answers from {args.path}"
              + (", recording what it lacks" if args.auto else " (no network)"))
        if cassette.report():
            say(cassette.report())

    def _cmd_cassette(self, args):
        if args.state == "off":
            self.session.cassette = None
        cassette = self.session.cassette
        say(f"Cassette: {cassette or 'off'}")
        if cassette is not None and cassette.report():
            say(cassette.report())

    # completion -------------------------------------------------------------------------------
    def completions(self, text_until_cursor: str) -> tuple[str, list[str]] | None:
        """Tab completion: (the word typed, its candidates) for model ids after -m/--model and
        %cfai model, commands after %cfai; None on a line that is not ours."""
        words = text_until_cursor.split()
        if not words or words[0] not in ("%cfai", "%%cfai"):
            return None
        typed = "" if text_until_cursor.endswith((" ", "\t")) else words[-1]
        before = words[:-1] if typed else words
        if before and before[-1] in ("-m", "--model") or before[-2:] == ["%cfai", "model"]:
            candidates = self.session.catalog.names()
        elif before == ["%cfai"]:
            candidates = sorted(_commands())
        else:
            return None
        return typed, [c for c in candidates if c.startswith(typed)]


def _shown(path) -> str:
    """A path as the user would write it: relative when it is under the working directory."""
    import os
    rel = os.path.relpath(path)
    return rel if not rel.startswith("..") else str(path)


def _commands() -> dict:
    """The %cfai subcommands: name → its parser."""
    return LINE_PARSER._subparsers._group_actions[0].choices  # type: ignore[union-attr,return-value]


def _line_help() -> str:
    parts = [CfaiMagics.cfai_line.__doc__ or "", ""]
    for p in _commands().values():
        parts.append(f"  {_usage(p)}\n      {p.description}")
    return "\n".join(parts)


CfaiMagics.cfai_line.__doc__ = _line_help()  # type: ignore[assignment]   # IPython's decorator
