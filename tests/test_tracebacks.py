"""No frame that can appear in a traceback or in %debug holds the token in a local whose repr
shows it: after failures in the client, the magic, the panel and a batch, under %xmode Verbose
and in the frames of sys.last_traceback."""
import gc
import re
import socket
import sys
import threading

import pytest

from cfai_magic import errors
from cfai_magic.client import WorkersAI
from cfai_magic.testing import FakeWorkersAI, Reply

TOKEN = "cf-token-never-in-a-frame-0123456789abcdef"


def frames_of(exc):
    """Every frame reachable from an exception: its traceback, and those it is chained to."""
    seen, stack = set(), [exc]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        tb = e.__traceback__
        while tb is not None:
            yield tb.tb_frame
            tb = tb.tb_next
        stack += [e.__cause__, e.__context__]


def leaks(frames) -> list[str]:
    found = []
    for frame in frames:
        for name, value in frame.f_locals.items():
            try:
                shown = repr(value)
            except Exception:
                continue
            if TOKEN in shown:
                found.append(f"{frame.f_code.co_filename}:{frame.f_code.co_name}: {name}")
    return found


def lingering() -> list[str]:
    """Frames of every exception still alive in the process (a panel's or a batch's errors)."""
    gc.collect()
    return leaks(f for obj in gc.get_objects() if issubclass(type(obj), BaseException)
                 for f in frames_of(obj))           # type(): a dead weak proxy raises otherwise


@pytest.fixture
def server(monkeypatch):
    with FakeWorkersAI(token=TOKEN) as fake:
        for key, value in fake.env().items():
            monkeypatch.setenv(key, value)
        yield fake



def closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/client/v4"


FAULTS = [Reply(status=401, code=10000), Reply(status=400, code=5004),
          Reply(text="a b c", drop_after=1), Reply(status=307, headers={"Location": "http://x/"})]


@pytest.mark.parametrize("fault", FAULTS, ids=["401", "400", "dropped", "redirect"])
def test_the_client(server, fault):
    server.enqueue(fault)
    with pytest.raises(errors.CfaiError) as info:
        list(WorkersAI(max_retries=0).stream("llama2", prompt="x"))
    assert leaks(frames_of(info.value)) == []
    assert sum(1 for _ in frames_of(info.value)) >= 4          # the frames were there to read


def test_the_client_when_nothing_answers(server, monkeypatch):
    monkeypatch.setenv("CFAI_BASE_URL", closed_port())
    with pytest.raises(errors.ConnectionFailed) as info:
        WorkersAI(max_retries=0).run("llama2", prompt="x")
    assert leaks(frames_of(info.value)) == []
    with pytest.raises(errors.ConfigError) as info:          # refused while constructing
        WorkersAI("acct", TOKEN, base_url="http://evil.example/client/v4")
    assert leaks(frames_of(info.value)) == []


def test_verbose_tracebacks_show_locals_but_not_the_token(server, shell, capsys):
    shell.run_line_magic("xmode", "Verbose")
    try:
        server.enqueue(status=401, code=10000)
        shell.run_cell("from cfai_magic import WorkersAI\n"
                    "WorkersAI(max_retries=0).run('llama2', prompt='x')")
        shown = capsys.readouterr()
        printed = re.sub(r"\x1b\[[0-9;]*m", "", shown.out + shown.err)
        assert "AuthError" in printed and "self = WorkersAI(" in printed   # locals are shown
        assert TOKEN not in printed
        assert leaks(frames_of(sys.last_value)) == []
    finally:
        shell.run_line_magic("xmode", "Context")


def test_the_magic_and_debug(server, shell, monkeypatch):
    server.enqueue(status=401, code=10000)
    shell.run_cell("%%cfai -m llama2\nhello")
    assert type(sys.last_value).__name__ == "AuthError"
    tb, frames = sys.last_traceback, []
    while tb is not None:                         # what %debug walks
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    assert len(frames) >= 4 and leaks(frames) == []
    assert leaks(frames_of(sys.last_value)) == []
    monkeypatch.setenv("CFAI_BASE_URL", closed_port())
    shell.run_cell("%%cfai -m llama2 --new\nagain")
    assert type(sys.last_value).__name__ == "ConnectionFailed"
    assert leaks(frames_of(sys.last_value)) == []


def test_the_panel_and_a_batch(server, shell):
    import cfai_magic
    from cfai_magic.widget import ChatPanel
    panel = ChatPanel(session=shell.magics_manager.registry["CfaiMagics"].session)
    server.enqueue(status=401, code=10000)
    worker = panel.submit("hello")
    worker.join(10)
    assert "AuthError" in panel.error.value
    server.enqueue(Reply(status=400, code=5004, times=10))
    cfai_magic.map("Say {row}", ["a", "b", "c"], model="llama2", mode="final", namespace={},
                   session=panel.session)
    assert len(cfai_magic.batch.last.errors) == 3
    assert lingering() == []
    assert not [t for t in threading.enumerate() if t.name.startswith("cfai-map")]
    panel.close()
