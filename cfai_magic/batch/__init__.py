"""One prompt over many rows: ``cfai_magic.map(template, rows)`` and ``%%cfai --map ROWS``.

Wiring only: rows.py (input and output shapes), store.py (answers kept), pace.py (the
limiter), run.py (the workers), progress.py (the bar and the summary), schema.py (structured
answers), queue.py (Cloudflare's asynchronous Batch API).
"""
from __future__ import annotations

import time
from collections import ChainMap

from .. import safe, turn
from ..errors import CfaiError, InputError
from ..parsing import field_names, parse_cell
from .pace import Limiter
from .progress import Progress, summary
from .rows import Rows
from .run import Job, Run
from .schema import Schema
from .store import key as answer_key
from ..tools import Toolbox, as_tools

RATE_LIMIT_RETRIES = 20              # a 429 pauses everyone and is retried this often
BIG_JOB = 1000                       # rows from which the Batch API is suggested
MANY_ROWS = 10_000                   # rows from which preparing them is said (it takes seconds)


class Batch:
    """What a batch did: ``.values`` (the answers in input order), ``.errors`` (a table of the
    failed rows), ``.summary``, ``.stats``. The last one is ``_cfai_batch`` in the notebook."""

    def __init__(self, table: Rows, run: Run, line: str, stopped=None, interrupted=False,
                 cache_failure: str | None = None):
        self._table, self._run = table, run
        self.cache_failure = cache_failure
        self.summary, self.stopped, self.interrupted = line, stopped, interrupted
        self.stats = run.stats
        self.values = [run.values.get(i) for i in range(len(table))]
        run.jobs = []                  # the prepared requests are not needed any more

    def __repr__(self) -> str:
        return self.summary

    @property
    def errors(self):
        """One row per failed input row: its label, the error line, and the answer's text when
        the answer came but did not parse (and a last row, labelled None, when the cache file
        could not be written). A DataFrame when pandas is installed."""
        labels = list(self._table.source.index) if self._table.kind else range(len(self._table))
        labels = list(labels)
        rows = [{"row": labels[i], "error": line, "answer": self._run.texts.get(i)}
                for i, line in sorted(self._run.errors.items())]
        if self.cache_failure:                # not a row's fault, but nothing to miss
            rows.append({"row": None, "error": self.cache_failure, "answer": None})
        try:
            import pandas as pd
        except ImportError:
            return rows
        return pd.DataFrame(rows, columns=["row", "error", "answer"])


def map(template: str, rows, *, model: str | None = None, system: str | None = None,
        max_tokens: int | None = None, temperature: float | None = None,
        top_p: float | None = None, top_k: int | None = None, seed: int | None = None,
        reasoning: str | None = None, no_think: bool = False, lora: str | None = None,
        raw: bool = False, schema=None,
        columns: bool = False, json_mode: bool = False, concurrency: int | None = None,
        rate="auto", cache=None, batch_api: bool = False, no_vars: bool = False,
        tools=None, max_steps: int = turn.MAX_STEPS, session=None,
        namespace: dict | None = None, mode: str | None = None):
    """Send ``template`` once per row and return the answers in input order.

    ``{field}`` in the template is filled from the row (a column of a DataFrame, a key of a
    dict, ``{row}`` for a string), then from the notebook's variables, exactly as in a %%cfai
    cell. Returns a list, or a Series on the input's index (``df["summary"] =
    cfai_magic.map("Summarise: {review}", df)``); a failed row is ``None`` and its error is in
    ``_cfai_batch.errors``. Running the same call again sends only the rows without an
    answer (kept per kernel, and in a file with ``cache=PATH``).

    ``schema=`` (a JSON Schema or a pydantic model) asks for JSON and returns parsed objects;
    with ``columns=True`` a DataFrame of the schema's properties. ``json_mode=True`` parses any
    JSON object. ``concurrency`` threads (default: sized for the backend); ``rate`` requests a
    minute (``"auto"``: the model's limit on Cloudflare, 300 for most and 20 for frontier
    models; no limit elsewhere; None: no limit). ``lora=`` runs a LoRA adapter (with
    ``raw=True`` to skip the chat template) on a base model that takes one.
    ``batch_api=True`` runs the rows on Cloudflare's asynchronous Batch API instead.
    ``tools=[f, g]`` lets the model call the notebook's functions for each row (the loop of a
    cell, ``max_steps`` rounds at most); rows run unattended, so no tool may ask to confirm.
    """
    from ..session import current
    session = session or current()
    if namespace is None:
        from ..session import user_namespace
        namespace = user_namespace()
    table = Rows(rows)
    _check_fields(template, table, no_vars)
    spec = session.resolve(model or session.model)
    shape = Schema(schema) if schema is not None else Schema.any() if json_mode else None
    if columns and (shape is None or not shape.names):
        raise InputError("columns=True needs schema= with properties (they become the columns)")
    params = turn.params(spec.id, max_tokens=max_tokens, temperature=temperature, top_p=top_p,
                         top_k=top_k, seed=seed, reasoning=reasoning, no_think=no_think,
                         lora=lora, raw=raw)
    if shape is not None:
        if spec.json_mode or session.wire.ANY_MODEL:
            params["response_format"] = shape.response_format()
        else:                                # no JSON mode: the schema goes in as words
            system = (system + "\n\n" if system else "") + shape.instruction()
    box = Toolbox(as_tools(tools))
    if any(t.confirm for t in box.tools):
        raise InputError("A batch runs its rows unattended: a tool marked confirm=True cannot "
                         "be used", hint="Mark it @cfai_magic.tool(confirm=False) for the batch")
    if box and batch_api:
        raise InputError("The Batch API answers each row once: it cannot run a tool loop",
                         hint="Run without batch_api=True to use tools")
    store = session.answers
    from .queue import QueuedRun
    run = (QueuedRun if batch_api else Run)(session, store=store, total=len(table),
                                            take=shape.parse if shape else str)
    i = 0
    try:                         # preparing 100,000 rows takes seconds: an interrupt is kept
        if cache is not None:
            damaged = store.use_file(cache)
            if damaged:
                print(safe.plain(damaged))
        if len(table) >= MANY_ROWS:
            print(f"Preparing {len(table):,} rows…", flush=True)
        for i in range(len(table)):
            job = _job(session, template, table, i, spec, params, system, namespace, no_vars,
                       box, max_steps)
            kept = store.get(job.key) if job.key else None
            if kept and "text" in kept:
                run.kept(job.index, kept["text"])
            else:
                run.jobs.append(job)
    except KeyboardInterrupt:
        run.stats.ended = time.monotonic()
        line = (summary(run.stats, replayed=False) + f"\nInterrupted while preparing the rows "
                f"({i:,} of {len(table):,} read), before any was sent: run the same call "
                "again to send them.")
        out = (line, None, True)
    else:
        mode = mode or _mode(session)
        if batch_api:
            from .queue import QueuedRun, run_queued
            assert isinstance(run, QueuedRun)
            out = run_queued(session, spec, run, _watch, mode)
        else:
            out = _direct(session, spec, run, concurrency, rate, mode)
    batch = Batch(table, run, *out, cache_failure=store.failure if cache is not None else None)
    _publish(batch)
    print(safe.plain(batch.summary))
    if batch.cache_failure:
        print(safe.plain(batch.cache_failure))
    if columns and shape is not None:                  # checked above: columns need one
        return table.columns(batch.values, shape.names)
    return table.shape(batch.values)


