"""cfai-local: run the embedded model behind the Workers AI API.

    cfai-local serve [--host 127.0.0.1] [--port 0] [--model PATH.gguf]
                     [--idle-timeout S] [--record FILE] [--connection-timeout S]
                                                             (token: CFAI_LOCAL_TOKEN)
    cfai-local status
    cfai-local stop
"""
from __future__ import annotations

import argparse
import os
import signal
import sys


def serve(args) -> int:
    from ..config import Secret
    from .model import LocalModel
    from .runtime import (OWNER_ENV, TOKEN_ENV, remove_record, serving, started, tidy,
                          write_record)
    from .server import LocalBackend
    args.token = args.token or os.environ.get(TOKEN_ENV) or None
    hold = serving(args.record_path) if args.record else None
    if args.record and hold is None:       # one server per record
        from .runtime import read_record
        info = read_record(args.record_path) or {}
        print(f"cfai-local: a backend already serves {args.record} (at {info.get('url', '?')}, "
              f"pid {info.get('pid', '?')}): use it, or run cfai-local stop first", flush=True)
        return 1
    print("cfai-local: loading the model…", flush=True)
    model = LocalModel(args.model)
    owner = os.environ.get(OWNER_ENV)
    backend = LocalBackend(model, idle_timeout=args.idle_timeout or None,
                           owner=int(owner) if owner and owner.isdigit() else None)
    server = backend.serve(host=args.host, port=args.port, token=args.token,
                           idle_timeout=args.connection_timeout)
    print(f"cfai-local: {model.name} loaded in {model.load_seconds:.1f} s; serving at {server.url}",
          flush=True)
    print(f"cfai-local: use base_url={server.url} "
          f"({'the token you gave' if args.token else 'any token, any account id'})", flush=True)
    if args.record:
        from .. import __version__
        write_record(args.record_path, {"url": server.url, "token": Secret(args.token or ""),
                                        "pid": os.getpid(), "started": started(os.getpid()),
                                        "model": model.name, "version": __version__})
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        if hold is not None:
            remove_record(args.record_path, os.getpid())
            hold.close()
            tidy(args.record_path)
        server.server_close()
    print("cfai-local: stopped", flush=True)
    return 0


def status(args) -> int:
    """Every local backend this user runs; the one this environment would use is marked."""
    from ..safe import plain               # records are files: their words are untrusted
    from .runtime import answers, backends, record_path, whose
    here = record_path()
    found = backends()
    for path, info in found:
        mark = "*" if path == here else " "
        state = "answering" if answers(info) else "not answering"
        print(plain(f"{mark} {whose(path)}: {info['url']} (pid {info['pid']}, model "
                    f"{info.get('model')}, {state})"))
    if not any(path == here for path, _ in found):
        print(plain(f"{'' if found else 'no local backend is running; '}this environment "
                    f"would start {whose(here)} ({here})"))
        return 1
    print("* the one this environment uses")
    return 0


def stop(args) -> int:
    from .runtime import stop_backend
    print("stopped" if stop_backend() else "not running")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="cfai-local", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="serve the model (prints its URL)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback only)")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--model", help="a GGUF file (default: Gemma 3 270M from PyPI)")
    p.add_argument("--token", help="require this bearer token (default: CFAI_LOCAL_TOKEN, else "
                                   "accept any); on the command line every local user sees it, "
                                   "so prefer the environment variable")
    p.add_argument("--idle-timeout", type=float, default=0,
                   help="exit after this many idle seconds")
    p.add_argument("--record", help="write the URL and token to this file (for kernels to share)")
    p.add_argument("--connection-timeout", type=float, default=15.0,
                   help="close a connection idle (or sending this slowly) for this many seconds")
    sub.add_parser("status", help="every local backend running, and the one used here")
    sub.add_parser("stop", help="stop the shared backend")
    args = ap.parse_args(argv)
    if getattr(args, "record", None):
        from pathlib import Path
        args.record_path = Path(args.record)
    return {"serve": serve, "status": status, "stop": stop}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
