"""cfai_magic: Cloudflare Workers AI text generation in Jupyter.

``%load_ext cfai_magic`` registers ``%%cfai`` (ask a model; the answer streams into the cell)
and ``%cfai`` (models, chats, settings). ``ChatPanel`` is the same in a widget.
``map(template, rows)`` sends one prompt per row (``%%cfai --map ROWS`` in a cell).
"""
from .errors import CfaiError

__version__ = "0.1.0"
__all__ = ["CfaiError", "ChatPanel", "WorkersAI", "map", "load_ipython_extension",
           "unload_ipython_extension", "__version__"]



def _jupyter_server_extension_points():
    from .serverext import CfaiExtension
    return [{"module": "cfai_magic.serverext", "app": CfaiExtension}]


def load_ipython_extension(ip):
    if "CfaiMagics" in ip.magics_manager.registry:   # loaded already (autoload): one session
        return
    from .magics import CfaiMagics
    magics = CfaiMagics(shell=ip)
    ip.register_magics(magics)          # also lists it in ip.configurables, for %config
    cassette = magics.session._cassette          # CFAI_CASSETTE: say once what it skipped
    if cassette is not None and cassette.report():
        from .safe import plain
        print(plain(cassette.report()))
    completer = getattr(ip, "Completer", None)
    if completer is not None:
        completer.custom_matchers.append(_matcher(magics))


def unload_ipython_extension(ip):
    from .context import uninstall
    uninstall(ip)
    magics = ip.magics_manager.registry.pop("CfaiMagics", None)
    if magics is not None:
        magics.session.close()
    for kind in ("line", "cell"):
        ip.magics_manager.magics[kind].pop("cfai", None)
    ip.configurables[:] = [c for c in ip.configurables if c is not magics]
    completer = getattr(ip, "Completer", None)
    if completer is not None:
        completer.custom_matchers[:] = [m for m in completer.custom_matchers
                                        if getattr(m, "cfai_magics", None) is not magics]


def _matcher(magics):
    """An IPython completion matcher (API v2) for %cfai and %%cfai lines: on those lines its
    candidates (model ids, commands) are the only ones, not after Python's keywords."""
    def match(context):
        found = magics.completions(context.text_until_cursor)
        if found is None:
            return {"completions": [], "suppress": False}
        from IPython.core.completer import SimpleCompletion
        typed, candidates = found
        cut = len(typed) - len(context.token)
        return {"completions": [SimpleCompletion(c[cut:], type="cfai") for c in candidates],
                "suppress": True}
    match.matcher_api_version = 2
    match.cfai_magics = magics
    return match


def __getattr__(name):
    # Lazy, so that %load_ext stays fast: requests and ipywidgets load on first use.
    if name == "WorkersAI":
        from .client import WorkersAI
        return WorkersAI
    if name == "map":
        from .batch import map
        return map
    if name == "ChatPanel":
        from .widget import ChatPanel
        return ChatPanel
    raise AttributeError(name)
