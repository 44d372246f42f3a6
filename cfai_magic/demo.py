"""cfai-demo: the demo notebooks, offline, on the embedded local model.

    cfai-demo            start the shared local backend, then JupyterLab on copies of the
                         notebooks (notebooks/.work/, ignored by git) with the quick start open
    cfai-demo --fresh    the same, with the copies replaced by the notebooks as committed
    cfai-demo --check    run the quick start headless, live (no cassette), and print its answers
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path


def find_notebooks(given: str | None) -> Path:
    here = Path(__file__).resolve().parents[1] / "notebooks"
    for candidate in [Path(given)] if given else [Path.cwd() / "notebooks", here]:
        if (candidate / "01-quickstart.ipynb").exists():
            return candidate
    raise SystemExit("cfai-demo: no notebooks/01-quickstart.ipynb here; run it from a clone of "
                     "cfai_magic or pass --notebooks DIR")


WORK = ".work"                          # the copies the demo opens, under notebooks/


def work_copies(folder: Path, fresh: bool = False) -> Path:
    """Copies of the demo notebooks (and their cassettes and chat files) that JupyterLab may
    save over: a tracked file is never changed by a demo. A copy the user has edited is kept
    unless ``fresh``."""
    import shutil
    work = folder / WORK
    if fresh and work.exists():
        shutil.rmtree(work)

    def copy(src, dst):
        if not Path(dst).exists():
            shutil.copy2(src, dst)
    shutil.copytree(folder, work, dirs_exist_ok=True, copy_function=copy,
                    ignore=shutil.ignore_patterns(WORK, ".ipynb_checkpoints", "__pycache__",
                                                  "*.py", "*.sh", "*.cfg"))
    return work


def warm_up() -> None:
    """Start (or find) the shared local backend and say how it answers."""
    from .client import WorkersAI
    from .local import ensure_backend
    start = time.monotonic()
    info = ensure_backend()
    client = WorkersAI("local", info["token"], base_url=info["url"])
    stream = client.stream("@local/gemma-3-270m", prompt="Say hello.", max_tokens=16,
                           temperature=0)
    text = "".join(stream)
    print(f"cfai-demo: local model ready at {info['url']} in {time.monotonic() - start:.1f} s "
          f"({stream.served_by}); it says: {text!r}")


def check(folder: Path) -> int:
    """The quick start, live: every cell's text output, as a reader would see it."""
    from .testing.notebooks import execute
    env_has_creds = os.environ.get("CLOUDFLARE_API_TOKEN")
    print(f"cfai-demo: running {folder / '01-quickstart.ipynb'} live on "
          f"{'Cloudflare' if env_has_creds else 'the embedded local model'}")
    import tempfile
    with tempfile.TemporaryDirectory(prefix="cfai-demo-") as scratch:   # nothing left behind
        nb = execute(folder / "01-quickstart.ipynb", mode="record",
                     cassette=Path(scratch) / "cassette.jsonl")
    failures = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        print(f"\n>>> {cell.source}")
        for out in cell.outputs:
            if out.output_type == "stream":
                print(out.text.rstrip())
            elif out.output_type == "error":
                failures += "raises-exception" not in cell.metadata.get("tags", [])
                print(f"{out.ename}: {out.evalue}")
            else:
                print(out.get("data", {}).get("text/plain", "").rstrip())
    print(f"\ncfai-demo: {'OK' if not failures else f'{failures} unexpected errors'}")
    return 1 if failures else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="cfai-demo", description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="run the quick start headless")
    ap.add_argument("--notebooks", help="the notebooks folder (default: ./notebooks)")
    ap.add_argument("--port", type=int, default=8888)
    ap.add_argument("--fresh", action="store_true",
                    help="replace the working copies with the notebooks as committed")
    ap.add_argument("--no-browser", action="store_true", help="do not open a browser")
    args = ap.parse_args(argv)
    folder = find_notebooks(args.notebooks)
    if args.check:
        return check(folder)
    from .local import runtime         # the backend warmed up here is the one lab's kernels use
    os.environ[runtime.RECORD_ENV] = str(runtime.runtime_dir() / f"cfai-demo-{os.getpid()}.json")
    os.environ[runtime.OWNER_ENV] = str(os.getpid())
    warm_up()
    work = work_copies(folder, args.fresh)
    print(f"cfai-demo: opening copies in {work} (the committed notebooks stay as they are; "
          "--fresh starts over)")
    cmd = [sys.executable, "-m", "jupyter", "lab", f"--ServerApp.root_dir={work}",
           f"--port={args.port}", *(["--no-browser"] if args.no_browser else []),
           "01-quickstart.ipynb"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.insert(4, "--allow-root")   # JupyterLab refuses root otherwise (containers, CI)
    print("cfai-demo: starting JupyterLab (Ctrl-C to stop): " + " ".join(cmd[1:]))
    return subprocess.call(cmd, cwd=work)


if __name__ == "__main__":
    sys.exit(main())
