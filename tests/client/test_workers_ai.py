"""WorkersAI against FakeWorkersAI over real HTTP on 127.0.0.1."""
import threading
import time

import pytest

from cfai_magic import errors
from cfai_magic.client import WorkersAI
from cfai_magic.testing import Reply, wait_for

MESSAGES = [{"role": "system", "content": "You are a friendly assistant"},
            {"role": "user", "content": "What is the origin of the phrase Hello, World"}]


def test_run_prompt_sends_the_documented_body(client, fake_workers_ai):
    fake_workers_ai.enqueue("Once upon a time")
    result = client.run("@cf/meta/llama-2-7b-chat-int8", prompt="Tell me a story", max_tokens=64)
    assert result.text == "Once upon a time"
    assert result.usage == {"prompt_tokens": 4, "completion_tokens": 4, "total_tokens": 8}
    req = fake_workers_ai.last
    assert req.path.endswith(f"/accounts/{fake_workers_ai.account_id}/ai/run/"
                             "@cf/meta/llama-2-7b-chat-int8")
    assert req.body == {"prompt": "Tell me a story", "stream": False, "max_tokens": 64}
    assert req.authorized


def test_run_messages_and_extra_params(client, fake_workers_ai):
    fake_workers_ai.enqueue("It comes from a 1972 tutorial.")
    result = client.run("mistral", messages=MESSAGES, temperature=0.2, seed=7, top_p=None)
    assert result.text == "It comes from a 1972 tutorial."
    assert result.model == "@cf/mistral/mistral-7b-instruct-v0.1"
    assert fake_workers_ai.last.body == {"messages": MESSAGES, "stream": False,
                                         "temperature": 0.2, "seed": 7}


def test_stream_yields_chunks_and_usage(client, fake_workers_ai):
    fake_workers_ai.enqueue(["The", " origin", " of", " it"])
    stream = client.stream("llama2", messages=MESSAGES)
    assert list(stream) == ["The", " origin", " of", " it"]
    assert stream.text == "The origin of it" and stream.done
    assert stream.usage["completion_tokens"] == 4
    assert stream.backend == "fake"
    assert fake_workers_ai.last.body["stream"] is True
    assert stream._response.headers["Transfer-Encoding"] == "chunked"    # as the live service


def test_stream_without_usage_event(client, fake_workers_ai):
    fake_workers_ai.enqueue(chunks=["a", "b"], usage=False)
    stream = client.stream("llama2", prompt="x")
    assert "".join(stream) == "ab" and stream.usage is None


@pytest.mark.parametrize("reply", [
    Reply(text="héllo wörld ✓ 日本語 🎉 done", split=1),                 # every byte its own read
    Reply(text="héllo wörld ✓ 日本語 🎉 done", split=3, crlf=True),      # \r\n cut apart
    Reply(text="héllo wörld ✓ 日本語 🎉 done", comments=True, extra={"p": "abc", "x": 1}),
    Reply(text="héllo wörld ✓ 日本語 🎉 done", split=7, crlf=True, comments=True),
], ids=["split1", "split3-crlf", "comments-extra", "split7-crlf-comments"])
def test_stream_tolerates_framing(client, fake_workers_ai, reply):
    fake_workers_ai.enqueue(reply)
    assert "".join(client.stream("llama2", prompt="x")) == "héllo wörld ✓ 日本語 🎉 done"


def test_empty_responses_are_skipped(client, fake_workers_ai):
    fake_workers_ai.enqueue(chunks=["", "a", "", "b", ""])
    assert list(client.stream("llama2", prompt="x")) == ["a", "b"]


def test_very_large_answer(client, fake_workers_ai):
    fake_workers_ai.enqueue(Reply.large(100_000, "tok "))
    stream = client.stream("llama2", prompt="x")
    assert sum(1 for _ in stream) == 100_000
    assert stream.text == "tok " * 100_000
    fake_workers_ai.enqueue(Reply.large(20_000, "tok "))
    assert client.run("llama2", prompt="x").text == "tok " * 20_000


def test_slow_drip_arrives_piece_by_piece(client, fake_workers_ai):
    fake_workers_ai.enqueue(chunks=["a", "b", "c", "d"], drip=0.15)
    arrivals = []
    for _ in client.stream("llama2", prompt="x"):
        arrivals.append(time.monotonic())
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
    assert len(gaps) == 3 and min(gaps) > 0.1


def test_delay_before_first_byte_is_waited_for(client, fake_workers_ai):
    fake_workers_ai.enqueue("late answer", delay=0.5)
    assert client.run("llama2", prompt="x").text == "late answer"
    assert fake_workers_ai.last.finished and not fake_workers_ai.last.disconnected


