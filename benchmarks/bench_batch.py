"""cfai_magic.map against FakeWorkersAI over loopback, each figure a ratio against an anchor
measured in the same run.

1. Concurrency: 200 rows, 500 ms latency, 16 threads. Anchors: the ideal, rows / 16 x the
   latency the server applied (ideal / elapsed, target >= 0.9), and the plain loop a user
   would write, a ThreadPoolExecutor of 16 calling requests.post (loop / elapsed, target
   >= 0.98).
2. Pace: the limiter's achieved rate against its setting (target 0.99-1.0).
3. Scale: 10,000 rows with 5% answered 429 (Retry-After 0.05 s): rows lost (target 0), order
   kept, and this process's memory growth (the kernel's, when run in a notebook).
4. Cassettes: 1,000 and 10,000 rows recorded into a cassette and replayed from it, each time a
   ratio to the same rows with no cassette (target: each within 1.5); and one replay lookup at
   10,000 entries, against computing its key alone (target: under 50 us).
Usage: python benchmarks/bench_batch.py [--quick]
"""
from __future__ import annotations

import argparse
import math
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import cfai_magic
from cfai_magic.session import Session
from cfai_magic.testing import FakeWorkersAI, Reply

MODEL = "@cf/meta/llama-3.1-8b-instruct-fast"


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def batch(session, rows, **kw):
    return cfai_magic.map("Q {row}", rows, session=session, namespace={}, model=MODEL,
                          mode="final", **kw)


def concurrency(fake, session, rows: int, latency: float, threads: int) -> None:
    import requests
    fake.reset()
    fake.default = lambda req: Reply(text=f"A:{req.input_text}", delay=latency)
    ideal = math.ceil(rows / threads) * latency        # what the server applied, no more
    batch(session, ["warm up"])          # imports and the live model list, once a session
    started = time.perf_counter()
    out = batch(session, [f"r{i}" for i in range(rows)], concurrency=threads)
    elapsed = time.perf_counter() - started
    assert out == [f"A:Q r{i}" for i in range(rows)]
    client = fake.client()
    url, headers = client.url(MODEL), {"Authorization": f"Bearer {fake.token}"}
    client.close()

    def one(i):                                        # what a user would write
        return requests.post(url, json={"prompt": f"Q r{i}"}, headers=headers,
                             timeout=60).json()["result"]["response"]
    one(-1)                                            # warm up too
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        plain = list(pool.map(one, range(rows)))
    loop = time.perf_counter() - started
    assert plain == out
    ok = loop / elapsed >= 0.98 and ideal / elapsed >= 0.9
    print(f"concurrency: {rows} rows, {latency * 1000:.0f} ms latency, {threads} threads: "
          f"{elapsed:.2f} s; the ideal {ideal:.2f} s -> ratio {ideal / elapsed:.3f} (target "
          f">= 0.9); a plain thread pool of requests.post {loop:.2f} s -> ratio "
          f"{loop / elapsed:.3f} (target >= 0.98){'' if ok else '  MISSED'}")


def pace(fake, session, rows: int, per_minute: float) -> None:
    fake.reset()
    from cfai_magic.batch import pace as pace_module
    fake.default = lambda req: Reply(text="ok")
    made = []
    original = pace_module.Limiter.__init__

    def keep(self, *a, **kw):
        original(self, *a, **kw)
        made.append(self)
    pace_module.Limiter.__init__ = keep
    try:
        batch(session, [f"p{i}" for i in range(rows)], concurrency=8, rate=per_minute)
    finally:
        pace_module.Limiter.__init__ = original
    achieved = made[-1].rate()
    ratio = achieved / per_minute
    missed = "" if 0.99 <= ratio <= 1.0 + 1e-6 else "  MISSED"
    print(f"pace: {rows} rows at {per_minute:.0f}/min: achieved {achieved:.0f}/min -> ratio "
          f"{ratio:.3f} (target 0.99-1.0){missed}")


