"""The notebook as context: errors, other cells, and values rendered for a model to read.

- ``Err``: like IPython's ``Out``, filled by a post-run hook: ``Err[n]`` is cell n's exception
  as a model should read it (type, message, the failing line, a short traceback; never
  locals), ``{Err}`` the last one.
- :func:`for_model`: how ``{name}`` shows a value: a DataFrame as its shape, columns (dtype,
  nulls), first rows as a Markdown table and a numeric summary; a Series or a large array
  likewise; long text cut with a marker saying how much was left out; all within a budget.
  ``{name!r}`` and ``{name!s}`` ask for the plain value, as in f-strings.
- :func:`recent_cells`: the last code cells and their results (``--context N``); cells of this
  extension are left out (their questions and answers are in the chat history already).
- :func:`fix_prompt` and :func:`explain_prompt` (``%cfai fix``, ``%cfai explain``).

Nothing here sends a secret: a cell that ran ``%cfai login`` or whose text shows a known
credential is left out, and what is kept is scrubbed of every credential this kernel knows.
"""
from __future__ import annotations

import ast
import os
import sys
import traceback
from collections import deque
from dataclasses import dataclass, field

KEPT_CELLS = 200                # the cells remembered for --context, fix and explain
PRINTED = 16_000                # characters of what a cell prints that are kept (head + tail)
DESCRIBED = 3800                # characters a DataFrame, a Series or an array is described in
BUDGET = 200_000                # characters any one value may take, at most
TRACE_FRAMES = 4


def budget_for(model, cap: int | None = None) -> int:
    """Characters one value may take: half the model's context (about four characters a
    token), at most ``cap`` (the value_budget setting), at most :data:`BUDGET`."""
    from .catalog import context_of
    budget = context_of(model) * 2 if model is not None else BUDGET
    return max(500, min(budget, cap or BUDGET, BUDGET))


# secrets -------------------------------------------------------------------------------------
def known_secrets(session=None) -> list:
    """Every credential this kernel knows (as Secrets), to keep out of what is sent."""
    from .config import ENV_OPENAI_KEY, ENV_TOKEN, Secret
    found = [Secret(os.environ.get(name, "")) for name in (ENV_TOKEN, ENV_OPENAI_KEY,
                                                           "CFAI_LOCAL_TOKEN")]
    chooser = getattr(session, "chooser", None)
    if chooser is not None and chooser._token:
        found.append(chooser._token)
    if chooser is not None and chooser.key_env:
        found.append(Secret(os.environ.get(chooser.key_env, "")))
    return [s for s in found if len(s.reveal()) >= 8]


def scrub(text: str, secrets) -> str:
    for secret in secrets:
        text = secret.scrub(text)
    return text


def shows_secret(text: str, secrets) -> bool:
    return any(s.reveal() in text for s in secrets)


# values ---------------------------------------------------------------------------------------
def cut(text: str, budget: int) -> str:
    """``text`` within ``budget`` characters: its start and end, and how much is left out."""
    if len(text) <= budget:
        return text
    head, tail = budget * 2 // 3, budget // 4
    return (f"{text[:head]}\n[… {len(text) - head - tail:,} characters left out …]\n"
            f"{text[-tail:]}")


def for_model(value, budget: int = BUDGET) -> str:
    """A value as a model should read it, within ``budget`` characters."""
    if isinstance(value, ErrorRecord):
        return value.for_model()
    if isinstance(value, Errors):
        last = value.last
        return last.for_model() if last else "(no error yet in this notebook)"
    kind = type(value)
    module = kind.__module__ or ""
    small = min(budget, DESCRIBED)
    if module.startswith("pandas") and kind.__name__ == "DataFrame":
        return _frame(value, small)
    if module.startswith("pandas") and kind.__name__ == "Series":
        return _series(value, small)
    if module == "numpy" and kind.__name__ == "ndarray" and value.size > 20:
        return _array(value, small)
    return cut(value if isinstance(value, str) else str(value), budget)


