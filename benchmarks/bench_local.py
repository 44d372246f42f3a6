"""The local backend against raw llama-cpp-python, same model, prompt and settings.

Prints model load time (the server's, and raw Llama's), then the median over --runs of time to
first token and decode tokens/s ((n-1) / (last - first)) through `cfai-local serve` (a separate
process, read with WorkersAI.stream over loopback) and through llama-cpp-python's
create_completion in this process, and their ratio/difference. Both evaluate the whole prompt
each time (the server does, so that a seed always gives the same text).
Targets: server tokens/s >= 0.9x raw; first token within +20 ms of raw.
Usage: python benchmarks/bench_local.py [--runs 5] [--tokens 128] [--quick]
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time

from cfai_magic.client import WorkersAI
from cfai_magic.local.model import default_model_path

PROMPT = "Once upon a time, in a small village by the sea, there lived"


def timed(chunks):
    start = time.perf_counter()
    stamps = [time.perf_counter() for _ in chunks]
    first = stamps[0] - start
    rate = (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else 0.0
    return first, rate, len(stamps)


def start_server(threads: int):
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    proc = subprocess.Popen([sys.executable, "-m", "cfai_magic.local", "serve", "--port", "0",
                             "--token", "bench"], stdout=subprocess.PIPE, text=True, env=env)
    for line in proc.stdout:
        found = re.search(r"loaded in ([\d.]+) s; serving at (\S+)", line)
        if found:
            return proc, float(found.group(1)), found.group(2)
    raise RuntimeError("server did not start")


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--quick", action="store_true", help="smoke run for CI")
    args = ap.parse_args(argv)
    if args.quick:
        args.runs, args.tokens = 2, 32
    threads = os.cpu_count() or 1
    settings = dict(max_tokens=args.tokens, temperature=0.0, top_p=0.9, top_k=40,
                    repeat_penalty=1.1)

    from llama_cpp import Llama
    start = time.perf_counter()
    llm = Llama(model_path=default_model_path(), n_ctx=4096, verbose=False, n_threads=threads)
    raw_load = time.perf_counter() - start

    proc, server_load, url = start_server(threads)
    client = WorkersAI("bench", "bench", base_url=url)
    server_runs, raw_runs = [], []
    try:
        def via_server():
            return timed(client.stream("@local/gemma-3-270m", prompt=PROMPT, raw=True,
                                       max_tokens=args.tokens, temperature=0.0, top_p=0.9,
                                       top_k=40, repetition_penalty=1.1))

        def via_raw():
            llm.reset()        # as the server does: the whole prompt evaluated each time
            return timed(c["choices"][0]["text"] for c in
                         llm.create_completion(PROMPT, stream=True, **settings))

        via_server(), via_raw()                      # warm up both
        for _ in range(args.runs):
            server_runs.append(via_server())
            raw_runs.append(via_raw())
    finally:
        proc.terminate()
        proc.wait(10)

    def med(runs, i):
        return statistics.median(r[i] for r in runs)

    s_first, s_rate = med(server_runs, 0), med(server_runs, 1)
    r_first, r_rate = med(raw_runs, 0), med(raw_runs, 1)
    print(f"model load: server process {server_load:.2f} s, raw Llama {raw_load:.2f} s "
          f"({threads} threads)")
    print(f"{f'median of {args.runs} runs, {args.tokens} tokens':34} {'server':>10} "
          f"{'raw':>10}")
    print(f"{'time to first token (ms)':34} {s_first * 1e3:10.1f} {r_first * 1e3:10.1f}   "
          f"{(s_first - r_first) * 1e3:+.1f} ms (target <= +20) "
          f"{'OK' if s_first - r_first <= 0.02 else 'MISSED'}")
    print(f"{'decode tokens/s':34} {s_rate:10.1f} {r_rate:10.1f}   ratio {s_rate / r_rate:.2f} "
          f"(target >= 0.9) {'OK' if s_rate >= 0.9 * r_rate else 'MISSED'}")
    print(f"tokens per answer: server {med(server_runs, 2):.0f}, raw {med(raw_runs, 2):.0f}")


if __name__ == "__main__":
    main()