def scale(fake, session, rows: int, refused: float) -> None:
    fake.reset()
    rng, lock = random.Random(1), threading.Lock()
    sent = []

    def answer(req):
        with lock:
            busy = rng.random() < refused
            sent.append(busy)
        return Reply(status=429, code=3040, retry_after=0.05) if busy else \
            Reply(text=f"A:{req.input_text}")
    fake.default = answer
    fake.received = lambda request: None        # the fake shares this process: no request log
    before = rss_mb()
    started = time.perf_counter()
    out = batch(session, [f"s{i}" for i in range(rows)], concurrency=16)
    elapsed = time.perf_counter() - started
    lost = sum(v is None for v in out)
    in_order = out == [f"A:Q s{i}" for i in range(rows)]
    after = rss_mb()
    refusals = sum(sent)
    print(f"scale: {rows:,} rows, {refused:.0%} answered 429 ({refusals:,} refusals): "
          f"{lost} rows lost (target 0), order kept: {in_order}, {elapsed:.1f} s "
          f"({rows / elapsed:,.0f} rows/s), memory {before:.0f} -> {after:.0f} MB "
          f"(+{after - before:.0f} MB, {(after - before) * 1024 / rows:.2f} kB a row) "
          f"{'OK' if lost == 0 and in_order else 'MISSED'}")


def cassettes(fake, rows: int, lookups: bool) -> None:
    import tempfile
    from pathlib import Path

    from cfai_magic.cassette import Cassette, match_key
    fake.reset()
    fake.default = lambda req: Reply(text=f"A:{req.input_text}")
    fake.received = lambda request: None
    items = [f"c{rows}-{i}" for i in range(rows)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "batch.json"
        times = {}
        for mode in (None, "record", "replay"):
            session = Session()
            if mode:
                session.cassette = Cassette(path, mode)
            started = time.perf_counter()
            out = batch(session, items, concurrency=16)
            times[mode] = time.perf_counter() - started
            assert out == [f"A:Q {x}" for x in items], mode
            session._drop_client()
        print(f"cassettes: {rows:,} rows: no cassette {times[None]:.2f} s, recording "
              f"{times['record']:.2f} s -> ratio {times['record'] / times[None]:.2f}, replaying "
              f"{times['replay']:.2f} s -> ratio {times['replay'] / times[None]:.2f} "
              f"(target: each <= 1.5) "
              f"{'OK' if max(times['record'], times['replay']) <= 1.5 * times[None] else 'MISSED'}")
        if not lookups:
            return
        cassette = Cassette(path, "replay")
        entries = cassette.entries()
        asks = [(e["request"]["model"], e["request"]["body"]) for e in entries]
        started = time.perf_counter()
        for model, body in asks:
            match_key(model, body)
        keying = (time.perf_counter() - started) / len(asks)
        started = time.perf_counter()
        for model, body in asks:
            assert cassette.find(model, body) is not None
        finding = (time.perf_counter() - started) / len(asks)
        print(f"cassettes: one replay lookup at {len(entries):,} entries: {finding * 1e6:.1f} us "
              f"(target < 50 us) {'OK' if finding < 50e-6 else 'MISSED'}, {finding / keying:.2f}x "
              f"computing its key alone ({keying * 1e6:.1f} us)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller runs (CI's smoke run)")
    args = parser.parse_args()
    with FakeWorkersAI() as fake:
        os.environ.update(fake.env())
        session = Session()
        if args.quick:
            concurrency(fake, session, 64, 0.2, 16)
            pace(fake, session, 30, 1200)
            scale(fake, session, 2000, 0.05)
            cassettes(fake, 1000, lookups=True)
        else:
            concurrency(fake, session, 200, 0.5, 16)
            pace(fake, session, 120, 1200)
            scale(fake, session, 10_000, 0.05)
            cassettes(fake, 1000, lookups=False)
            cassettes(fake, 10_000, lookups=True)


if __name__ == "__main__":
    main()
