"""Answers kept by request, so running a batch again sends only the rows without one.

Per kernel (the Session holds one :class:`Answers`), and with ``cache=PATH`` in a JSON Lines
file too, which survives a restart: one line per answer, appended as it comes through the
journal (a lock shared with other kernels, a cut line set apart), so an interrupted or crashed
batch loses at most the line being written. A damaged line is skipped and reported. When the
file cannot be written (a full disk) the answers are kept in memory and :attr:`failure` says
why, once. The key is a hash of the model and the whole request; prompts are not written.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading

from ..errors import InputError
from ..journal import Journal, why


def key(model: str, request: dict) -> str:
    """A request's key (images by digest, so the key and the file stay small)."""
    from ..images import digested
    data = json.dumps({"model": model, "request": digested(request)}, sort_keys=True,
                      default=str)
    return hashlib.sha256(data.encode()).hexdigest()[:32]


class Answers:
    def __init__(self):
        self._kept: dict[str, dict] = {}
        self._lock = threading.Lock()
        self._journal: Journal | None = None
        self._path = None
        self.failure: str | None = None     # why the file stopped being written, once
        self.problems: list[str] = []       # damaged lines read from the file

    def __len__(self) -> int:
        return len(self._kept)

    def use_file(self, path) -> str | None:
        """Read the answers in ``path`` (made if missing) and append new ones to it; returns
        one line on damaged lines skipped, if any."""
        path = os.path.abspath(os.path.expanduser(str(path)))
        with self._lock:
            if path == self._path:
                return None
            self._close()
            self.problems = []
            try:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                journal = Journal(path, write=True)
                self._take(*journal.read())
            except OSError as err:
                raise InputError(f"Cannot use {path} as the batch cache ({why(err)})",
                                 hint="Give cache= a path you can write") from None
            self._journal, self._path = journal, path
            if not self.problems:
                return None
            n = len(self.problems)
            return (f"Skipped {n} damaged line{'s' if n > 1 else ''} of "
                    f"{os.path.basename(path)} ({self.problems[0]}"
                    f"{f'; and {n - 1} more' if n > 1 else ''}); those rows are sent again.")

    def _take(self, items, damaged, restarted=False) -> None:
        from ..shapes import problem
        found = [(d.line, d.why) for d in damaged]
        for line, item in items:
            why = problem("kept", item)
            if why:
                found.append((line, why))
            else:
                self._kept[item.pop("key")] = item
        self.problems += [f"line {n}: {why}" for n, why in sorted(found)]

    def forget_file(self) -> None:
        with self._lock:
            self._close()

    def get(self, k: str) -> dict | None:
        with self._lock:
            return self._kept.get(k)

    def put(self, k: str, value: dict) -> None:
        """Keep an answer; never raises: a file that cannot be written is noted once and the
        answers stay in memory."""
        with self._lock:
            self._kept[k] = value
            if self._journal is None or self.failure is not None:
                return
            try:
                self._journal.append({"key": k, **value}, on_read=self._others)
            except OSError as err:
                self.failure = (f"Cannot write the batch cache {os.path.basename(self._path)} "
                                f"({why(err)}): answers from here on are kept in this kernel "
                                "only")

    def _others(self, items, damaged, restarted) -> None:
        """What other kernels appended meanwhile: theirs to use too."""
        self._take(items, ())

    def _close(self) -> None:
        if self._journal is not None:
            self._journal.close()
        self._journal = self._path = None
        self.failure = None
