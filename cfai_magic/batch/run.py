"""The batch's workers: each row is one turn (turn.execute: the one place where a fault becomes
one line), sent by a pool of threads sharing one client, one connection pool and one limiter.

A row that fails keeps its error and leaves a missing value; 3036 (the day's allocation used)
stops the batch, keeping what was answered; ``cancel`` (an interrupt) ends it at once.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from .. import turn
from ..errors import CfaiError, QuotaExceeded
from ..usage import cost_of

FIRST_FAILURES = 5        # failed rows, none answered yet, before a batch stops trying


def _first_failures(err: CfaiError) -> CfaiError:
    return CfaiError(f"the first {FIRST_FAILURES} rows sent all failed, the last with: {err}",
                     hint="Fix that and run the same call again")


NULL = turn._Quiet()     # a batch shows progress, not each answer (and asks no one)


@dataclass
class Job:
    index: int
    key: str | None = None
    prepared: turn.Prepared | None = None
    error: str | None = None          # refused before sending (bad input, too long)


@dataclass
class Stats:
    total: int = 0
    before: int = 0                   # answered by an earlier run (kept answers)
    answered: int = 0                 # in this run
    failed: int = 0
    tokens: int = 0
    usd: float = 0.0
    priced: bool = False
    estimated: bool = False
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None
    state: str = ""                   # e.g. "2 requests queued" (the Batch API)
    pace: str = ""                    # e.g. "paced at 20/min, <model>'s limit"
    per_minute: float | None = None   # the limiter's rate, for the time left

    def time_left(self) -> float | None:
        """Seconds the rows not yet sent need at the limiter's rate (the least they take)."""
        if not self.per_minute:
            return None
        return (self.total - self.done) * 60.0 / self.per_minute

    @property
    def done(self) -> int:
        return self.before + self.answered + self.failed

    def elapsed(self) -> float:
        return (self.ended or time.monotonic()) - self.started


class Run:
    def __init__(self, session, *, store, take, total: int):
        """``take(text)`` turns a complete answer into the row's value (or raises ValueError
        for an answer that does not parse). ``jobs`` are the rows to send, ``workers`` the
        threads that send them (set before :meth:`start`)."""
        self.session, self.store, self.take = session, store, take
        self.jobs: list[Job] = []
        self.workers = 1
        self.values: dict[int, object] = {}
        self.errors: dict[int, str] = {}
        self.texts: dict[int, str] = {}        # the text of an answer that did not parse
        self.stats = Stats(total=total)
        self.cancel = threading.Event()
        self.finished = threading.Event()
        self.stopped: CfaiError | None = None  # why the batch stopped before its end
        self._lock = threading.Lock()
        self._next = 0
        self._running = 0
        self._open: set = set()                # answers being received (aborted on Stop)

    def start(self) -> Run:
        if not self.jobs:
            self.finished.set()
            return self
        self._running = self.workers
        for n in range(self.workers):
            threading.Thread(target=self._work, name=f"cfai-map-{n}", daemon=True).start()
        return self

    def stop(self) -> None:
        """From the kernel's thread: end now; answers under way are dropped."""
        self.cancel.set()
        with self._lock:
            answers = list(self._open)
        for answer in answers:
            answer.abort()
        self.stats.ended = time.monotonic()

    def _take_job(self) -> Job | None:
        with self._lock:
            if self.cancel.is_set() or self.stopped is not None or self._next >= len(self.jobs):
                return None
            job = self.jobs[self._next]
            self._next += 1
            return job

    def _work(self) -> None:
        try:
            self._loop()
        finally:
            with self._lock:
                self._running -= 1
                last = self._running == 0
            if last:
                self.stats.ended = self.stats.ended or time.monotonic()
                self.finished.set()

    def _loop(self) -> None:
        while (job := self._take_job()) is not None:
            self._row(job)

    def _row(self, job: Job) -> None:
        if job.error is not None:
            self.failed(job.index, job.error)
            return
        assert job.prepared is not None           # a job is refused or prepared
        answer = turn.execute(self.session, job.prepared, NULL, cancel=self.cancel,
                              on_stream=self._opened)
        with self._lock:
            self._open.discard(answer)
        self.count(answer)
        if answer.done:
            self.done(job, answer)
        elif isinstance(answer.error, QuotaExceeded):
            with self._lock:
                self.stopped = self.stopped or answer.error
        elif answer.error is not None and not self.cancel.is_set():
            self.failed(job.index, str(answer.error))
            with self._lock:          # the same fault on every row: say so, do not send them all
                if not self.stats.answered and self.stats.failed >= FIRST_FAILURES:
                    self.stopped = self.stopped or _first_failures(answer.error)

    def done(self, job: Job, answer) -> None:
        """A complete answer: kept (even after Stop: it was paid for), and the row's value."""
        self.store.put(job.key, {"text": answer.text, "usage": answer.usage or {}})
        if not self.cancel.is_set():
            self._answered(job.index, answer.text)

    def _opened(self, answer) -> None:
        with self._lock:
            self._open.add(answer)
        if self.cancel.is_set():
            answer.abort()

    def _answered(self, index: int, text: str, before: bool = False) -> None:
        try:
            value = self.take(text)
        except ValueError as err:
            self.failed(index, str(err)[:1].upper() + str(err)[1:], text)
            return
        with self._lock:
            self.values[index] = value
            if before:
                self.stats.before += 1
            else:
                self.stats.answered += 1

    def kept(self, index: int, text: str) -> None:
        """A row answered by an earlier run."""
        self._answered(index, text, before=True)

    def failed(self, index: int, line: str, text: str | None = None) -> None:
        with self._lock:
            self.errors[index] = line
            if text is not None:
                self.texts[index] = text
            self.stats.failed += 1

    def count(self, answer) -> None:
        usage = answer.usage or {}
        model = self.session.catalog.get(answer.model)
        cost = cost_of(model, answer) if model is not None else None
        with self._lock:
            self.stats.tokens += (usage.get("prompt_tokens") or 0) + \
                (usage.get("completion_tokens") or 0)
            if cost:
                self.stats.usd += cost["usd"]
                self.stats.priced = True
                self.stats.estimated |= not cost["billed"]
