"""The Jupyter server extension: %%cfai in every notebook, one local backend per server.

Enabled by ``jupyter-config/jupyter_server_config.d/cfai_magic.json`` (installed with the
package). Settings, as traitlets (``--CfaiExtension.autoload=False`` on the command line, or
``c.CfaiExtension.local = False`` in ``jupyter_server_config.py``):

- ``autoload``: Python kernels this server starts have ``%%cfai`` without ``%load_ext`` (the
  server adds ``--ext=cfai_magic.autoload`` to their command; a user's own
  ``InteractiveShellApp.extensions`` is left as it is). ``CFAI_AUTOLOAD=0`` turns it off too.
- ``local``: the server's kernels share one embedded local backend, started by the first kernel
  that needs it, recorded in a 0600 file of this server's, watching the server's process and
  stopped with the server. Its token reaches kernels in that file, never on a command line.

``GET {base_url}/cfai/status`` (Jupyter's own authentication) says what runs: never a secret.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.application import ExtensionApp
from tornado import web
from traitlets import Bool

AUTOLOAD_ARG = "--ext=cfai_magic.autoload"


class StatusHandler(APIHandler):
    def initialize(self, extension: CfaiExtension):
        self.extension = extension

    @web.authenticated
    def get(self):
        self.finish(json.dumps(self.extension.status()))


class CfaiExtension(ExtensionApp):
    name = "cfai_magic"

    autoload = Bool(True, help="Give the Python kernels this server starts %%cfai without "
                               "%load_ext.").tag(config=True)
    local = Bool(True, help="Own the embedded local backend: one for this server's kernels, "
                            "stopped with the server.").tag(config=True)

    def initialize_settings(self):
        self.started = time.time()
        if os.environ.get("CFAI_AUTOLOAD", "1") == "0":
            self.autoload = False
        if self.autoload:
            self._autoload_kernels()
        if self.local:
            from .local import runtime
            given = os.environ.get(runtime.RECORD_ENV)           # cfai-demo warmed one up
            self.record = Path(given) if given else \
                runtime.runtime_dir() / f"cfai-local-server-{os.getpid()}.json"
            os.environ[runtime.RECORD_ENV] = str(self.record)   # kernels inherit these
            os.environ.setdefault(runtime.OWNER_ENV, str(os.getpid()))

    def initialize_handlers(self):
        self.handlers.append((r"/cfai/status", StatusHandler, {"extension": self}))

    def _autoload_kernels(self) -> None:
        manager = self.serverapp.kernel_manager  # type: ignore[union-attr]   # set by now
        start = manager.start_kernel
        specs = manager.kernel_spec_manager

        async def start_kernel(*args, **kwargs):
            name = kwargs.get("kernel_name") or manager.default_kernel_name
            try:
                python = specs.get_kernel_spec(name).language.lower() == "python"
            except Exception:       # an unknown spec: the manager will say so itself
                python = False
            if python:
                kwargs["extra_arguments"] = [*kwargs.get("extra_arguments", []), AUTOLOAD_ARG]
            return await start(*args, **kwargs)
        manager.start_kernel = start_kernel  # type: ignore[method-assign]   # wrapped, on purpose

    def status(self) -> dict:
        """What the extension does and what the local backend is doing (no secrets)."""
        backend = None
        if self.local:
            from .local import runtime
            info = runtime.read_record(self.record)
            if runtime.owns(info):
                backend = {"pid": info["pid"], "model": info.get("model"),
                           **runtime.backend_status(info)}
        return {"autoload": self.autoload, "local": self.local,
                "uptime": round(time.time() - self.started, 1), "backend": backend}

    async def stop_extension(self):
        """The server stops: so does the local backend it owns."""
        if self.local:
            from .local import runtime
            runtime.stop_backend(self.record)