def described(value) -> str | None:
    """What kind of description a value gets, for the notice (None: it is sent as it is)."""
    kind = type(value)
    module = kind.__module__ or ""
    if module.startswith("pandas") and kind.__name__ in ("DataFrame", "Series"):
        return f"a {kind.__name__} of {' × '.join(f'{n:,}' for n in value.shape)}"
    if module == "numpy" and kind.__name__ == "ndarray" and value.size > 20:
        return f"an array of shape {value.shape}"
    if isinstance(value, (ErrorRecord, Errors)):
        return "an error"
    return None


def _table(frame, digits: int = 4) -> str:
    """A small frame as a Markdown table (values rounded, long cells cut)."""
    def cell(v):
        text = f"{v:.{digits}g}" if isinstance(v, float) else str(v)
        return (text if len(text) <= 24 else text[:21] + "…").replace("|", "\\|")
    head = "| " + " | ".join(["", *map(str, frame.columns)]) + " |"
    rule = "|" + "---|" * (len(frame.columns) + 1)
    rows = ["| " + " | ".join([str(i), *(cell(v) for v in row)]) + " |"
            for i, row in zip(frame.index, frame.itertuples(index=False))]
    return "\n".join([head, rule, *rows])


def _fit(parts: list[str], budget: int) -> str:
    """The parts in order, as many as fit (the first always, cut if it must be)."""
    out: list[str] = []
    used = 0
    for part in parts:
        if out and used + len(part) + 2 > budget:
            out.append(f"[… {len(parts) - len(out)} more sections left out to fit the budget]")
            break
        out.append(part)
        used += len(part) + 2
    return cut("\n\n".join(out), budget)


def _frame(df, budget: int) -> str:
    rows, cols = df.shape
    nulls = df.isna().sum()
    columns = ", ".join(f"{c} ({t}" + (f", {int(nulls[c]):,} null" if nulls[c] else "") + ")"
                        for c, t in df.dtypes.items())
    parts = [f"DataFrame: {rows:,} rows × {cols} columns", f"Columns: {columns}"]
    shown = df.iloc[:3, :8]
    more = f" (the first {shown.shape[1]} of {cols} columns)" if cols > 8 else ""
    parts.append(f"First rows{more}:\n{_table(shown)}")
    numeric = df.select_dtypes("number")
    if numeric.shape[1]:
        summary = numeric.iloc[:, :8].describe().loc[["mean", "std", "min", "max"]].T
        more = f" (the first 8 of {numeric.shape[1]})" if numeric.shape[1] > 8 else ""
        parts.append(f"Numeric columns{more}:\n{_table(summary)}")
    return _fit(parts, budget)


def _series(s, budget: int) -> str:
    parts = [f"Series {s.name!r}: {len(s):,} values of {s.dtype}, {int(s.isna().sum()):,} null",
             "First values: " + ", ".join(map(str, s.head(8).tolist()))]
    if s.dtype.kind in "iuf" and len(s):
        d = s.describe()
        parts.append(f"mean {d['mean']:.4g}, std {d['std']:.4g}, min {d['min']:.4g}, "
                     f"max {d['max']:.4g}")
    return _fit(parts, budget)


def _array(a, budget: int) -> str:
    import numpy as np
    parts = [f"Array: shape {a.shape}, dtype {a.dtype}"]
    if a.dtype.kind in "iufb":
        parts.append(f"min {np.nanmin(a):.4g}, max {np.nanmax(a):.4g}, mean {np.nanmean(a):.4g}")
    parts.append("First values: " + np.array2string(a.ravel()[:12], precision=4,
                                                    separator=", "))
    return _fit(parts, budget)


# errors --------------------------------------------------------------------------------------
@dataclass
class ErrorRecord:
    """A cell's exception as a model should read it (never its locals)."""
    cell: int
    kind: str
    message: str
    line: str = ""
    trace: list[str] = field(default_factory=list)
    code: str = ""

    def __repr__(self) -> str:
        return f"Err[{self.cell}]: {self.kind}: {self.message[:80]}"

    def for_model(self) -> str:
        """As the model reads it: no cell number (the model needs none, and a number depends
        on how the notebook was run, so a recording would not replay)."""
        out = [f"{self.kind}: {self.message}"]
        if self.line:
            out.append(f"The failing line: {self.line}")
        if self.trace:
            out.append("Traceback (most recent call last, shortened):\n" + "\n".join(self.trace))
        return "\n".join(out)


