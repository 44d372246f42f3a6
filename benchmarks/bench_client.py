"""Client overhead against a raw socket reader, on FakeWorkersAI over loopback.

Prints: time to first chunk through WorkersAI.stream and through a raw socket reader (median of
--runs runs, and their ratio), and chunks/s for an N-chunk answer sent as fast as the server can,
through both (and their ratio). The raw reader does the least work that still yields the same
text: it de-chunks the HTTP body, splits events on blank lines and decodes each event's JSON.

Targets: first-chunk ratio <= 1.1 (or under 5 ms added); throughput >= 0.8x raw and >= 50,000
chunks/s.   Usage: python benchmarks/bench_client.py [--runs 20] [--chunks 2500] [--quick]
"""
from __future__ import annotations

import argparse
import json
import socket
import statistics
import time
from urllib.parse import urlsplit

from cfai_magic.testing import FakeWorkersAI, Reply

MODEL = "@cf/meta/llama-2-7b-chat-int8"


class RawReader:
    """A bare HTTP/1.1 client on a socket: the baseline."""

    def __init__(self, fake: FakeWorkersAI):
        url = urlsplit(fake.url)
        self.addr = (url.hostname, url.port)
        body = json.dumps({"prompt": "bench", "stream": True}).encode()
        self.request = (
            f"POST {url.path}/accounts/{fake.account_id}/ai/run/{MODEL} HTTP/1.1\r\n"
            f"Host: {url.netloc}\r\nAuthorization: Bearer {fake.token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n").encode() + body

    def chunks(self):
        """Yield text chunks as the events arrive."""
        with socket.create_connection(self.addr) as sock:
            sock.sendall(self.request)
            buf = b""
            while b"\r\n\r\n" not in buf:
                buf += sock.recv(65536)
            buf = buf.split(b"\r\n\r\n", 1)[1]
            body = b""
            ended = False
            while True:
                # de-chunk what we have
                while not ended:
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
                    piece = json.loads(data).get("response")
                    if piece:
                        yield piece
                more = b"" if ended else sock.recv(65536)
                if not more:
                    return
                buf += more


def first_chunk(fn, runs):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--chunks", type=int, default=2500)
    ap.add_argument("--quick", action="store_true", help="smoke run for CI")
    args = ap.parse_args(argv)
    runs = 5 if args.quick else args.runs
    with FakeWorkersAI() as fake:
        client = fake.client()
        raw = RawReader(fake)
        short = Reply(chunks=["Hello", " world"], times=10 ** 6)

        def client_first():
            with client.stream(MODEL, prompt="bench") as s:
                next(s)

        def raw_first():
            next(raw.chunks())

        fake.enqueue(short)
        client_first(), raw_first()                  # warm up
        t_client = first_chunk(client_first, runs)
        t_raw = first_chunk(raw_first, runs)
        fake.reset()

        big = Reply.large(args.chunks, "tok ", times=10 ** 6)
        fake.enqueue(big)

        def count(it):
            return sum(1 for _ in it)

        def rate(fn):
            best = []
            for _ in range(runs):
                start = time.perf_counter()
                n = fn()
                best.append(n / (time.perf_counter() - start))
                assert n == args.chunks, n
            return statistics.median(best)

        count(client.stream(MODEL, prompt="bench"))
        r_client = rate(lambda: count(client.stream(MODEL, prompt="bench")))
        r_raw = rate(lambda: count(raw.chunks()))

    print(f"{'measure':42} {'WorkersAI':>12} {'raw socket':>12} {'ratio':>7}")
    print(f"{'time to first chunk, median of %d (ms)' % runs:42} {t_client * 1e3:12.3f} "
          f"{t_raw * 1e3:12.3f} {t_client / t_raw:7.2f}")
    print(f"{'throughput, %d chunks (chunks/s)' % args.chunks:42} {r_client:12,.0f} "
          f"{r_raw:12,.0f} {r_client / r_raw:7.2f}")
    added = (t_client - t_raw) * 1e3
    ok_first = t_client / t_raw <= 1.1 or added < 5
    ok_rate = r_client >= 0.8 * r_raw and r_client >= 50_000
    print(f"first chunk: {added:+.3f} ms added -> {'OK' if ok_first else 'MISSED'}; "
          f"throughput -> {'OK' if ok_rate else 'MISSED'}")


if __name__ == "__main__":
    main()