def test_delay_beyond_timeout_is_a_timeout(fake_workers_ai):
    """A server that accepts and never answers costs one timeout, not one per retry (with the
    defaults that was 4 x 60 s)."""
    client = fake_workers_ai.client(timeout=0.3, max_retries=3)
    fake_workers_ai.enqueue("late", delay=1.0, times=4)
    with pytest.raises(errors.Timeout) as info:
        client.run("llama2", prompt="x")
    assert client.transport.attempts == 1
    assert "in time" in str(info.value)


def test_silence_after_the_headers_is_a_timeout_not_a_drop(fake_workers_ai):
    client = fake_workers_ai.client(timeout=0.3, max_retries=3)
    fake_workers_ai.enqueue(Reply(text="never seen", stall=1.0))
    with pytest.raises(errors.Timeout) as info:
        client.stream("llama2", prompt="x").consume()
    assert "the stream began, then nothing came" in str(info.value)
    assert "partial" not in str(info.value)              # there is none
    assert client.transport.attempts == 1


def test_a_stream_that_stalls_keeps_what_came(fake_workers_ai):
    client = fake_workers_ai.client(timeout=0.3)
    fake_workers_ai.enqueue(Reply(chunks=["first ", "second"], drip=1.0))
    answer = client.stream("llama2", prompt="x")
    with pytest.raises(errors.StreamError) as info:
        answer.consume()
    assert "stalled" in str(info.value) and info.value.partial == "first "
    assert "partial answer is kept" in str(info.value)


def test_connection_dropped_mid_stream_keeps_partial(client, fake_workers_ai):
    fake_workers_ai.enqueue(text="one two three four five", drop_after=3)
    stream = client.stream("llama2", prompt="x")
    got = []
    with pytest.raises(errors.StreamError) as info:
        for piece in stream:
            got.append(piece)
    assert got == ["one ", "two ", "three "]
    assert info.value.partial == "one two three "
    assert "dropped" in str(info.value)
    assert client.transport.attempts == 1        # chunks were handed out: no retry


def test_drop_before_first_chunk_is_retried(client, fake_workers_ai):
    fake_workers_ai.enqueue(text="never", drop_after=0)
    fake_workers_ai.enqueue("second try")
    assert "".join(client.stream("llama2", prompt="x")) == "second try"
    assert client.transport.attempts == 2


def test_malformed_event(client, fake_workers_ai):
    fake_workers_ai.enqueue(text="a b c d", malformed_at=2)
    stream = client.stream("llama2", prompt="x")
    with pytest.raises(errors.StreamError) as info:
        list(stream)
    assert "Malformed event" in str(info.value) and info.value.partial == "a b "


def test_a_body_that_ends_before_the_answer_did_is_an_error(client, fake_workers_ai):
    fake_workers_ai.enqueue(text="a b c", done=False, usage=False)    # no finish, no [DONE]
    with pytest.raises(errors.StreamError) as info:
        list(client.stream("llama2", prompt="x"))
    assert "ended before the answer did" in str(info.value) and info.value.partial == "a b c"


@pytest.mark.parametrize("dialect", ["legacy", "chat"])
def test_a_body_that_ends_cleanly_after_the_final_usage_is_complete(client, fake_workers_ai,
                                                                    dialect):
    """As Cloudflare's provider reads it: [DONE] is not needed once the answer has finished."""
    fake_workers_ai.enqueue(text="a b c", done=False, dialect=dialect)
    stream = client.stream("llama2", prompt="x")
    assert "".join(stream) == "a b c" and stream.done and stream.usage["completion_tokens"] == 3


def test_early_close_is_seen_by_the_server(client, fake_workers_ai):
    fake_workers_ai.enqueue(Reply.large(50, "x ", drip=0.05))
    with client.stream("llama2", prompt="x") as stream:
        assert next(stream) == "x " and next(stream) == "x "
    wait_for(lambda: fake_workers_ai.last.disconnected, what="the server to see the close")


def test_abort_from_another_thread_unblocks_a_stalled_read(client, fake_workers_ai):
    fake_workers_ai.enqueue(chunks=["first", "never"], drip=30)
    stream = client.stream("llama2", prompt="x")
    assert next(stream) == "first"
    threading.Timer(0.2, stream.abort).start()
    assert list(stream) == []
    assert fake_workers_ai.last.cut_short    # the server's 30 s not waited out
    assert stream.text == "first"


def test_credentials_from_environment(fake_workers_ai, monkeypatch):
    for key, value in fake_workers_ai.env().items():
        monkeypatch.setenv(key, value)
    assert WorkersAI().run("llama2", prompt="hi").text == "Echo: hi"


@pytest.mark.parametrize("missing,variable", [("account", "CLOUDFLARE_ACCOUNT_ID"),
                                              ("token", "CLOUDFLARE_API_TOKEN")])
