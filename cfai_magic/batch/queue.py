"""Cloudflare's asynchronous Batch API: rows submitted in requests under 10 MB to
``/ai/run/{model}?queueRequest=true``, each with an ``external_reference``; polled with backoff
by ``{"request_id"}`` until the responses come; each answer mapped back to its row.

A submitted request's id is kept with its rows (per kernel, and in ``cache=PATH``), so after an
interrupt or a restart the same call polls it again instead of submitting the rows twice.
"""
from __future__ import annotations

import json
import re
from typing import Any

from .. import turn
from ..client.answer import Answer
from ..errors import APIError, CfaiError, InputError, StreamError, Unexpected
from .run import Job, Run

MAX_BYTES = 9_000_000                 # under the Batch API's 10 MB, with room for the envelope
_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")
_REF = re.compile(r"row-(\d+)")


def request_id(value) -> str:
    """A request id from the service, checked before we send it back."""
    if not isinstance(value, str) or not _REQUEST_ID.fullmatch(value):
        raise StreamError("The Batch API answered without a usable request_id")
    return value


def chunks(items: list[dict], limit: int | None = None) -> list[list[int]]:
    """Positions of ``items`` grouped so each group's JSON stays under ``limit`` bytes."""
    limit = limit or MAX_BYTES
    groups: list[list[int]] = [[]]
    size = 2
    for i, item in enumerate(items):
        n = len(json.dumps(item, separators=(",", ":")).encode()) + 1
        if groups[-1] and size + n > limit:
            groups.append([])
            size = 2
        groups[-1].append(i)
        size += n
    return [g for g in groups if g]


class QueuedRun(Run):
    """A Run whose one worker submits and polls instead of sending each row."""
    poll_first = 1.0
    poll_max = 30.0
    client: Any = None             # set by run_queued before the worker starts
    spec: Any = None

    def _loop(self) -> None:
        try:
            self._queue()
        except CfaiError as err:
            self.stopped = self.stopped or err
        except Exception as exc:               # one line, like a turn's
            self.stopped = self.stopped or self.client.scrub(Unexpected.wrap(exc))

    def _queue(self) -> None:
        pending: dict[str, dict[str, Job]] = {}
        fresh = []
        for job in self.jobs:
            if job.error is not None:
                self.failed(job.index, job.error)
                continue
            kept = self.store.get(job.key) or {}
            if kept.get("request_id"):
                pending.setdefault(kept["request_id"], {})[f"row-{job.index}"] = job
            else:
                fresh.append(job)
        bodies = [self._body(job) for job in fresh]
        for group in chunks(bodies):
            if self.cancel.is_set():
                return
            result = self.client.queue(self.spec.id, {"requests": [bodies[i] for i in group]},
                                       self.cancel)
            rid = request_id(result.get("request_id"))
            refs = pending.setdefault(rid, {})
            for i in group:
                refs[f"row-{fresh[i].index}"] = fresh[i]
                self.store.put(fresh[i].key, {"request_id": rid})
            self.stats.state = f"{len(pending)} queued"
        self._poll(pending)

    def _body(self, job: Job) -> dict:
        assert job.prepared is not None           # rows refused early never reach here
        body = self.client.protocol.body(self.spec.id, job.prepared.request, False,
                                         self.spec.dialect)
        body.pop("stream", None)
        return {**body, "external_reference": f"row-{job.index}"}

    def _poll(self, pending: dict) -> None:
        delay = self.poll_first
        while pending:
            if self.cancel.wait(delay):
                return
            for rid in list(pending):
                try:
                    result = self.client.queue(self.spec.id, {"request_id": rid}, self.cancel)
                except APIError as err:            # an unknown or expired id: send them again
                    for job in pending.pop(rid).values():
                        self.store.put(job.key, {})
                        self.failed(job.index, f"The Batch API lost this row ({err}); run "
                                               "again to send it")
                    continue
                if "responses" in result:
                    self._collect(pending.pop(rid), result["responses"])
                else:
                    status = result.get("status")     # the server's word, shown in HTML
                    self.stats.state = f"{len(pending)} " + \
                        (status if status in ("queued", "running") else "waiting")
            delay = min(self.poll_max, delay * 1.5)
        self.stats.state = ""

    def _collect(self, refs: dict[str, Job], responses) -> None:
        jobs = list(refs.values())
        for item in responses if isinstance(responses, list) else ():
            if not isinstance(item, dict):
                continue
            job = refs.pop(str(item.get("external_reference")), None)
            if job is None and isinstance(item.get("id"), int) and 0 <= item["id"] < len(jobs):
                job = refs.pop(f"row-{jobs[item['id']].index}", None)
            if job is None:
                continue
            if item.get("success") is False:
                self.store.put(job.key, {})
                self.failed(job.index, "The Batch API could not answer this row: "
                            + _why(item.get("result")))
                continue
            self._answer(job, item.get("result"))
        for job in refs.values():
            self.store.put(job.key, {})
            self.failed(job.index, "The Batch API's answer left this row out; run again to "
                                   "send it")

    def _answer(self, job: Job, result) -> None:
        client = self.client

        def opener(a):                          # the answer came in the poll's responses
            a.opened(None, client.backend.label, None, False, billed=client.backend.billed)
            return client.protocol.Decoder().whole({"result": result}), iter(())
        assert job.prepared is not None
        answer = Answer(self.spec.id, job.prepared.request, stream=False, opener=opener)
        try:
            answer.consume()
            turn.check_text(answer)
        except CfaiError as err:
            self.store.put(job.key, {})
            self.failed(job.index, str(err))
            return
        self.session.ledger.add(answer, self.spec, None)
        self.count(answer)
        self.done(job, answer)


def _why(result) -> str:
    if isinstance(result, dict):
        errors = result.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            return " ".join(str(errors[0].get("message", "no reason given")).split())[:200]
        if result.get("error"):
            return " ".join(str(result["error"]).split())[:200]
    return "no reason given"


def run_queued(session, spec, run: QueuedRun, watch, mode: str):
    client = session.client(print)
    spec = session.vet(spec, client, wait=True)
    if not client.backend.queues:
        raise InputError(f"The {client.backend.label} backend has no Batch API",
                         hint="Run without batch_api=True")
    if not spec.batch:
        raise InputError(f"{spec.id} does not take the Batch API (no async_queue flag)",
                         hint="Use a model flagged batch in %cfai models, or run without "
                              "batch_api=True")
    run.client, run.spec = client, spec
    return watch(run, mode, False)
