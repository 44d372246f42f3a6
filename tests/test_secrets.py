"""The token never shows: not in a repr, a str, an exception or a log record."""
import logging

import pytest

from cfai_magic import errors
from cfai_magic.client import WorkersAI
from cfai_magic.config import Credentials, Secret, credentials
from cfai_magic.testing import FakeWorkersAI, Reply

TOKEN = "sk-SECRET-do-not-leak-0123456789abcdef"


@pytest.fixture
def server():
    with FakeWorkersAI(token=TOKEN) as fake:
        yield fake


def texts(*objects):
    out = []
    for obj in objects:
        out += [repr(obj), str(obj)]
        if isinstance(obj, BaseException):
            out += [repr(a) for a in obj.args] + [str(vars(obj))]
    return out


def test_token_absent_everywhere(server, caplog):
    caplog.set_level(logging.DEBUG)
    client = WorkersAI(server.account_id, TOKEN, base_url=server.url, backoff=0.01, max_retries=1)
    seen = [client, client.transport, client.backend, client.backend.token, client._auth,
            Secret(TOKEN), credentials("a", TOKEN)]
    seen.append(client.run("llama2", prompt="hello"))
    stream = client.stream("llama2", prompt="hello")
    list(stream)
    seen.append(stream)
    received = []
    faults = [Reply(status=401, code=10000), Reply(status=500), Reply(status=429, code=3036),
              Reply(text="a b c", drop_after=1), Reply(text="a b", malformed_at=1),
              Reply(text="a", done=False, usage=False)]
    for fault in faults:
        server.enqueue(fault, Reply(status=500))
        with pytest.raises(errors.CfaiError) as info:
            list(client.stream("llama2", prompt="x"))
        seen.append(info.value)
        received += server.requests
        server.reset()
    with pytest.raises(errors.CfaiError) as info:
        WorkersAI(server.account_id, TOKEN, base_url="http://example.com/x")
    seen.append(info.value)
    joined = "\n".join(texts(*seen)) + "\n".join(r.getMessage() for r in caplog.records)
    joined += repr(received)
    assert TOKEN not in joined
    assert len(received) >= 6 and all(r.authorized for r in received)
    assert all("authorization" not in {k.lower() for k in r.headers} for r in received)


def test_a_server_echoing_the_token_cannot_leak_it(server):
    client = WorkersAI(server.account_id, TOKEN, base_url=server.url, max_retries=0)
    server.enqueue(status=400, code=5004, message=f"bad token {TOKEN} in header")
    with pytest.raises(errors.InvalidRequest) as info:
        client.run("llama2", prompt="x")
    assert TOKEN not in str(info.value) and "********" in str(info.value)
    assert TOKEN not in repr(info.value)


def test_secret_cannot_be_pickled():
    import pickle
    with pytest.raises(TypeError):
        pickle.dumps(Secret(TOKEN))
    with pytest.raises(TypeError):
        pickle.dumps(Credentials("a", Secret(TOKEN)))


def test_an_unexpected_errors_details_never_hold_the_token(server, monkeypatch):
    """The traceback kept for an unexpected exception is scrubbed like any error."""
    from IPython.core.interactiveshell import InteractiveShell

    from cfai_magic.client.protocols import workers_ai
    for key, value in server.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "cfai_magic")
    try:
        def leaky(self, obj):
            raise RuntimeError(f"something echoed {TOKEN}")
        with monkeypatch.context() as patch:
            patch.setattr(workers_ai.Decoder, "chunk", leaky)
            ip.run_cell("%%cfai -m llama2\nhi")
        error = ip.user_ns["_cfai_answer"].error
        assert type(error).__name__ == "Unexpected" and "something echoed" in error.details
        assert TOKEN not in error.details and TOKEN not in str(error)
    finally:
        ip.run_line_magic("unload_ext", "cfai_magic")