def test_missing_credentials_say_how_to_set_them(monkeypatch, missing, variable):
    if missing == "token":
        monkeypatch.setenv("CLOUDFLARE_ACCOUNT_ID", "acct")
    else:
        monkeypatch.setenv("CLOUDFLARE_API_TOKEN", "tok")
    with pytest.raises(errors.ConfigError) as info:
        WorkersAI()
    assert f"Set {variable} (in a notebook, %cfai login asks for it)" in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("url,ok", [
    ("http://127.0.0.1:8787/client/v4", True), ("http://localhost:1/x", True),
    ("http://[::1]:1/x", True), ("https://example.com/client/v4", True),
    ("http://example.com/client/v4", False), ("http://10.0.0.5/x", False), ("ftp://x/y", False)])
def test_plain_http_only_to_loopback(url, ok):
    if ok:
        assert WorkersAI("a", "t", base_url=url).base_url == url.rstrip("/")
    else:
        with pytest.raises(errors.ConfigError):
            WorkersAI("a", "t", base_url=url)


def test_input_is_checked_before_sending(client, fake_workers_ai):
    with pytest.raises(errors.InputError):
        client.run("llama2", prompt="a", messages=MESSAGES)
    with pytest.raises(errors.InputError):
        client.run("llama2")
    with pytest.raises(errors.UnknownModel) as info:
        client.run("lama2", prompt="x")
    assert "llama2" in str(info.value)
    with pytest.raises(errors.LimitExceeded) as info:
        client.stream("llama2-int8", prompt="x", max_tokens=5000)
    assert "1800" in str(info.value)
    assert fake_workers_ai.requests == []


def test_percent_encoded_model_ids_are_accepted(fake_workers_ai):
    import requests
    url = f"{fake_workers_ai.url}/accounts/{fake_workers_ai.account_id}/ai/run/@cf%2Fmeta%2Fllama-2-7b-chat-int8"
    r = requests.post(url, json={"prompt": "hi"},
                      headers={"Authorization": f"Bearer {fake_workers_ai.token}"})
    assert r.json()["result"]["response"] == "Echo: hi"
    assert fake_workers_ai.last.model == "@cf/meta/llama-2-7b-chat-int8"


@pytest.mark.parametrize("reply", [
    Reply(chunks=["Hello", " there"], bom=True),
    Reply(chunks=["Hello", " there"], bom=True, split=1),            # the BOM cut apart too
    Reply(chunks=["Hello", " there"], gzip=True),
    Reply(chunks=["Hello", " there"], gzip=True, split=5),
    Reply(chunks=["Hello", " there"], gzip=True, chunked=False),     # read1, not chunks
    Reply(chunks=["Hello", " there"], bom=True, chunked=False),
], ids=["bom", "bom-split", "gzip", "gzip-split", "gzip-unchunked", "bom-unchunked"])
def test_framings_that_lost_the_answer(client, fake_workers_ai, reply):
    """A UTF-8 BOM used to cost the first event; a gzip body failed as 'not UTF-8'."""
    fake_workers_ai.enqueue(reply)
    answer = client.stream("llama2", prompt="x")
    assert list(answer) == ["Hello", " there"] and answer.done


def test_ten_answers_use_one_connection(client, fake_workers_ai):
    """Each stream used to close its response before reading its end: a new TCP (and on
    Cloudflare TLS) connection per cell."""
    for _ in range(5):
        client.stream("llama2", prompt="x").consume()
        client.run("llama2", prompt="x")
    assert fake_workers_ai.connections == 1
    fake_workers_ai.enqueue(Reply(text="a b c d", drop_after=2))
    with pytest.raises(errors.StreamError):
        client.stream("llama2", prompt="x").consume()
    client.run("llama2", prompt="x")                  # a broken one costs one new connection
    assert fake_workers_ai.connections == 2


@pytest.mark.parametrize("host,allowed", [("127.0.0.1:{port}", True), ("localhost:{port}", True),
                                          ("evil.example:{port}", False), ("evil.example", False),
                                          ("127.0.0.1.evil.example", False)])
def test_our_servers_answer_their_own_host_only(fake_workers_ai, host, allowed):
    """A DNS-rebinding page reaches a loopback server under its own name: refused."""
    import requests
    port = fake_workers_ai.url.split(":")[2].split("/")[0]
    r = requests.get(f"{fake_workers_ai.url}/accounts/{fake_workers_ai.account_id}/ai/models/"
                     "search", headers={"Authorization": f"Bearer {fake_workers_ai.token}",
                                        "Host": host.format(port=port)})
    assert (r.status_code == 200) is allowed
    if not allowed:
        assert r.status_code == 403 and "Host not allowed" in r.text


def test_a_deeply_nested_event_is_a_malformed_event(client, fake_workers_ai):
    """It used to escape as a RecursionError traceback."""
    fake_workers_ai.enqueue(Reply(raw=['{"response": "ok "}', "[" * 50_000 + "]" * 50_000]))
    answer = client.stream("llama2", prompt="x")
    with pytest.raises(errors.StreamError) as info:
        answer.consume()
    assert str(info.value).startswith("Malformed event in the stream: '[[[[")
    assert info.value.partial == "ok "
