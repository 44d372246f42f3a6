"""Soak: many %%cfai cells and chat-panel turns in one real kernel, each drawing a fault.

Against FakeWorkersAI on loopback. Every step draws (from a seeded generator) one of the faults
below, runs it as a cell or as a panel turn, and checks what a user would see:
- turns lost: a turn that succeeded, or was stopped after its text showed (what the user saw
  stays), is missing from the conversation afterwards, or a failed one changed it (must be 0);
- tracebacks shown: an error that is not one line (must be 0);
- cells that did not end: no reply within the time limit (must be 0);
- answers that ended otherwise than expected (ok where an error was due, or the other way);
- kernel memory (RSS) at the start and at the end.
Usage: python benchmarks/soak.py [--steps 1000] [--seed 1] [--quick]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "kernel"))
from kernelkit import Kernel

from cfai_magic.testing import FakeWorkersAI, Reply

INT8, GLM = "@cf/meta/llama-2-7b-chat-int8", "@cf/zai-org/glm-4.7-flash"
NESTED = "[" * 50_000 + "]" * 50_000


def faults():
    """name -> (replies to queue, model, expected: ok | the error's class name)."""
    ok = "ok"
    return {
        "answer": ([Reply(text="A plain answer.")], INT8, ok),
        "401": ([Reply(status=401, code=10000)], INT8, "AuthError"),
        # a cell and a panel turn ask not to wait when the model is busy: one line at once
        "429 busy": ([Reply(status=429, code=3040, retry_after=0.05)], INT8, "RateLimited"),
        "429 quota": ([Reply(status=429, code=3036)], INT8, "QuotaExceeded"),
        "500 then ok": ([Reply(status=500), Reply(text="ok")], INT8, ok),
        "503 always": ([Reply(status=503, times=4)], INT8, "ServerError"),
        "drop mid-stream": ([Reply(text="one two three four", drop_after=2)], INT8,
                            "StreamError"),
        "malformed event": ([Reply(text="one two three", malformed_at=1)], INT8, "StreamError"),
        # a body that ends cleanly after the final usage is complete (as Cloudflare's own
        # provider reads it); without any sign of an end it was cut off
        "no [DONE]": ([Reply(text="one two", done=False)], INT8, ok),
        "cut off": ([Reply(text="one two", done=False, usage=False)], INT8, "Unfinished"),
        "split UTF-8": ([Reply(text="héllo wörld ✓ 日本語 🎉", split=1)], INT8, ok),
        "crlf comments": ([Reply(text="a b c", crlf=True, comments=True)], INT8, ok),
        "BOM": ([Reply(text="with a BOM", bom=True)], INT8, ok),
        "gzip": ([Reply(text="compressed", gzip=True, chunked=False)], INT8, ok),
        "only [DONE]": ([Reply(chunks=[], usage=False)], INT8, "EmptyAnswer"),
        "reasoning only": ([Reply(chunks=[], reasoning="hmm " * 20, finish_reason="length")],
                           GLM, "EmptyAnswer"),
        "chat + reasoning": ([Reply(text="An answer.", reasoning="Thinking it over.")], GLM, ok),
        "text_completion": ([Reply(text="Completed text.", dialect="text")], GLM, ok),
        "json for stream": ([Reply(text="Whole at once.", json_for_stream=True)], GLM, ok),
        "tool call": ([Reply(chunks=[], tool_calls=[{"name": "f", "arguments": {"a": 1}}])],
                      GLM, ok),
        "nested JSON": ([Reply(raw=[NESTED])], INT8, "StreamError"),
        "5028 retired": ([Reply(status=410, code=5028, message="deprecated")], INT8,
                         "ModelRetired"),
        "5035 paid": ([Reply(status=403, code=5035, message="paid plan")], GLM, "PlanRequired"),
        "stall": ([Reply(text="never", stall=1.5)], INT8, "Timeout"),
        "refused": ([], INT8, "ConnectionFailed"),
        "drip + interrupt": ([Reply.large(400, "w ", drip=0.01)], INT8, "Interrupted"),
    }


SETUP = """
import json, os
from cfai_magic import session
from cfai_magic.widget import ChatPanel
s = session.current()
panel = ChatPanel(session=s)
rss = lambda: int(open('/proc/self/status').read().split('VmRSS:')[1].split()[0]) // 1024
turns = lambda: sum(len(s.store.get(n).turns) for n in s.store.names())
"""


def value(kernel, expr):
    messages, _ = kernel.run(f"print(json.dumps({expr}))")
    out = "".join(m["content"]["text"] for m in messages if m["msg_type"] == "stream")
    return json.loads(out.strip().splitlines()[-1])


def run_cell(kernel, model, interrupt):
    code = f"%%cfai -m {model} --max-tokens 64\nquestion"
    msg_id = kernel.send(code)
    fired = threading.Event()

    def watch(msg):
        if interrupt and msg["msg_type"] == "update_display_data" and not fired.is_set():
            fired.set()
            kernel.km.interrupt_kernel()
    messages, reply = kernel.collect(msg_id, timeout=60, on_message=watch)
    content = reply["content"]
    error = None if content["status"] == "ok" else content.get("ename")
    lines = max([len(content.get("traceback") or [])] +
                [len(m["content"]["traceback"]) for m in messages if m["msg_type"] == "error"])
    return error, lines, False


def run_panel(kernel, model):
    code = (f"panel.model.value = {model!r}\n"
            "w = panel.submit('question'); w.join(30)\n"
            "print(json.dumps([w.is_alive(), panel.error.value]))")
    messages, reply = kernel.run(code, timeout=60)
    out = "".join(m["content"]["text"] for m in messages if m["msg_type"] == "stream")
    alive, error_html = json.loads(out.strip().splitlines()[-1])
    error = None
    if error_html:
        error = error_html.split(">", 1)[1].split(":", 1)[0]
    return error, (0 if not alive else 99), alive


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="smoke run for CI (100 steps)")
    args = ap.parse_args(argv)
    steps = 100 if args.quick else args.steps
    rng = random.Random(args.seed)
    matrix = faults()
    names = sorted(matrix)
    counts = {"turns lost": 0, "tracebacks shown": 0, "cells that did not end": 0,
              "unexpected outcomes": 0}
    by_fault = {name: 0 for name in names}
    start = time.monotonic()
    with FakeWorkersAI() as fake:
        kernel = Kernel(fake.env())
        try:
            kernel.run("%load_ext cfai_magic\n%config CfaiMagics.timeout = 1.0")
            kernel.run(SETUP)
            rss_start = value(kernel, "rss()")
            for step in range(steps):
                name = rng.choice(names)
                replies, model, expected = matrix[name]
                by_fault[name] += 1
                fake.reset()
                fake.enqueue(*[dataclasses.replace(r) for r in replies])   # the fake counts down
                as_panel = rng.random() < 0.3 and name not in ("drip + interrupt",)
                if name == "refused":
                    kernel.run("%cfai backend http://127.0.0.1:9")
                before = value(kernel, "turns()")
                try:
                    if as_panel:
                        error, lines, stuck = run_panel(kernel, model)
                    else:
                        error, lines, stuck = run_cell(kernel, model,
                                                       name == "drip + interrupt")
                except Exception as exc:             # no reply in time (queue.Empty)
                    counts["cells that did not end"] += 1
                    print(f"step {step} ({name}): no end ({type(exc).__name__})")
                    kernel.km.interrupt_kernel()
                    continue
                finally:
                    if name == "refused":
                        kernel.run("%cfai backend auto")
                after = value(kernel, "turns()")
                outcome = error or "ok"
                if stuck is True and as_panel:
                    counts["cells that did not end"] += 1
                if error and lines > 1:
                    counts["tracebacks shown"] += 1
                    print(f"step {step} ({name}): {lines}-line traceback ({error})")
                kept = outcome == "ok" or (outcome == "Interrupted" and not as_panel)
                if after != before + (1 if kept else 0):
                    counts["turns lost"] += 1
                    print(f"step {step} ({name}, {'panel' if as_panel else 'cell'}): turns "
                          f"{before} -> {after} after {outcome}")
                if outcome != expected and not (as_panel and expected == "Interrupted"):
                    counts["unexpected outcomes"] += 1
                    print(f"step {step} ({name}, {'panel' if as_panel else 'cell'}): "
                          f"{outcome}, expected {expected}")
            rss_end = value(kernel, "rss()")
        finally:
            kernel.close()
    seconds = time.monotonic() - start
    print(f"soak: {steps} steps ({len(names)} faults, seed {args.seed}) in {seconds:.0f} s")
    for key, n in counts.items():
        print(f"  {key}: {n}" + ("" if n == 0 else "   <- must be 0"))
    print(f"  kernel RSS: {rss_start} MB at the start, {rss_end} MB at the end")
    if any(counts.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