@dataclass
class Ran:
    """One cell that ran: its number (as shown beside it), its source as written, its result
    and what it printed."""
    number: int
    code: str
    result: object = field(default=None, repr=False)
    failed: bool = False
    printed: str = field(default="", repr=False)
    private: bool = False          # it logs in or showed a credential: never sent


class Printed:
    """What a cell writes to stdout and stderr, in order: the first and the last characters
    of it (:data:`PRINTED` in all) and how many were left out between."""

    HEAD, TAIL = PRINTED * 3 // 4, PRINTED // 4

    def __init__(self):
        self.head: list[str] = []
        self.tail: list[str] = []
        self.used = self.tail_used = self.total = 0

    def add(self, text: str) -> None:
        self.total += len(text)
        if self.used < self.HEAD:
            keep = text[:self.HEAD - self.used]
            self.head.append(keep)
            self.used += len(keep)
            text = text[len(keep):]
        if text:
            self.tail.append(text)
            self.tail_used += len(text)
            if self.tail_used > 2 * self.TAIL:        # cut now and then, not every write
                kept = "".join(self.tail)[-self.TAIL:]
                self.tail, self.tail_used = [kept], len(kept)

    def text(self) -> str:
        head, tail = "".join(self.head), "".join(self.tail)[-self.TAIL:]
        left = self.total - len(head) - len(tail)
        return head + (f"\n[… {left:,} characters left out …]\n" if left else "") + tail


# What IPython itself writes about a cell in a terminal (its Out[n] and tracebacks): not the
# cell's printed text (the result and the error are kept apart). A kernel writes none of it.
_IPYTHON_WRITERS = {"write_output_prompt", "write_format_data", "finish_displayhook",
                    "_showtraceback", "show_usage_error"}


class _Tee:
    """sys.stdout or sys.stderr while a cell runs: everything goes on to the stream, and a copy
    of what the cell's code writes into a :class:`Printed`."""

    def __init__(self, stream, printed: Printed):
        self._stream, self._printed = stream, printed

    def write(self, text):
        if isinstance(text, str):
            caller = sys._getframe(1)
            if not (caller.f_code.co_name in _IPYTHON_WRITERS
                    and caller.f_globals.get("__name__", "").startswith("IPython.")):
                self._printed.add(text)
        return self._stream.write(text)

    def __getattr__(self, name):
        return getattr(self._stream, name)


class _KernelTee(_Tee):
    """The same in a kernel, where IPython writes nothing of its own to these streams: no
    look at who writes (a fifth of the time a printed line cost)."""

    def write(self, text):
        if isinstance(text, str):
            self._printed.add(text)
        return self._stream.write(text)


class Errors(dict):
    """``Err``: cell number → ErrorRecord; ``{Err}`` is the last one. It also keeps the cells
    that ran (``cells``): a kernel's own history misses those a front end runs without
    storing them, as nbval does."""

    def __init__(self):
        super().__init__()
        self.cells: deque[Ran] = deque(maxlen=KEPT_CELLS)
        self.last: ErrorRecord | None = None
        self.hooks: tuple = ()            # the shell events it listens to, to unregister

    def cell(self, number: int) -> Ran | None:
        return next((c for c in reversed(self.cells) if c.number == number), None)

    def __repr__(self) -> str:
        return f"Err: {len(self)} errors" + (f", the last {self.last!r}" if self else "")


def record(exc: BaseException, cell: int, code: str, secrets=()) -> ErrorRecord:
    """An exception of cell ``cell`` (whose code is ``code``) as a record, scrubbed."""
    every = traceback.extract_tb(exc.__traceback__)
    first = next((i for i, f in enumerate(every) if _in_cell(f.filename)), 0)
    frames = every[first:]                     # from the cell that ran, not IPython's own
    failing = (frames[0].line or "") if frames and _in_cell(frames[0].filename) else ""
    trace = [f"  {_where(f)}, in {f.name}: {f.line or ''}".rstrip() for f in
             frames[-TRACE_FRAMES:]]
    message = str(exc).split("\n")[0] if not _cfai(exc) else str(exc)
    return ErrorRecord(cell, type(exc).__name__, scrub(cut(message, 500), secrets),
                       scrub(failing.strip(), secrets),
                       [scrub(t, secrets) for t in trace], scrub(code, secrets))


