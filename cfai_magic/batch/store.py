"""Answers kept by request, so running a batch again sends only the rows without one.

Per kernel (the Session holds one :class:`Answers`), and with ``cache=PATH`` in a JSON Lines
file too, which survives a restart: one line per answer, appended as it comes, so an
interrupted or crashed batch loses at most the line being written (a broken line is skipped).
The key is a hash of the model and the whole request; prompts are not written to the file.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading

from ..errors import InputError


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
        self._file = None
        self._path = None

    def __len__(self) -> int:
        return len(self._kept)

    def use_file(self, path) -> None:
        """Read the answers in ``path`` (made if missing) and append new ones to it."""
        path = os.path.abspath(os.path.expanduser(str(path)))
        with self._lock:
            if path == self._path:
                return
            self._close()
            try:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "a+", encoding="utf-8") as f:
                    f.seek(0)
                    for line in f:
                        item = _item(line)
                        if item is not None:
                            self._kept[item.pop("key")] = item
                self._file = open(path, "a", encoding="utf-8")
            except OSError as err:
                raise InputError(f"Cannot use {path} as the batch cache ({err.strerror})",
                                 hint="Give cache= a path you can write") from None
            self._path = path

    def forget_file(self) -> None:
        with self._lock:
            self._close()

    def get(self, k: str) -> dict | None:
        with self._lock:
            return self._kept.get(k)

    def put(self, k: str, value: dict) -> None:
        with self._lock:
            self._kept[k] = value
            if self._file is not None:
                self._file.write(json.dumps({"key": k, **value}) + "\n")
                self._file.flush()

    def _close(self) -> None:
        if self._file is not None:
            self._file.close()
        self._file = self._path = None


def _item(line: str) -> dict | None:
    try:
        item = json.loads(line)
    except ValueError:
        return None
    ok = isinstance(item, dict) and isinstance(item.get("key"), str)
    return item if ok else None
