"""The chunked body reader against a server that writes exactly the bytes given (chunk
extensions, trailers, pieces cut anywhere, broken framing), and against http.server, which
writes small pieces without TCP_NODELAY."""
import json
import socket
import threading

import pytest

from cfai_magic import errors
from cfai_magic.client import WorkersAI
from rawhttp import read_head

MODEL = "@cf/meta/llama-2-7b-chat-int8"


def event(obj) -> bytes:
    return f"data: {json.dumps(obj)}\n\n".encode()


def chunked(*parts: bytes, extension=b"", trailer=b"") -> bytes:
    body = b"".join(b"%x%s\r\n%s\r\n" % (len(p), extension, p) for p in parts)
    return body + b"0\r\n" + trailer + b"\r\n"


class Scripted:
    """A server on 127.0.0.1 that answers each request on a connection with the next script,
    written in pieces of ``cut`` bytes; counts connections."""

    def __init__(self, scripts, cut=None):
        self.scripts, self.cut, self.connections = list(scripts), cut, 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/client/v4"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while self.scripts:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                while self.scripts:
                    request = read_head(conn)
                    if not request:
                        break
                    head, _, body = request.partition(b"\r\n\r\n")
                    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                    while len(body) < length:
                        body += conn.recv(65536)
                    data = self.scripts.pop(0)
                    step = self.cut or len(data)
                    for i in range(0, len(data), step):
                        conn.sendall(data[i:i + step])

    def close(self):
        self.sock.close()


def response(body: bytes) -> bytes:
    return (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n" + body)


WORDS = [event({"response": w}) for w in ("Hello", " there", ",", " friend")]
DONE = b"data: [DONE]\n\n"


@pytest.mark.parametrize("cut", [None, 1, 7], ids=["whole", "bytewise", "cut-7"])
def test_framing_extensions_and_trailers_and_a_reused_connection(cut):
    body = chunked(*WORDS, DONE, extension=b";name=value", trailer=b"X-Trailer: yes\r\n")
    server = Scripted([response(body), response(chunked(WORDS[0], DONE))], cut=cut)
    client = WorkersAI("a", "t0ken", base_url=server.url, max_retries=0)
    try:
        assert "".join(client.stream(MODEL, prompt="x")) == "Hello there, friend"
        assert "".join(client.stream(MODEL, prompt="y")) == "Hello"
        assert server.connections == 1             # the connection went back to the pool
    finally:
        client.close()
        server.close()


@pytest.mark.parametrize("body, why", [
    (b"zz\r\n" + WORDS[0] + b"\r\n", "connection dropped mid-stream (ProtocolError)"),
    (b"%x\r\n" % len(WORDS[0]) + WORDS[0] + b"XX", "connection dropped mid-stream"),
    (b"%x\r\n" % (len(WORDS[0]) + 50) + WORDS[0], "connection dropped mid-stream"),
    (b"-1c\r\n" + WORDS[0] + b"\r\n", "connection dropped mid-stream (ProtocolError)"),
    (b"\r\n" + WORDS[0] + b"\r\n", "connection dropped mid-stream (ProtocolError)"),
], ids=["bad-length", "no-crlf-after-data", "cut-off", "negative-length", "empty-length"])
def test_broken_framing_is_one_line(body, why):
    server = Scripted([response(body)])
    client = WorkersAI("a", "t0ken", base_url=server.url, max_retries=0)
    try:
        with pytest.raises(errors.StreamError) as info:
            "".join(client.stream(MODEL, prompt="x"))
        assert why in str(info.value)
    finally:
        client.close()
        server.close()
