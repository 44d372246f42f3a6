"""%%cfai in a real kernel, against FakeWorkersAI on loopback.

Prints:
- `%load_ext cfai_magic` time in a fresh kernel (median over --kernels kernels; target <= 150 ms);
- a kernel's start (to its first reply) with the Jupyter server extension's autoload
  (--ext=cfai_magic.autoload) and without, median over --kernels kernels each (target: the
  autoload adds no more than %load_ext takes);
- a fresh kernel's first %%cfai cell with 100 ms on the live model list against one with none
  (target within 10 ms: the list is fetched beside the first request), and the second cell;
- a %%cfai cell's wall time over consuming the same 2,500-chunk stream with WorkersAI.stream
  alone, both inside the kernel (median of --runs; target ratio <= 1.2);
- iopub display messages per answer when chunks arrive at 100, 1,000 and 10,000 chunks/s
  (each answer about 1 s long);
- kernel memory (RSS) every 250 turns over --turns turns of one conversation (flat: what is sent
  is trimmed, and a turn is a few hundred bytes);
- a %%cfai cell against the loop a user would write (requests + sseclient-py, an
  update_display on every chunk) on the same 1 kB to 5 MB answers: time to the final display,
  display messages and their bytes (target: the cell no slower);
- for answers of 10 kB, 1 MB and 10 MB (1 kB chunks, sent as fast as the server can): the time
  from sending the cell to its final display, over the time WorkersAI.stream takes to read the
  same stream in the kernel (target <= 3x at 10 MB); the bytes of display messages over the
  answer's size (target <= 20x); display updates per second (target <= 20);
- a cell printing 100,000 lines, with the extension loaded (which keeps what cells print, for
  --context and explain) over without, in two kernels measured in turn (target <= 1.3).
Usage: python benchmarks/bench_magic.py [--quick]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "kernel"))
from kernelkit import Kernel, displays

from cfai_magic.testing import FakeWorkersAI, Reply


def kernel_value(kernel, code):
    messages, reply = kernel.run(code)
    if reply["content"]["status"] != "ok":
        raise RuntimeError(reply["content"])
    text = "".join(m["content"]["text"] for m in messages if m["msg_type"] == "stream")
    return json.loads(text.strip().splitlines()[-1])


def load_time(fake, kernels):
    times = []
    for _ in range(kernels):
        k = Kernel(fake.env())
        try:
            times.append(kernel_value(k, (
                "import time, json\nt = time.perf_counter()\n"
                "get_ipython().run_line_magic('load_ext', 'cfai_magic')\n"
                "print(json.dumps(time.perf_counter() - t))")))
        finally:
            k.close()
    return statistics.median(times)


def start_time(fake, kernels, extra):
    """Median seconds from starting a kernel to its first execute reply."""
    from jupyter_client.manager import start_new_kernel
    times = []
    for _ in range(kernels):
        start = time.perf_counter()
        km, kc = start_new_kernel(kernel_name="python3", startup_timeout=60,
                                  env={**os.environ, **fake.env()}, extra_arguments=extra)
        try:
            kc.execute_interactive("pass", timeout=60)
            times.append(time.perf_counter() - start)
            if extra:         # the autoload did load it
                reply = kc.execute_interactive("assert 'cfai' in get_ipython()"
                                               ".magics_manager.magics['cell']", timeout=60)
                assert reply["content"]["status"] == "ok"
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=True)
    return statistics.median(times)


def cell_vs_client(kernel, fake, runs):
    fake.enqueue(Reply.large(2500, "tok ", times=10 ** 6))
    code = (
        "import time, json\nfrom cfai_magic import WorkersAI\nc = WorkersAI()\n"
        "cell, raw = [], []\n"
        f"for _ in range({runs}):\n"
        "    t = time.perf_counter(); get_ipython().run_cell_magic('cfai', '--once -m llama2', 'go')\n"
        "    cell.append(time.perf_counter() - t)\n"
        "    t = time.perf_counter(); list(c.stream('llama2', prompt='go'))\n"
        "    raw.append(time.perf_counter() - t)\n"
        "import statistics as s\nprint(json.dumps([s.median(cell), s.median(raw)]))")
    cell, raw = kernel_value(kernel, code)
    fake.reset()
    return cell, raw


def iopub_per_answer(kernel, fake, rate):
    n = rate          # about one second of stream
    fake.enqueue(Reply.large(n, "x ", drip=1.0 / rate))
    messages, _ = kernel.run("%%cfai --once -m llama2\ngo")
    shown = displays(messages)
    return len(shown), shown[-1]["received"] - shown[0]["received"]


def big_answer(kernel, fake, size):
    """(time to the final display, time to read the stream, display bytes, updates)."""
    piece = "word " * 200                                      # 1 kB
    n = size // len(piece)
    fake.enqueue(Reply.large(n, piece, times=2))
    read = kernel_value(kernel, (
        "import time, json\nfrom cfai_magic import WorkersAI\n"
        "t = time.perf_counter(); a = WorkersAI().stream('llama2', prompt='go'); a.consume()\n"
        f"assert a.size == {n * len(piece)}\nprint(json.dumps(time.perf_counter() - t))"))
    start = time.monotonic()
    messages, reply = kernel.run("%%cfai --once -m llama2\ngo", timeout=600)
    assert reply["content"]["status"] == "ok", reply["content"]
    shown = displays(messages)
    final = shown[-1]["content"]["data"]["text/plain"]
    assert final.startswith(piece * 3) and len(final) > n * len(piece)
    sent = sum(len(json.dumps(m["content"]["data"])) for m in shown)
    fake.reset()
    return shown[-1]["received"] - start, read, sent, len(shown)


NAIVE = """
import json, os, time, requests, sseclient
from IPython.display import Markdown, display
url = (os.environ["CFAI_BASE_URL"] + "/accounts/" + os.environ["CLOUDFLARE_ACCOUNT_ID"]
       + "/ai/run/@cf/meta/llama-2-7b-chat-int8")
