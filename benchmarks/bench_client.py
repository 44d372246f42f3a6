"""Client overhead per wire protocol against the best a user could do, on FakeWorkersAI over
loopback in a process of its own (so the server never competes with the reader for the GIL).

For each protocol (Workers AI /ai/run with a legacy model, /ai/run with a chat.completion model,
and the OpenAI-compatible /chat/completions) it prints:
- time to first token through WorkersAI.stream, through a raw ``http.client`` read of the same
  request, and through ``requests`` + ``sseclient-py`` (the naive client);
- chunks/s for an N-chunk answer, from its first piece to its last (the fake builds the whole
  answer before it writes it), through WorkersAI.stream, through a linear raw reader (one
  buffer, de-chunked and split into events in one pass, each event's JSON decoded and its text
  picked: the least work that yields the same text) and through requests + sseclient-py.
The readers take turns, --runs rounds. The columns are each reader's best round; the verdict
is on the median of the rounds' own client-to-raw figures (a round's readers share the moment of
a busy machine; the best rounds of two readers need not, and moved their ratio by 0.6 here).

Targets: first token within 0.3 ms of raw; throughput at least 0.9x the raw reader at 5,000
chunks. Then a kept-alive run(), and one tool step: from the tool's return to the next request
arriving at the server, against a bare request (from the call to its arrival); target under
5 ms. Usage: python benchmarks/bench_client.py [--runs 20] [--chunks 5000] [--quick]
"""
from __future__ import annotations

import argparse
import http.client
import json
import socket
import statistics
import subprocess
import sys
import time
from urllib.parse import urlsplit

import requests
import sseclient

from cfai_magic.client import WorkersAI
from cfai_magic.client.protocols import PROTOCOLS
from cfai_magic.testing import FakeWorkersAI, Reply

CASES = [  # (label, protocol, model, how a reader finds the text in an event)
    ("workers-ai, legacy", "workers-ai", "@cf/meta/llama-2-7b-chat-int8",
     lambda e: e.get("response")),
    ("workers-ai, chat.completion", "workers-ai", "@cf/zai-org/glm-4.7-flash",
     lambda e: (e.get("choices") or [{}])[0].get("delta", {}).get("content")),
    ("openai /chat/completions", "openai", "@cf/zai-org/glm-4.7-flash",
     lambda e: (e.get("choices") or [{}])[0].get("delta", {}).get("content")),
]


def serve(chunks: int) -> None:
    """The child process: a fake whose answer to "first" is two chunks and to anything else
    ``chunks`` chunks; its address on stdout; it ends when stdin closes."""
    def reply(request):
        if request.input_text == "first":
            return Reply(chunks=["Hello", " world"])
        return Reply.large(chunks, "tok ")
    with FakeWorkersAI(default=reply) as fake:
        print(json.dumps({"url": fake.url, "openai_url": fake.openai_url, "token": fake.token,
                          "account_id": fake.account_id}), flush=True)
        sys.stdin.read()


class Remote:
    """The fake in its own process."""

    def __init__(self, chunks: int):
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve", str(chunks)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.__dict__.update(json.loads(self.proc.stdout.readline()))

    def client(self, protocol: str = "workers-ai") -> WorkersAI:
        url = self.openai_url if protocol == "openai" else self.url
        return WorkersAI(self.account_id, self.token, base_url=url, protocol=protocol)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(30)


