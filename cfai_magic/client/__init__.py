"""The client: the only code in cfai_magic that touches the network.

Names load lazily, so importing the events (as the renderer does) does not load requests.
"""
from .events import Done, Reasoning, Text, ToolCall, Usage

__all__ = ["WorkersAI", "Answer", "Result", "Stream", "Text", "Reasoning", "ToolCall", "Usage",
           "Done"]


def __getattr__(name):
    if name in ("WorkersAI", "Result", "Stream"):
        from . import workers_ai
        return getattr(workers_ai, name)
    if name == "Answer":
        from .answer import Answer
        return Answer
    raise AttributeError(name)
