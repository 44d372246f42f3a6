"""cfai_magic: Cloudflare Workers AI text generation in Jupyter.

``%load_ext cfai_magic`` registers ``%%cfai`` (ask a model; the answer streams into the cell)
and ``%cfai`` (models, chats, settings). ``ChatPanel`` is the same in a widget.
"""
from .errors import CfaiError

__version__ = "0.1.0"
__all__ = ["CfaiError", "ChatPanel", "WorkersAI", "load_ipython_extension",
           "unload_ipython_extension", "__version__"]

_COMPLETE_KEYS = ("%cfai", "%%cfai")


def load_ipython_extension(ip):
    from .magics import CfaiMagics
    magics = CfaiMagics(shell=ip)
    ip.register_magics(magics)          # also lists it in ip.configurables, for %config
    def complete(shell, event):
        return magics.complete(event)

    for key in _COMPLETE_KEYS:
        ip.set_hook("complete_command", complete, str_key=key)


def unload_ipython_extension(ip):
    magics = ip.magics_manager.registry.pop("CfaiMagics", None)
    for kind in ("line", "cell"):
        ip.magics_manager.magics[kind].pop("cfai", None)
    ip.configurables[:] = [c for c in ip.configurables if c is not magics]
    dispatch = ip.strdispatchers.get("complete_command")
    for key in _COMPLETE_KEYS:
        if dispatch is not None:
            dispatch.strs.pop(key, None)


def __getattr__(name):
    # Lazy, so that %load_ext stays fast: requests and ipywidgets load on first use.
    if name == "WorkersAI":
        from .client import WorkersAI
        return WorkersAI
    if name == "ChatPanel":
        from .widget import ChatPanel
        return ChatPanel
    raise AttributeError(name)
