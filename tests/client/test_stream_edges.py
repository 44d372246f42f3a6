"""What a server may send that the fake never does, from a raw socket: informational answers,
an SSE error event, one huge event, a huge whole answer; and live catalog numbers out of range."""
import json
import socket
import threading

import pytest

from cfai_magic import errors
from cfai_magic.catalog import live_facts
from cfai_magic.client import WorkersAI

JSON_OK = json.dumps({"result": {"response": "hello"}, "success": True, "errors": []}).encode()


class Raw:
    """Answers every request with ``reply`` (bytes, or a callable writing to the socket)."""

    def __init__(self, reply):
        self.reply = reply
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/client/v4"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, body = data.split(b"\r\n\r\n", 1)
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                while len(body) < length:
                    body += conn.recv(65536)
                try:
                    self.reply(conn) if callable(self.reply) else conn.sendall(self.reply)
                except OSError:             # the client stopped reading: what we test
                    pass

    def close(self):
        self.sock.close()

    def client(self):
        return WorkersAI("acct", "tok", base_url=self.url, max_retries=0)


@pytest.fixture
def raw():
    servers = []

    def make(reply):
        servers.append(Raw(reply))
        return servers[-1]
    yield make
    for s in servers:
        s.close()


def http(status: str, body: bytes, kind="application/json", before=b"") -> bytes:
    return before + (f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: "
                     f"{len(body)}\r\nConnection: close\r\n\r\n").encode() + body


EARLY = (b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
         b"HTTP/1.1 103 Early Hints\r\nLink: </more.css>; rel=preload\r\n\r\n")


def test_early_hints_before_the_answer_are_skipped(raw):
    whole = raw(http("200 OK", JSON_OK, before=EARLY))
    assert whole.client().run("llama2", prompt="x").text == "hello"
    events = b'data: {"response": "hel"}\n\ndata: {"response": "lo"}\n\ndata: [DONE]\n\n'
    streamed = raw(http("200 OK", events, "text/event-stream", before=EARLY))
    assert list(streamed.client().stream("llama2", prompt="x")) == ["hel", "lo"]


def test_an_error_event_is_an_error_not_answer_text(raw):
    events = (b'data: {"response": "part"}\n\n'
              b'event: error\ndata: {"message": "capacity exceeded"}\n\n')
    server = raw(http("200 OK", events, "text/event-stream"))
    answer = server.client().stream("llama2", prompt="x")
    with pytest.raises(errors.StreamError) as info:
        answer.consume()
    assert str(info.value).startswith('The service reported an error mid-stream: {"message": '
                                      '"capacity exceeded"}')
    assert answer.text == "part" and "partial answer is kept" in str(info.value)


def test_one_huge_event_is_cut_off_with_one_line(raw):
    def reply(conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                     b"Connection: close\r\n\r\ndata: {\"response\": \"ok\"}\n\ndata: \"")
        piece = b"x" * 65536
        for _ in range(24 * 16):                 # 24 MB on one line, never ending
            conn.sendall(piece)
    answer = raw(reply).client().stream("llama2", prompt="x")
    with pytest.raises(errors.StreamError) as info:
        answer.consume()
    assert str(info.value).startswith("One event of the stream is over 4 MiB; the answer was "
                                      "stopped there")
    assert answer.text == "ok"


def test_separators_split_across_reads_do_not_add_up(raw):
    """Many small events whose blank lines fall between two reads: never over the cap."""
    from cfai_magic.client._sse import capped
    chunks = [b'data: "' + b"y" * 1000 + b'"\n', b"\n"] * 10_000       # 10 MB in all
    assert sum(len(c) for c in capped(iter(chunks), limit=4096)) == 10_000 * 1010


def test_a_whole_answer_over_the_cap_is_refused(raw):
    big = b'{"result": {"response": "' + b"z" * (40 * 1024 * 1024) + b'"}}'
    server = raw(http("200 OK", big))
    with pytest.raises(errors.StreamError) as info:
        server.client().run("llama2", prompt="x")
    assert str(info.value) == ("The answer is over 32 MiB; it was not read further. Ask for a "
                               "shorter answer (--max-tokens)")


@pytest.mark.parametrize("context, price, kept", [
    ("-5", "NaN", {}), ("0", "-1", {}), ("1e12", "inf", {}),
    ("131072", "0.11", {"context_tokens": 131072, "price_in": 0.11})])
def test_live_numbers_out_of_range_are_not_believed(context, price, kept):
    item = {"name": "@cf/x/y", "properties": [
        {"property_id": "context_window", "value": context},
        {"property_id": "price", "value": [{"unit": "per M input tokens", "price": price,
                                            "currency": "USD"}]}]}
    facts = live_facts(item)
    assert {k: v for k, v in facts.items() if k in ("context_tokens", "price_in")} == kept
