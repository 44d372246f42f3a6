"""A stale backend record (left by kill -9 or a reboot) whose pid now belongs to an unrelated
process: nothing signals that process, and no kernel is handed the dead URL."""
import json
import os
import subprocess
import sys

import pytest

from cfai_magic import __version__
from cfai_magic.local import runtime


@pytest.fixture
def stranger():
    """An unrelated process that got the pid a dead backend recorded."""
    proc = subprocess.Popen(["sleep", "300"])
    yield proc
    proc.kill()
    proc.wait()


def plant(pid: int, version: str = __version__, started: str | None = "1") -> None:
    info = {"url": "http://127.0.0.1:9/client/v4", "token": "old-token-abcdefgh", "pid": pid,
            "model": "gemma", "version": version}
    if started is not None:
        info["started"] = started
    path = runtime.record_path()
    path.write_text(json.dumps(info))


@pytest.mark.parametrize("version, started", [(__version__, "1"), ("0.0.1", "1"),
                                              ("0.0.1", None)],
                         ids=["same-version", "other-version", "older-record-format"])
def test_cfai_local_stop_leaves_the_stranger_alone(stranger, version, started):
    plant(stranger.pid, version, started)
    assert not runtime.owns(runtime.read_record())
    done = subprocess.run([sys.executable, "-m", "cfai_magic.local", "stop"],
                          capture_output=True, text=True, timeout=60, env=dict(os.environ))
    assert done.stdout.strip() == "not running"
    assert stranger.poll() is None                    # alive
    assert not runtime.record_path().exists()         # the stale record is gone


@pytest.mark.parametrize("version", [__version__, "0.0.1"])
def test_a_kernels_start_up_starts_its_own_backend(stranger, version):
    plant(stranger.pid, version)
    info = runtime.ensure_backend(idle_timeout=60)
    try:
        assert info["pid"] != stranger.pid and info["url"] != "http://127.0.0.1:9/client/v4"
        assert runtime.owns(info) and runtime.answers(info)
        assert stranger.poll() is None
    finally:
        assert runtime.stop_backend()
    assert stranger.poll() is None