def _cfai(exc) -> bool:
    from .errors import CfaiError
    return isinstance(exc, CfaiError)


def _in_cell(filename: str) -> bool:
    return "ipykernel" in filename or filename.startswith("<ipython-input") or \
        "/ipykernel_" in filename


def _where(frame) -> str:
    return "the cell" if _in_cell(frame.filename) else \
        f"{os.path.basename(frame.filename)}:{frame.lineno}"


def install(shell, session=None) -> Errors:
    """Fill ``Err`` as cells fail (a post-run hook, like Out); returns it."""
    errors = shell.user_ns.get("Err")
    if not isinstance(errors, Errors):
        errors = Errors()
        shell.user_ns["Err"] = errors
        shell.user_ns_hidden["Err"] = errors        # not listed by %who

    tees = []              # a stack: a cell may run a cell
    kind = _KernelTee if hasattr(shell, "kernel") else _Tee      # a kernel's shell has one

    def before(info):
        """Keep what the cell prints (not for this extension's own cells)."""
        printed = Printed()
        tee = (kind(sys.stdout, printed), kind(sys.stderr, printed), printed)
        tees.append(tee)
        if not ours(info.raw_cell or ""):
            sys.stdout, sys.stderr = tee[:2]

    def after(result):
        printed = ""
        if tees:
            out, err, kept = tees.pop()
            if sys.stdout is out:            # else the cell put its own in place: leave it
                sys.stdout = out._stream
            if sys.stderr is err:
                sys.stderr = err._stream
            printed = kept.text()
        exc = result.error_in_exec or result.error_before_exec
        cell = result.execution_count or shell.execution_count
        code = result.info.raw_cell if result.info is not None else ""   # as written
        secrets = known_secrets(session)
        private = _private(code, secrets) or shows_secret(printed, secrets)
        errors.cells.append(Ran(cell, code, result.result, exc is not None,
                                scrub(printed, secrets), private))
        if exc is None or isinstance(exc, KeyboardInterrupt):
            return
        errors[cell] = errors.last = record(exc, cell, code, secrets)
    shell.events.register("pre_run_cell", before)
    shell.events.register("post_run_cell", after)
    errors.hooks = (before, after)
    return errors


def uninstall(shell) -> None:
    errors = shell.user_ns.get("Err")
    for event, hook in zip(("pre_run_cell", "post_run_cell"), getattr(errors, "hooks", ())):
        try:
            shell.events.unregister(event, hook)
        except ValueError:
            pass


# cells ---------------------------------------------------------------------------------------
def _private(code: str, secrets) -> bool:
    """A cell that must never be sent: it logs in, or shows a credential."""
    return "cfai login" in code or shows_secret(code, secrets)


def ours(code: str) -> bool:
    """A cell of this extension (%%cfai, or only %cfai lines and loading it): a question, not
    context; the chat history already carries it and its answer."""
    lines = [line.strip() for line in code.splitlines() if line.strip()]
    return bool(lines) and (lines[0].startswith("%%cfai") or all(
        line.startswith(("%cfai", "%load_ext cfai_magic", "%reload_ext cfai_magic"))
        for line in lines))


def output_of(cell: Ran, budget: int) -> str:
    """What a cell printed, then its result, as a model should read them."""
    parts = [cut(cell.printed.rstrip(), budget)] if cell.printed.strip() else []
    if cell.result is not None:
        parts.append(for_model(cell.result, budget))
    return "\n".join(parts)


def errors_of(shell) -> Errors:
    """``Err`` (empty if the user has put something else under that name)."""
    errors = shell.user_ns.get("Err")
    return errors if isinstance(errors, Errors) else Errors()


def ran(shell) -> list[Ran]:
    """The cells that ran before this one, in order, ours left out."""
    return [c for c in errors_of(shell).cells if not ours(c.code)]