class Raw:
    """The request a protocol sends, sent by hand."""

    def __init__(self, fake, protocol: str, model: str, pick):
        client = fake.client(protocol=protocol)
        module = PROTOCOLS[protocol]
        self.url = client.url(model)
        url = urlsplit(self.url)
        self.addr, self.path, self.pick = (url.hostname, url.port), url.path, pick
        self.body = {}
        self.headers = {"Authorization": f"Bearer {fake.token}",
                        "Content-Type": "application/json"}
        self.module, self.model = module, model
        client.close()

    def payload(self, prompt: str) -> bytes:
        return json.dumps(self.module.body(self.model, {"prompt": prompt}, True)).encode()

    def first(self) -> str:
        """http.client: send, read lines until the first event with text."""
        conn = http.client.HTTPConnection(*self.addr)
        try:
            conn.request("POST", self.path, self.payload("first"), self.headers)
            response = conn.getresponse()
            while True:
                line = response.readline()
                if line.startswith(b"data: {"):
                    piece = self.pick(json.loads(line[6:]))
                    if piece:
                        return piece
                elif not line:
                    raise RuntimeError("no text")
        finally:
            conn.close()

    def chunks(self):
        """A linear HTTP/1.1 reader on a socket: one buffer, each byte looked at once."""
        body = self.payload("many")
        request = (f"POST {self.path} HTTP/1.1\r\nHost: {self.addr[0]}:{self.addr[1]}\r\n"
                   + "".join(f"{k}: {v}\r\n" for k, v in self.headers.items())
                   + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
        with socket.create_connection(self.addr) as sock:
            sock.sendall(request + body)
            buf = bytearray()
            while b"\r\n\r\n" not in buf:
                buf += sock.recv(65536)
            pos = buf.index(b"\r\n\r\n") + 4
            data, start, left = bytearray(), 0, -1      # left: bytes due in this chunk
            while True:
                while left != 0:                        # de-chunk what has arrived
                    if left > 0:
                        take = min(left, len(buf) - pos)
                        data += buf[pos:pos + take]
                        pos, left = pos + take, left - take
                        if left:
                            break
                        left = -2                       # the CRLF after the data
                    if left == -2:
                        if len(buf) - pos < 2:
                            break
                        pos, left = pos + 2, -1
                    end = buf.find(b"\r\n", pos)
                    if end < 0:
                        break
                    left, pos = int(buf[pos:end], 16), end + 2
                while True:                             # the events it completes
                    end = data.find(b"\n\n", start)
                    if end < 0:
                        break
                    event = bytes(data[start + 6:end])
                    start = end + 2
                    if event == b"[DONE]":
                        return
                    piece = self.pick(json.loads(event))
                    if piece:
                        yield piece
                del buf[:pos]
                pos = 0
                more = sock.recv(65536)
                if not more:
                    return
                buf += more

    def naive_first(self) -> str:
        return next(self.naive("first"))

    def naive(self, prompt: str = "many"):
        """requests + sseclient-py, as their READMEs show."""
        with requests.post(self.url, data=self.payload(prompt), headers=self.headers,
                           stream=True) as response:
            for event in sseclient.SSEClient(response).events():
                if event.data == "[DONE]":
                    return
                piece = self.pick(json.loads(event.data))
                if piece:
                    yield piece


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def streamed(fn, expected: int) -> float:
    """Pieces a second from the first piece to the last: the server builds a 5,000-chunk
    answer before it writes it (40-90 ms here), which is no reader's time."""
    pieces = iter(fn())
    next(pieces)
    start = time.perf_counter()
    n = 1 + sum(1 for _ in pieces)
    took = time.perf_counter() - start
    assert n == expected, n
    return (n - 1) / took


def rounds(fns, runs: int, measure) -> list[list[float]]:
    """``measure(fn)`` for each of ``fns`` in turn, ``runs`` rounds: one round's numbers come
    from the same moment of a busy machine, so their ratio is fairer than a ratio of
    medians taken apart."""
    out: list[list[float]] = [[] for _ in fns]
    for _ in range(runs):
        for i, fn in enumerate(fns):
            out[i].append(measure(fn))
    return out


def measure(fake, protocol, model, pick, runs, n_chunks):
    """First-token seconds and rates of (client, raw, naive), each the best of ``runs``
    rounds, and the medians of the rounds' own client-to-raw figures (the excess of the
    first token, the ratio of the rates): the verdict's."""
    client = fake.client(protocol)
    raw = Raw(fake, protocol, model, pick)

    def client_first():
        with client.stream(model, prompt="first") as answer:
            next(iter(answer))
    for fn in (client_first, raw.first, raw.naive_first):
        fn()                                          # warm up
    firsts = rounds((client_first, raw.first, raw.naive_first), runs, timed)
    sum(1 for _ in client.stream(model, prompt="many"))
    rates = rounds((lambda: client.stream(model, prompt="many"), raw.chunks, raw.naive), runs,
                   lambda fn: streamed(fn, n_chunks))
    client.close()
    excess = statistics.median(c - r for c, r in zip(firsts[0], firsts[1]))
    ratio = statistics.median(c / r for c, r in zip(rates[0], rates[1]))
    return [min(f) for f in firsts], [max(r) for r in rates], excess, ratio


def nagle_server():
    """http.server (no TCP_NODELAY: Nagle's algorithm on) writing an answer in small pieces,
    as many servers do; its API root."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.flush()
            for piece in (b'data: {"response": "Hello"}\n\n', b"data: [DONE]\n\n"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/client/v4"


def delayed_ack(runs: int, quickack: bool) -> float:
    """Median ms to the first token on a kept-alive connection to the Nagle server, with the
    client's TCP_QUICKACK (as shipped) or without it."""
    from cfai_magic.client import _chunked
    saved = _chunked.QUICKACK
    _chunked.QUICKACK = saved if quickack else None
    server, url = nagle_server()
    client = WorkersAI("account", "token", base_url=url, max_retries=0)

    def first() -> float:              # read to the end, so the connection is kept
        started = time.perf_counter()
        with client.stream(CASES[0][2], prompt="x") as answer:
            pieces = iter(answer)
            next(pieces)
            took = time.perf_counter() - started
            list(pieces)
        return took
    try:
        first()
        return statistics.median(first() for _ in range(runs)) * 1e3
    finally:
        client.close()
        server.shutdown()
        _chunked.QUICKACK = saved


def reused_run(fake, runs: int) -> tuple[float, int]:
    """Median ms of client.run() on one kept-alive connection, and the connections it took.
    With Nagle's algorithm on in the server this was about 40 ms a request."""
    client = fake.client()
    fake.reset()
    before = fake.connections
    client.run(CASES[0][2], prompt="warm")
    took = statistics.median(timed(lambda: client.run(CASES[0][2], prompt="bench")) for _ in range(runs))
    client.close()
    return took * 1e3, fake.connections - before


def tool_step(fake, runs: int) -> tuple[float, float]:
    """Median ms from a tool's return to the loop's next request arriving, and from a bare
    run() call to its request arriving (the anchor), on one client."""
    client, returned = fake.client(), []

    def probe(x: int) -> int:
        """Returns x."""
        returned.append(time.time())
        return x

    def loop() -> float:
        fake.reset()
        fake.enqueue(Reply(tool_calls=[{"name": "probe", "arguments": {"x": 1}}]), "ok")
        client.run(CASES[1][2], prompt="bench", tools=[probe])
        return fake.requests[-1].time - returned[-1]

    def bare() -> float:
        fake.reset()
        start = time.time()
        client.run(CASES[1][2], prompt="bench")
        return fake.requests[-1].time - start
    loop(), bare()                                     # warm up (pydantic, the connection)
    steps = statistics.median(loop() for _ in range(runs))
    anchor = statistics.median(bare() for _ in range(runs))
    client.close()
    return steps * 1e3, anchor * 1e3


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--chunks", type=int, default=5000)
    ap.add_argument("--quick", action="store_true", help="smoke run for CI")
    ap.add_argument("--serve", type=int, help=argparse.SUPPRESS)     # the fake's process
    args = ap.parse_args(argv)
    if args.serve:
        return serve(args.serve)
    runs = 5 if args.quick else args.runs
    print(f"first token (ms) and chunks/s after it at {args.chunks:,} chunks, the best of "
          f"{runs} rounds; ratio and verdict: the medians of the rounds' own figures; raw: "
          "http.client for the first token, the linear reader for chunks/s; naive: requests + "
          "sseclient-py")
    print(f"{'protocol':30} {'client':>7} {'raw':>7} {'naive':>7} {'client':>9} {'raw':>9} "
          f"{'naive':>9} {'ratio':>6}  verdict")
    remote = Remote(args.chunks)
    try:
        for label, protocol, model, pick in CASES:
            (t_client, t_raw, t_naive), (r_client, r_raw, r_naive), excess, ratio = measure(
                remote, protocol, model, pick, runs, args.chunks)
            added = excess * 1e3
            ok_first, ok_rate = added <= 0.3, ratio >= 0.9
            print(f"{label:30} {t_client * 1e3:7.3f} {t_raw * 1e3:7.3f} {t_naive * 1e3:7.3f} "
                  f"{r_client:9,.0f} {r_raw:9,.0f} {r_naive:9,.0f} {ratio:6.2f}  "
                  f"first {added:+.2f} ms (target +0.3) {'OK' if ok_first else 'MISSED'}, "
                  f"rate (target 0.9) {'OK' if ok_rate else 'MISSED'} (rounds' medians; best "
                  f"rounds: {(t_client - t_raw) * 1e3:+.2f} ms, {r_client / r_raw:.2f}); "
                  f"{r_client / r_naive:.1f}x the naive client")
    finally:
        remote.close()
    on, off = delayed_ack(runs * 4, True), delayed_ack(runs * 4, False)
    print(f"first token on a kept-alive connection to http.server (Nagle on, small writes): "
          f"{on:.2f} ms with TCP_QUICKACK before each read, {off:.2f} ms without "
          f"(delayed ACKs); target under 5 ms: {'OK' if on < 5 else 'MISSED'}")
    with FakeWorkersAI() as fake:
        ms, connections = reused_run(fake, runs * 4)
        print(f"run() on a kept-alive connection: {ms:.2f} ms median of {runs * 4} "
              f"({connections} TCP connection for {runs * 4 + 1} requests; was ~40 ms with "
              "Nagle on)")
        step, anchor = tool_step(fake, runs * 4)
        print(f"one tool step, the tool's return to the next request on the wire: {step:.2f} ms "
              f"median of {runs * 4}; a bare request, call to wire: {anchor:.2f} ms; ratio "
              f"{step / anchor:.2f}; target under 5 ms: {'OK' if step < 5 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
