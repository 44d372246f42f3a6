"""Client overhead per wire protocol against raw readers, on FakeWorkersAI over loopback.

For each protocol (Workers AI /ai/run with a legacy model, /ai/run with a chat.completion model,
and the OpenAI-compatible /chat/completions) it prints:
- time to first token through WorkersAI.stream and through a raw ``http.client`` read of the
  same request (a new connection each, as both close early), median of --runs, and the ratio;
- chunks/s for an N-chunk answer through WorkersAI.stream and through a raw socket reader that
  does the least work that still yields the same text (de-chunk the body, split events on blank
  lines, decode each event's JSON, pick the text), and the ratio.

Targets: first-token ratio <= 1.1 (or under 5 ms added); throughput >= 0.8x raw and >= 50,000
chunks/s for the legacy dialect (chat.completion events are 5-10x bigger, so fewer per second).
Then one tool step: from the tool's return to the next request arriving at the server, against
a bare request (from the call to its arrival); target under 5 ms.
Usage: python benchmarks/bench_client.py [--runs 20] [--chunks 2500] [--quick]
"""
from __future__ import annotations

import argparse
import http.client
import json
import socket
import statistics
import time
from urllib.parse import urlsplit

from cfai_magic.client.protocols import PROTOCOLS
from cfai_magic.testing import FakeWorkersAI, Reply

CASES = [  # (label, protocol, model, how the raw reader finds the text in an event)
    ("workers-ai, legacy", "workers-ai", "@cf/meta/llama-2-7b-chat-int8",
     lambda e: e.get("response")),
    ("workers-ai, chat.completion", "workers-ai", "@cf/zai-org/glm-4.7-flash",
     lambda e: (e.get("choices") or [{}])[0].get("delta", {}).get("content")),
    ("openai /chat/completions", "openai", "@cf/zai-org/glm-4.7-flash",
     lambda e: (e.get("choices") or [{}])[0].get("delta", {}).get("content")),
]


class Raw:
    """The request a protocol sends, sent by hand."""

    def __init__(self, fake: FakeWorkersAI, protocol: str, model: str, pick):
        client = fake.client(protocol=protocol)
        module = PROTOCOLS[protocol]
        url = urlsplit(client.url(model))
        self.addr, self.path, self.pick = (url.hostname, url.port), url.path, pick
        self.body = json.dumps(module.body(model, {"prompt": "bench"}, True)).encode()
        self.headers = {"Authorization": f"Bearer {fake.token}",
                        "Content-Type": "application/json"}

    def first(self) -> str:
        """http.client: send, read lines until the first event with text."""
        conn = http.client.HTTPConnection(*self.addr)
        try:
            conn.request("POST", self.path, self.body, self.headers)
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
        """A bare HTTP/1.1 client on a socket: yield text chunks as the events arrive."""
        request = (f"POST {self.path} HTTP/1.1\r\nHost: {self.addr[0]}:{self.addr[1]}\r\n"
                   + "".join(f"{k}: {v}\r\n" for k, v in self.headers.items())
                   + f"Content-Length: {len(self.body)}\r\nConnection: close\r\n\r\n").encode()
        with socket.create_connection(self.addr) as sock:
            sock.sendall(request + self.body)
            buf = b""
            while b"\r\n\r\n" not in buf:
                buf += sock.recv(65536)
            buf = buf.split(b"\r\n\r\n", 1)[1]
            body, ended = b"", False
            while True:
                while not ended:                      # de-chunk what we have
                    head, sep, rest = buf.partition(b"\r\n")
                    if not sep:
                        break
                    size = int(head, 16)
                    ended = size == 0
                    if len(rest) < size + 2:
                        break
                    body += rest[:size]
                    buf = rest[size + 2:]
                *events, body = body.split(b"\n\n")
                for event in events:
                    data = event[6:]
                    if data == b"[DONE]":
                        return
                    piece = self.pick(json.loads(data))
                    if piece:
                        yield piece
                more = b"" if ended else sock.recv(65536)
                if not more:
                    return
                buf += more


def median_time(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def median_rate(fn, runs: int, expected: int) -> float:
    rates = []
    for _ in range(runs):
        start = time.perf_counter()
        n = sum(1 for _ in fn())
        rates.append(n / (time.perf_counter() - start))
        assert n == expected, n
    return statistics.median(rates)


def measure(fake, label, protocol, model, pick, runs, n_chunks):
    client = fake.client(protocol=protocol)
    raw = Raw(fake, protocol, model, pick)

    def client_first():
        with client.stream(model, prompt="bench") as answer:
            next(iter(answer))

    fake.reset()
    fake.enqueue(Reply(chunks=["Hello", " world"], times=10 ** 6))
    client_first(), raw.first()                       # warm up
    t_client, t_raw = median_time(client_first, runs), median_time(raw.first, runs)
    fake.reset()
    fake.enqueue(Reply.large(n_chunks, "tok ", times=10 ** 6))
    sum(1 for _ in client.stream(model, prompt="bench"))
    r_client = median_rate(lambda: client.stream(model, prompt="bench"), runs, n_chunks)
    r_raw = median_rate(raw.chunks, runs, n_chunks)
    client.close()
    return t_client, t_raw, r_client, r_raw


def reused_run(fake, runs: int) -> tuple[float, int]:
    """Median ms of client.run() on one kept-alive connection, and the connections it took.
    With Nagle's algorithm on in the server this was about 40 ms a request."""
    client = fake.client()
    fake.reset()
    before = fake.connections
    client.run(CASES[0][2], prompt="warm")
    took = median_time(lambda: client.run(CASES[0][2], prompt="bench"), runs)
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
    ap.add_argument("--chunks", type=int, default=2500)
    ap.add_argument("--quick", action="store_true", help="smoke run for CI")
    args = ap.parse_args(argv)
    runs = 5 if args.quick else args.runs
    print(f"{'protocol':30} {'first token ms':>15} {'http.client':>12} {'ratio':>6} "
          f"{'chunks/s':>10} {'raw socket':>11} {'ratio':>6}  verdict")
    with FakeWorkersAI() as fake:
        for label, protocol, model, pick in CASES:
            t_client, t_raw, r_client, r_raw = measure(fake, label, protocol, model, pick,
                                                       runs, args.chunks)
            added = (t_client - t_raw) * 1e3
            ok_first = t_client / t_raw <= 1.1 or added < 5
            floor = 50_000 if "legacy" in label else 0
            ok_rate = r_client >= 0.8 * r_raw and r_client >= floor
            print(f"{label:30} {t_client * 1e3:15.3f} {t_raw * 1e3:12.3f} "
                  f"{t_client / t_raw:6.2f} {r_client:10,.0f} {r_raw:11,.0f} "
                  f"{r_client / r_raw:6.2f}  first {added:+.2f} ms "
                  f"{'OK' if ok_first else 'MISSED'}, rate {'OK' if ok_rate else 'MISSED'}")
        ms, connections = reused_run(fake, runs * 4)
        print(f"run() on a kept-alive connection: {ms:.2f} ms median of {runs * 4} "
              f"({connections} TCP connection for {runs * 4 + 1} requests; was ~40 ms with "
              "Nagle on)")
        step, anchor = tool_step(fake, runs * 4)
        print(f"one tool step, the tool's return to the next request on the wire: {step:.2f} ms "
              f"median of {runs * 4}; a bare request, call to wire: {anchor:.2f} ms; ratio "
              f"{step / anchor:.2f}; target under 5 ms: {'OK' if step < 5 else 'MISSED'}")


if __name__ == "__main__":
    main()
