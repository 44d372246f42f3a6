"""The local backend against hostile clients (bounded, loopback only): `cfai-local serve` in its
own process, the real model loaded, raw sockets."""
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests

from cfai_magic.testing import wait_for
from rawhttp import read_head

TOKEN = "hostile-test-token-1234567890"
IDLE = 3.0                      # the server's connection timeout in this test


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


@pytest.fixture
def served(tmp_path):
    """`cfai-local serve` on a free port; its record says where."""
    record = tmp_path / "record.json"
    log = open(tmp_path / "serve.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "cfai_magic.local", "serve", "--port", "0", "--record",
         str(record), "--connection-timeout", str(IDLE)],
        env={**os.environ, "CFAI_LOCAL_TOKEN": TOKEN}, stdout=log, stderr=subprocess.STDOUT)
    info = wait_for(lambda: record.exists() and json.loads(record.read_text()),
                    what="the backend's record")
    host, port = info["url"].split("//")[1].split("/")[0].split(":")
    yield {"proc": proc, "host": host, "port": int(port), "url": info["url"], "record": record,
           "log": tmp_path / "serve.log"}
    proc.send_signal(signal.SIGTERM)
    proc.wait(15)
    log.close()


def raw(served, data: bytes = b"") -> socket.socket:
    s = socket.create_connection((served["host"], served["port"]), timeout=10)
    if data:
        s.sendall(data)
    return s


def head(served, length: str, token: str | None = None) -> bytes:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return (f"POST /client/v4/accounts/x/ai/run/@local/gemma-3-270m HTTP/1.1\r\n"
            f"Host: {served['host']}:{served['port']}\r\nContent-Type: application/json\r\n"
            f"{auth}Content-Length: {length}\r\n\r\n").encode()


def test_a_huge_body_without_a_token_is_refused_before_it_is_read(served):
    pid = served["proc"].pid
    before = rss_kb(pid)
    sock = raw(served, head(served, str(200 * 1024 * 1024)))
    block, sent = b"x" * (1 << 20), 0
    try:
        while sent < 200:                     # 200 MB, unless the server closes first
            sock.sendall(block)
            sent += 1
    except (BrokenPipeError, ConnectionResetError):
        pass
    try:
        reply = read_head(sock)
    except ConnectionResetError:
        reply = b""
    sock.close()
    grown = (rss_kb(pid) - before) / 1024
    print(f"\nsent {sent} MB of a 200 MB body before the server closed; RSS grew {grown:.1f} MB")
    assert sent < 200 and grown < 20
    assert reply == b"" or reply.startswith(b"HTTP/1.1 401")


@pytest.mark.parametrize("length", ["-1", "abc", "1e9", "0x10", str(17 * 1024 * 1024)])
def test_bad_or_too_large_lengths_are_answered_at_once(served, length):
    sock = raw(served, head(served, length, TOKEN))
    reply = read_head(sock).decode("latin-1")
    sock.close()
    status = 413 if length.isdigit() else 400
    assert reply.startswith(f"HTTP/1.1 {status}"), reply[:80]
    assert "Connection: close" in reply


def test_idle_connections_neither_block_nor_linger(served):
    opened = time.monotonic()
    idle, ages = [], []
    for _ in range(500):
        idle.append(raw(served))
        ages.append(time.monotonic())
    started = time.monotonic()
    print(f"\n500 connections opened in {started - opened:.2f} s")
    r = requests.post(f"{served['url']}/accounts/x/ai/run/@local/gemma-3-270m",
                      json={"prompt": "Hi", "max_tokens": 2}, timeout=30,
                      headers={"Authorization": f"Bearer {TOKEN}"})
    took = time.monotonic() - started
    assert r.status_code == 200 and r.json()["success"] is True
    print(f"\nanswered in {took:.2f} s beside 500 idle connections")

    def closed(sock):
        sock.settimeout(0.01)
        try:
            return sock.recv(1) == b""
        except TimeoutError:
            return False
        except OSError:
            return True
    # answered beside them: none the server's timeout cannot have reached yet was closed
    # (by age, not by a duration: a busy machine only makes fewer of them young enough)
    now = time.monotonic()
    young = [s for s, at in zip(idle, ages) if now - at < IDLE / 2]
    print(f"{len(young)} of 500 idle connections young enough to check")
    readable = select.select(young, [], [], 0)[0]     # all at once: a closed one reads EOF
    assert not [s for s in readable if closed(s)]
    wait_for(lambda: all(closed(s) for s in idle), timeout=IDLE * 10,
             what="the server to close idle connections")
    for s in idle:
        s.close()


def test_a_second_serve_on_the_same_record_says_why_it_cannot(served):
    again = subprocess.run([sys.executable, "-m", "cfai_magic.local", "serve", "--port", "0",
                            "--record", str(served["record"])], capture_output=True, text=True,
                           timeout=60, env={**os.environ, "CFAI_LOCAL_TOKEN": "other-token-xyz"})
    assert again.returncode == 1
    assert "already serves" in again.stdout and served["url"] in again.stdout
    info = json.loads(served["record"].read_text())
    assert info["pid"] == served["proc"].pid and served["proc"].poll() is None
