"""An append-only JSON Lines file shared by threads and by processes (kernels) on one machine.

Each append is one ``os.write`` of one whole line, under an exclusive ``flock`` of the file,
after reading what other writers appended since this one last looked; so writers never lose
each other's lines, and recording costs the same however long the file is. The file is opened
with ``O_NOFOLLOW``: a link planted at the path is refused, not followed. A line cut by a
crash (no newline at the end) is set apart with a newline before the next line is written,
and reported as damaged, never glued onto the next one.

An optional header (the first line) carries a ``generation``: :meth:`restart` empties the
file under a new one, and a writer that sees the generation change knows its lines are gone.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import threading
import uuid
from contextlib import contextmanager
from pathlib import Path

NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


class Damaged(ValueError):
    """A line that is not what it should be; ``line`` counts from 1 in the file."""

    def __init__(self, line: int, why: str):
        super().__init__(f"line {line}: {why}")
        self.line, self.why = line, why


class Journal:
    def __init__(self, path, *, write: bool, header_key: str | None = None, version: int = 0):
        self.path = Path(path)
        self.write = write
        self.header_key, self.version = header_key, version
        self.generation: str | None = None
        self._fd: int | None = None
        self._ino: int | None = None
        self._offset = 0                 # bytes of the file already read
        self._lines = 0                  # lines already read
        self._reopened = False
        self._lock = threading.RLock()

    # files --------------------------------------------------------------------------------
    def _open(self) -> int:
        if self._fd is None:
            flags = (os.O_RDWR | os.O_CREAT | os.O_APPEND) if self.write else os.O_RDONLY
            fd = os.open(self.path, flags | NOFOLLOW | os.O_CLOEXEC, 0o644)
            self._fd, self._ino = fd, os.fstat(fd).st_ino
        return self._fd

    def _replaced(self) -> bool:
        """Whether the path now names another file (another kernel converted or replaced it)."""
        try:
            return os.stat(self.path, follow_symlinks=False).st_ino != self._ino
        except OSError:
            return True

    @contextmanager
    def locked(self, exclusive: bool):
        """The file, opened and locked; reopened first when the path names another file."""
        with self._lock:
            while True:
                fd = self._open()
                fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
                if not self._replaced():
                    break
                fcntl.flock(fd, fcntl.LOCK_UN)
                self.close()
                self._reopened = True
            try:
                yield fd
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
            self._fd = None

    # reading ----------------------------------------------------------------------------
    def read(self) -> tuple[list, list[Damaged], bool]:
        """What was appended since the last read: (items, damaged lines, started over). When
        the file was emptied or replaced, everything is read again and ``started over`` is
        true."""
        with self.locked(self.write) as fd:
            return self._read_locked(fd)

    def _read_locked(self, fd: int):
        size = os.fstat(fd).st_size
        restarted = self._reopened or size < self._offset or \
            bool(self.header_key and self._offset and self._header_changed(fd))
        self._reopened = False
        if restarted:
            self._offset = self._lines = 0
            self.generation = None
        data = os.pread(fd, size - self._offset, self._offset) if size > self._offset else b""
        items: list[dict] = []
        damaged: list[Damaged] = []
        end = data.rfind(b"\n") + 1
        whole, tail = data[:end], data[end:]
        for raw in whole.split(b"\n")[:-1]:
            self._lines += 1
            self._take(raw, items, damaged)
        self._offset += len(whole)
        if tail:                         # a line cut by a crash: set it apart, report it once
            self._lines += 1
            damaged.append(Damaged(self._lines, "cut short (the file was not fully written)"))
            self._offset += len(tail)
            if self.write:
                os.write(fd, b"\n")
                self._offset += 1
        return items, damaged, restarted

    def _take(self, raw: bytes, items: list, damaged: list) -> None:
        if not raw.strip():
            return
        try:
            item = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as err:
            damaged.append(Damaged(self._lines, f"not UTF-8 text (byte {err.start + 1})"))
            return
        except (ValueError, RecursionError):
            damaged.append(Damaged(self._lines, "not JSON"))
            return
        if self.header_key and isinstance(item, dict) and self.header_key in item:
            self.generation = item.get("generation")
            return
        items.append((self._lines, item))

    def _header_changed(self, fd: int) -> bool:
        if self.generation is None:
            return False
        first = os.pread(fd, 512, 0).split(b"\n", 1)[0]
        try:
            return json.loads(first).get("generation") != self.generation
        except (ValueError, AttributeError):
            return True

    # writing ----------------------------------------------------------------------------
    def append(self, item, on_read=None) -> None:
        """Append one item (JSON-able). ``on_read(items, damaged, restarted)`` first receives
        what others appended (under the same lock). Raises OSError (a full disk, a link)."""
        with self.locked(True) as fd:
            news = self._read_locked(fd)
            extra = on_read(*news) if on_read is not None else None
            if self.header_key and self.generation is None:
                self._write(fd, self._header_line())
            for more in extra or ():
                self._write(fd, _line(more))
            self._write(fd, _line(item))

    def _write(self, fd: int, line: bytes) -> None:
        written = os.write(fd, line)
        if written < len(line):          # a short write: the disk filled up mid-line
            try:
                os.ftruncate(fd, os.fstat(fd).st_size - written)    # no half line left
            except OSError:
                pass
            raise OSError(28, os.strerror(28))
        self._offset += written
        self._lines += 1

    def _header_line(self) -> bytes:
        self.generation = uuid.uuid4().hex[:12]
        header = {self.header_key: self.version, "generation": self.generation}
        return (json.dumps(header) + "\n").encode()

    def restart(self) -> None:
        """Empty the file under a new generation (recording afresh)."""
        with self.locked(True) as fd:
            os.ftruncate(fd, 0)
            self._offset = self._lines = 0
            self.generation = None
            if self.header_key:
                self._write(fd, self._header_line())


    def convert(self, still_old, items) -> None:
        """Replace the file (in another format) with a header and these items, under the lock,
        if ``still_old()`` says no other process converted it first."""
        with self.locked(True):
            if still_old():
                self.generation = None
                write_whole(self.path, [self._header_line(), *(_line(x) for x in items)])
        self.close()
        self._offset = self._lines = 0
        self.generation = None


def why(err: OSError) -> str:
    """An OSError in the words of a one-line message (a refused link said as such)."""
    if err.errno == errno.ELOOP:
        return "it is a symbolic link (refused, so a planted link cannot redirect recordings)"
    return err.strerror or str(err)


def _line(item) -> bytes:
    return (json.dumps(item, ensure_ascii=False, sort_keys=True) + "\n").encode()


def write_whole(path: Path, lines: list[bytes]) -> None:
    """Replace ``path`` with these lines at once (a new file beside it, then a rename; a link
    at the path is replaced, never followed)."""
    import tempfile
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.writelines(lines)
        try:
            os.chmod(tmp, os.stat(path, follow_symlinks=False).st_mode & 0o777)
        except OSError:
            pass
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
