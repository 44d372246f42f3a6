"""Which failures are retried, how often, and how long the client waits."""
import socket

import pytest

from cfai_magic import errors
from cfai_magic.client import WorkersAI


@pytest.mark.parametrize("status,code,cls", [
    (503, None, errors.ServerError), (500, None, errors.ServerError),
    (408, 3007, errors.RequestTimeout), (429, 3040, errors.RateLimited)])
def test_transient_errors_are_retried_then_succeed(client, fake_workers_ai, status, code, cls):
    fake_workers_ai.enqueue(status=status, code=code, times=2)
    fake_workers_ai.enqueue("finally")
    assert client.run("llama2", prompt="x").text == "finally"
    assert client.transport.attempts == 3 and len(fake_workers_ai.requests) == 3


def test_retries_give_up_after_max_retries(fake_workers_ai):
    client = fake_workers_ai.client(max_retries=2)
    fake_workers_ai.enqueue(status=502, times=5)
    with pytest.raises(errors.ServerError):
        client.run("llama2", prompt="x")
    assert client.transport.attempts == 3
    assert len(fake_workers_ai.requests) == 3


def test_stream_is_retried_before_the_first_chunk(client, fake_workers_ai):
    fake_workers_ai.enqueue(status=503)
    fake_workers_ai.enqueue(["ok"])
    assert list(client.stream("llama2", prompt="x")) == ["ok"]
    assert client.transport.attempts == 2


@pytest.mark.parametrize("status,code,cls", [
    (401, 10000, errors.AuthError), (403, 10000, errors.AuthError),
    (429, 3036, errors.QuotaExceeded), (400, 5004, errors.InvalidRequest),
    (400, 3003, errors.InvalidRequest), (413, 3006, errors.InvalidRequest),
    (404, 7003, errors.AccountNotFound), (404, 3042, errors.ModelNotFound)])
def test_permanent_errors_are_not_retried(client, fake_workers_ai, status, code, cls):
    fake_workers_ai.enqueue(status=status, code=code, message="scripted", times=3)
    with pytest.raises(cls) as info:
        client.run("llama2", prompt="x")
    assert client.transport.attempts == 1 and len(fake_workers_ai.requests) == 1
    assert info.value.status == status and info.value.code == code
    assert str(info.value).startswith(f"scripted (HTTP {status}, code {code}). ")


def waits_of(client) -> list:
    """The waits the client decides on between attempts, in seconds (still waited)."""
    decided, decide = [], client.transport._retry_wait

    def recorded(*args):
        decided.append(decide(*args))
        return decided[-1]
    client.transport._retry_wait = recorded
    return decided


def test_retry_after_is_honoured(fake_workers_ai):
    client = fake_workers_ai.client(backoff=0.01)
    waits = waits_of(client)
    fake_workers_ai.enqueue(status=429, code=3040, retry_after=1.2)
    fake_workers_ai.enqueue("after the wait")
    assert client.run("llama2", prompt="x").text == "after the wait"
    first, second = fake_workers_ai.requests
    assert second.time - first.time >= 1.2
    [wait] = waits
    assert 1.2 <= wait <= 1.2 * 1.1                # the server's wait (spread), not the backoff's


def test_retry_after_too_long_is_raised_not_waited(fake_workers_ai):
    client = fake_workers_ai.client()
    waits = waits_of(client)
    fake_workers_ai.enqueue(status=429, code=3040, retry_after=3600)
    with pytest.raises(errors.RateLimited) as info:
        client.run("llama2", prompt="x")
    assert waits == [None] and len(fake_workers_ai.requests) == 1     # raised, not waited
    assert info.value.retry_after == 3600
    assert "try again in 3600 s" in str(info.value)


def test_backoff_grows_exponentially_with_jitter(fake_workers_ai):
    client = fake_workers_ai.client(backoff=0.1, max_retries=3)
    fake_workers_ai.enqueue(status=503, times=4)
    with pytest.raises(errors.ServerError):
        client.run("llama2", prompt="x")
    times = [r.time for r in fake_workers_ai.requests]
    gaps = [b - a for a, b in zip(times, times[1:])]
    # waits are backoff * 2**n * uniform(0.5, 1): 0.05-0.1, 0.1-0.2, 0.2-0.4
    for n, gap in enumerate(gaps):
        assert 0.1 * 2 ** n * 0.5 <= gap <= 0.1 * 2 ** n + 0.15


def test_connection_refused_is_retried_then_reported():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = WorkersAI("acct", "tok", base_url=f"http://127.0.0.1:{port}/client/v4",
                       max_retries=2, backoff=0.01)
    with pytest.raises(errors.ConnectionFailed) as info:
        client.run("llama2", prompt="x")
    assert client.transport.attempts == 3
    assert f"127.0.0.1:{port}" in str(info.value)