def recent_cells(shell, n: int, budget: int = BUDGET, session=None) -> tuple[str, int]:
    """The last ``n`` code cells before this one and their results, as context: (the text,
    how many cells it holds). Cells that log in or show a credential are left out."""
    secrets = known_secrets(session)
    errors = errors_of(shell)
    chosen: list = []
    for cell in reversed(ran(shell)):
        if len(chosen) >= n:
            break
        if not cell.code.strip() or cell.private or _private(cell.code, secrets):
            continue
        out = output_of(cell, budget // max(1, n))
        if shows_secret(out, secrets):
            continue
        error = errors.get(cell.number) if cell.failed else None
        chosen.append((cell.code, out, error))
    parts = []
    for code, out, error in reversed(chosen):      # no numbers: see ErrorRecord.for_model
        text = f"A cell:\n```python\n{scrub(cut(code, budget // max(1, n)), secrets)}\n```"
        if out:
            text += f"\nIts output:\n{scrub(out, secrets)}"
        if error is not None:                      # scrubbed when recorded
            text += f"\nIt failed: {error.kind}: {error.message}"
        parts.append(text)
    return "\n\n".join(parts), len(chosen)


def names_used(code: str) -> list[str]:
    """The names a cell reads, in order (its own assignments left in: they may be inputs too)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []
    seen = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id not in seen:
            seen.append(node.id)
    return seen


def variables(shell, code: str) -> str:
    """The notebook's variables a cell uses: name, type and shape (never their values)."""
    lines = []
    for name in names_used(code):
        if name not in shell.user_ns or name.startswith("_"):
            continue
        value = shell.user_ns[name]
        kind = type(value)
        if kind.__module__ == "builtins" and callable(value):
            continue
        shape = getattr(value, "shape", None)
        about = f"{kind.__module__}.{kind.__qualname__}".replace("builtins.", "")
        if shape is not None:
            about += f", shape {tuple(shape)}"
        elif isinstance(value, (list, dict, set, tuple, str)):
            about += f", length {len(value)}"
        lines.append(f"- {name}: {about}")
    return "\n".join(lines)


def _cell(shell, n: int | None, failed: bool, secrets) -> Ran:
    """Cell ``n`` as it ran, or the last one (that failed, with ``failed``); never one that
    must not be sent."""
    from .errors import InputError
    cells = [c for c in ran(shell) if c.failed or not failed]
    command = "fix" if failed else "explain"
    if n is not None:
        found = next((c for c in reversed(cells) if c.number == n), None)
        if found is None:
            raise InputError(f"No cell {n} {'failed' if failed else 'ran'} since the extension "
                             "was loaded", hint="In[n] numbers are the ones beside the cells")
    elif not cells:
        raise InputError("No cell has failed yet" if failed else "No cell has run yet",
                         hint=f"Give a cell number: %cfai {command} 3")
    else:
        found = cells[-1]
    if found.private or _private(found.code, secrets):
        raise InputError(f"Cell {found.number} logs in or shows a credential; it is never sent")
    return found


def fix_prompt(shell, n: int | None, session=None) -> tuple[str, int]:
    """What ``%cfai fix`` sends: the cell's code, its error, the variables it uses."""
    secrets = known_secrets(session)
    cell = _cell(shell, n, True, secrets)
    parts = ["This notebook cell fails. Explain briefly why, then give the corrected cell as "
             "one ```python block.", f"```python\n{scrub(cell.code, secrets)}\n```"]
    error = errors_of(shell).get(cell.number)
    if error is not None:
        parts.append(error.for_model())
    used = variables(shell, cell.code)
    if used:
        parts.append("The notebook's variables it uses:\n" + used)
    return "\n\n".join(parts), cell.number


def explain_prompt(shell, n: int | None, budget: int = BUDGET, session=None) -> tuple[str, int]:
    """What ``%cfai explain`` sends: the cell's code and its result (or its error)."""
    secrets = known_secrets(session)
    cell = _cell(shell, n, False, secrets)
    parts = ["Explain what this notebook cell does, and what its output shows.",
             f"```python\n{scrub(cell.code, secrets)}\n```"]
    out = output_of(cell, budget)
    if out and not shows_secret(out, secrets):
        parts.append(f"Its output:\n{scrub(out, secrets)}")
    error = errors_of(shell).get(cell.number) if cell.failed else None
    if error is not None:
        parts.append(error.for_model())
    return "\n\n".join(parts), cell.number