headers = {"Authorization": "Bearer " + os.environ["CLOUDFLARE_API_TOKEN"]}
shown, text = display(Markdown(""), display_id=True), ""
with requests.post(url, json={"prompt": "go", "stream": True}, headers=headers,
                   stream=True) as response:
    for event in sseclient.SSEClient(response).events():
        if event.data == "[DONE]":
            break
        text += json.loads(event.data)["response"]
        shown.update(Markdown(text))
"""


def against_naive(kernel, fake, size, chunks=100):
    """A %%cfai cell and the loop a user would write (requests + sseclient-py, display and
    update_display on every chunk) on the same answer of ``size`` bytes in ``chunks``
    pieces: for each, (seconds from sending the cell to its final display, display
    messages, their bytes)."""
    piece = "w" * (size // chunks - 1) + " "
    out = []
    for code, mime in (("%%cfai --once -m llama2\ngo", "text/plain"), (NAIVE, "text/markdown")):
        fake.enqueue(Reply.large(chunks, piece))
        start = time.monotonic()
        messages, reply = kernel.run(code, timeout=600)
        assert reply["content"]["status"] == "ok", reply["content"]
        shown = displays(messages)
        assert shown[-1]["content"]["data"][mime].count("w") >= (len(piece) - 1) * chunks, \
            "the final display holds the whole answer"
        out.append((shown[-1]["received"] - start, len(shown),
                    sum(len(json.dumps(m["content"]["data"])) for m in shown)))
    fake.reset()
    return out


def first_cell(fake, latency=0.1):
    """A fresh kernel's first %%cfai cell and its second, with ``latency`` seconds on each page
    of the live model list (the first cell of a session is the one that asks for it, beside its
    own request; a current model: a retired one waits for the list, by design)."""
    fake.model_list_delay = latency
    kernel = Kernel(fake.env())
    try:
        kernel.run("%load_ext cfai_magic")
        times = []
        for _ in range(2):
            fake.enqueue("Hello there")
            start = time.monotonic()
            _, reply = kernel.run("%%cfai --once -m glm\ngo")
            assert reply["content"]["status"] == "ok", reply["content"]
            times.append(reply["received"] - start)
    finally:
        kernel.close()
        fake.model_list_delay = 0.0
    return times


def memory(kernel, fake, turns):
    rows = []
    code = ("import json\nrss = lambda: int(open('/proc/self/status').read()"
            ".split('VmRSS:')[1].split()[0]) // 1024\n")
    kernel.run(code)
    fake.enqueue(Reply(text="An answer of moderate length, about twenty words, to keep each "
                            "turn realistic in size for the memory benchmark here.",
                       times=10 ** 6))
    done = 0
    rows.append((0, kernel_value(kernel, "print(json.dumps(rss()))")))
    step = 250 if turns >= 250 else max(1, turns // 4)
    while done < turns:
        kernel_value(kernel, (
            "from IPython.utils.capture import capture_output\n"
            f"with capture_output():\n    for i in range({step}):\n"
            "        get_ipython().run_cell_magic('cfai', '-m llama2-int8', 'Question number {i}, "
            "asked again and again.')\nprint(json.dumps(0))"))
        done += step
        rows.append((done, kernel_value(kernel, "print(json.dumps(rss()))")))
    fake.reset()
    return rows


def printing(fake, runs, lines=100_000):
    """A cell printing ``lines`` lines: seconds in a kernel with the extension, and without."""
    code = ("import time, json, sys\nt = time.perf_counter()\n"
            f"for i in range({lines}): print('line', i)\nsys.stdout.flush()\n"
            "print(json.dumps(time.perf_counter() - t))")
    bare, loaded = Kernel(fake.env()), Kernel(fake.env())
    try:
        loaded.run("%load_ext cfai_magic")
        times = {"bare": [], "loaded": []}
        for _ in range(runs):
            times["bare"].append(kernel_value(bare, code))
            times["loaded"].append(kernel_value(loaded, code))
        return statistics.median(times["loaded"]), statistics.median(times["bare"])
    finally:
        bare.close()
        loaded.close()


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smoke run for CI")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--kernels", type=int, default=5)
    ap.add_argument("--turns", type=int, default=1000)
    args = ap.parse_args(argv)
    if args.quick:
        args.runs, args.kernels, args.turns = 3, 1, 200
    with FakeWorkersAI() as fake:
        t_load = load_time(fake, args.kernels)
        print(f"%load_ext cfai_magic in a fresh kernel: {t_load * 1e3:.1f} ms "
              f"(median of {args.kernels}; target <= 150 ms) "
              f"{'OK' if t_load <= 0.15 else 'MISSED'}")
        plain, auto = [], []
        for _ in range(max(3, args.kernels)):    # interleaved: the machine's drift hits both
            plain.append(start_time(fake, 1, []))
            auto.append(start_time(fake, 1, ["--ext=cfai_magic.autoload"]))
        plain, auto = statistics.median(plain), statistics.median(auto)
        print(f"kernel start to first reply: {plain * 1e3:.0f} ms, with the autoload "
              f"{auto * 1e3:.0f} ms: {(auto - plain) * 1e3:+.0f} ms (target: no more than "
              f"%load_ext, {t_load * 1e3:.0f} ms) {'OK' if auto - plain <= t_load else 'MISSED'}")
        # the list's share of the first cell: a fresh kernel with 100 ms on the model list
        # against one with none (medians, interleaved); the second cell shows the rest of the
        # first cell's cost (imports, the first connection), which is not the list's
        slow, quick = [], []
        for _ in range(3):
            slow.append(first_cell(fake, latency=0.1))
            quick.append(first_cell(fake, latency=0.0))
        first = statistics.median(f for f, _ in slow)
        base = statistics.median(f for f, _ in quick)
        second = statistics.median(s for _, s in slow)
        print(f"first cell with 100 ms on the model list {first * 1e3:.0f} ms, with none "
              f"{base * 1e3:.0f} ms: {(first - base) * 1e3:+.0f} ms (target within 10 ms) "
              f"{'OK' if first - base <= 0.01 else 'MISSED'}; the second cell {second * 1e3:.0f}"
              f" ms (the first one's imports and connection: {(base - second) * 1e3:+.0f} ms)")
        kernel = Kernel(fake.env())
        try:
            kernel.run("%load_ext cfai_magic")
            cell, raw = cell_vs_client(kernel, fake, args.runs)
            print(f"2,500-chunk answer: %%cfai cell {cell * 1e3:.1f} ms, WorkersAI.stream "
                  f"{raw * 1e3:.1f} ms, ratio {cell / raw:.2f} (target <= 1.2) "
                  f"{'OK' if cell <= 1.2 * raw else 'MISSED'}")
            for rate in (100, 1000, 10000):
                count, seconds = iopub_per_answer(kernel, fake, rate)
                print(f"iopub display messages at {rate:>6,} chunks/s: {count:4d} over "
                      f"{seconds:.2f} s ({count / seconds:.1f}/s; limit 20/s + 5) "
                      f"{'OK' if count <= 20 * seconds + 5 else 'MISSED'}")
            print("a %%cfai cell against the naive loop (requests + sseclient-py, an update per "
                  "chunk), 100 chunks an answer: time to the final display, display "
                  "messages, their bytes")
            for size in (1_000, 100_000, 1_000_000, 5_000_000):
                (c_time, c_msgs, c_bytes), (n_time, n_msgs, n_bytes) = \
                    against_naive(kernel, fake, size)
                print(f"  {size / 1e6:g} MB: cell {c_time * 1e3:7.1f} ms, {c_msgs:3d} messages, "
                      f"{c_bytes / 1e6:8.2f} MB; naive {n_time * 1e3:7.1f} ms, {n_msgs:3d} "
                      f"messages, {n_bytes / 1e6:8.2f} MB; time ratio {c_time / n_time:.2f} "
                      f"(target <= 1.0) {'OK' if c_time <= n_time else 'MISSED'}")
            rows = memory(kernel, fake, args.turns)
            print("kernel RSS by turns: " + ", ".join(f"{t}: {mb} MB" for t, mb in rows))
            for size in (10_000, 1_000_000, 10_000_000):
                shown, read, sent, updates = big_answer(kernel, fake, size)
                ok = ((size < 10_000_000 or shown <= 3 * read) and sent <= 20 * size
                      and updates - 2 <= 20 * shown)
                print(f"{size / 1e6:g} MB answer: final display after {shown:.2f} s, read in "
                      f"{read:.2f} s (ratio {shown / read:.1f}; target <= 3 at 10 MB), display "
                      f"bytes {sent / size:.1f}x the answer (target <= 20), {updates} displays: "
                      f"{updates - 2} updates while streaming "
                      f"({(updates - 2) / shown:.1f}/s; limit 20) "
                      f"{'OK' if ok else 'MISSED'}")
        finally:
            kernel.close()
        kept, bare = printing(fake, args.runs)
        print(f"a cell printing 100,000 lines: {kept:.2f} s with the extension loaded, "
              f"{bare:.2f} s without, ratio {kept / bare:.2f} (target <= 1.3) "
              f"{'OK' if kept <= 1.3 * bare else 'MISSED'}")


if __name__ == "__main__":
    main()
