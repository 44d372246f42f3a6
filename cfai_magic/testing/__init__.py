"""Test helpers that users can use in their own tests too.

``FakeWorkersAI`` is a real loopback server speaking the Workers AI protocol, with scripted
answers and fault injection. With cfai_magic installed, pytest gets the fixture
``fake_workers_ai`` (a started server, stopped after the test).
"""
import time

from .fake import FakeWorkersAI, Reply, words

__all__ = ["FakeWorkersAI", "Reply", "wait_for", "words"]


def wait_for(condition, timeout: float = 60.0, what: str = "the condition"):
    """``condition()``'s first true value, polled; AssertionError after ``timeout`` seconds
    (a bound for a hang, never a speed target)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)