def _shell():
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


last: Batch | None = None            # the last batch of this process (also _cfai_batch)


def _publish(batch: Batch) -> None:
    global last
    last = batch
    shell = _shell()
    if shell is not None:
        shell.user_ns["_cfai_batch"] = batch


def _check_fields(template: str, table: Rows, no_vars: bool) -> None:
    if no_vars:
        return
    if not field_names(template) & set(table.names):
        raise InputError("The template uses none of the rows' fields, so every row would ask "
                         "the same", hint="Write them in braces: " +
                         ", ".join("{" + n + "}" for n in table.names[:5]))


def _job(session, template, table, i, spec, params, system, namespace, no_vars, tools,
         max_steps) -> Job:
    """Row ``i`` as a prepared turn, or the one line saying why it cannot be sent."""
    try:
        # values as written: a row too long for the model fails alone (and is listed in
        # .errors) rather than being cut where no notice would say so
        parsed = parse_cell(template, ChainMap(table.fields(i), namespace), fill=not no_vars)
        ask = turn.Ask(spec, parsed, dict(params), once=True, system=system, stream=False,
                       tools=tools, max_steps=max_steps,            # waits when busy
                       gateway=session.gateway_options(None, "batch"))
        prepared = turn.prepare(session, ask)
    except CfaiError as err:
        return Job(i, error=str(err))
    return Job(i, answer_key(spec.id, prepared.request), prepared)


def _direct(session, spec, run: Run, concurrency, rate, mode):
    """Each row its own request, from a pool of threads."""
    client = session.client(print)
    spec = session.vet(spec, client, wait=True)       # its limits and prices first
    total = run.stats.total
    if total >= BIG_JOB and spec.batch and client.backend.queues and session.once("batch-api"):
        print(f"{total:,} rows: {spec.id} takes Cloudflare's Batch API, which runs them on "
              "Cloudflare's queue (pass batch_api=True)")
    run.workers = max(1, min(concurrency or client.backend.workers, len(run.jobs) or 1))
    transport = client.transport
    transport.pool(run.workers)
    per_minute = client.backend.per_minute(spec) if rate == "auto" else rate
    if rate == "auto" and per_minute and client.backend.rate and per_minute < client.backend.rate:
        run.stats.pace = f"paced at {per_minute:g}/min, {spec.id}'s limit"
        least = len(run.jobs) * 60.0 / per_minute
        print(safe.plain(f"{spec.id} takes {spec.limit()} on Cloudflare: {len(run.jobs):,} "
                         f"rows take at least {least / 60:.1f} min (rate= sets another pace)"))
    saved = transport.limiter, transport.rate_limit_retries
    transport.limiter = saved[0] or Limiter(per_minute)     # a batch already running: share
    run.stats.per_minute = transport.limiter.per_minute
    transport.rate_limit_retries = RATE_LIMIT_RETRIES
    try:
        return _watch(run, mode, client.backend.kind == "cassette")
    finally:
        transport.limiter, transport.rate_limit_retries = saved


def _watch(run: Run, mode: str, replayed: bool, poll: float = 0.2):
    """Run, showing progress, until done or interrupted; (summary, stopped, interrupted)."""
    progress = Progress(run.stats.total, run.stats.done, mode)
    interrupted = False
    run.start()
    try:
        while not run.finished.wait(poll):
            progress.show(run.stats)
    except KeyboardInterrupt:
        run.stop()
        interrupted = True
    stopped = run.stopped
    progress.close(run.stats, ok=not (interrupted or stopped or run.stats.failed))
    line = summary(run.stats, replayed=replayed, stopped=stopped, interrupted=interrupted)
    return line, stopped, interrupted


def _mode(session) -> str:
    from ..render import display_mode
    return display_mode(getattr(session.settings, "display_mode", "auto"), _shell())
