"""cfai_magic: Cloudflare Workers AI text generation in Jupyter.

``%load_ext cfai_magic`` registers ``%%cfai`` and ``%cfai``.
"""
from .errors import CfaiError

__version__ = "0.1.0"
__all__ = ["CfaiError", "WorkersAI", "__version__"]


def __getattr__(name):
    # Lazy, so that %load_ext stays fast: requests is imported on first use.
    if name == "WorkersAI":
        from .client import WorkersAI
        return WorkersAI
    raise AttributeError(name)
