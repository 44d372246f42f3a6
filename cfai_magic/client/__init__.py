"""The Workers AI client: the only code in cfai_magic that touches the network."""
from .workers_ai import Result, Stream, WorkersAI

__all__ = ["WorkersAI", "Result", "Stream"]
