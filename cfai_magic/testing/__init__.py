"""Test helpers that users can use in their own tests too.

``FakeWorkersAI`` is a real loopback server speaking the Workers AI protocol, with scripted
answers and fault injection. With cfai_magic installed, pytest gets the fixture
``fake_workers_ai`` (a started server, stopped after the test).
"""
from .fake import FakeWorkersAI, Reply, words

__all__ = ["FakeWorkersAI", "Reply", "words"]
