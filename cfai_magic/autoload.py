"""``--ext=cfai_magic.autoload``: what the Jupyter server extension gives Python kernels, so
%%cfai works without %load_ext (and a %load_ext cfai_magic afterwards changes nothing)."""


def load_ipython_extension(ip):
    from . import load_ipython_extension as load
    load(ip)
