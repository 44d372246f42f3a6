"""Maintain the demo notebooks and their cassettes.

    python notebooks/make.py record    live answers (the embedded local model, fixed seeds) into
                                       the cassettes, then the outputs by replaying them
    python notebooks/make.py outputs   the committed outputs, by replaying the cassettes
    python notebooks/make.py drift     run live into scratch cassettes and report which answers
                                       differ from the committed ones (exit 0 either way)

Run with no Cloudflare credentials set, so "live" means the local model. A notebook whose
metadata holds ``cfai.scripted`` (a list of answers) asks what no local model can answer (an
image, say): it is recorded against the fake server giving those answers, and has no drift.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import nbformat

from cfai_magic.cassette import entries
from cfai_magic.testing.notebooks import cassette_for, execute

HERE = Path(__file__).resolve().parent


def notebooks(names=()) -> list[Path]:
    found = sorted(HERE.glob("[0-9][0-9]-*.ipynb"))
    return [p for p in found if not names or p.stem in names]


def clean(nb) -> None:
    """No timings, no saved widget state (it is model ids and layout, not content)."""
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)


def outputs(paths) -> None:
    for path in paths:
        nb = execute(path, "replay")
        clean(nb)
        nbformat.write(nb, path)
        errors = [c for c in nb.cells if any(o.get("output_type") == "error" for o in c.get("outputs", []))]
        print(f"{path.name}: outputs written ({len(errors)} cells end in an error, by design)")


def scripted(path) -> list | None:
    return nbformat.read(path, as_version=4).metadata.get("cfai", {}).get("scripted")


def record(paths) -> None:
    for path in paths:
        cassette = cassette_for(path)
        cassette.unlink(missing_ok=True)
        answers = scripted(path)
        if answers:
            from cfai_magic.testing import FakeWorkersAI
            from cfai_magic.testing.notebooks import patched_environ
            with FakeWorkersAI() as fake, patched_environ(fake.env()):
                fake.enqueue(*answers)
                execute(path, "record")
        else:
            execute(path, "record")
        count = len(entries(cassette)) if cassette.exists() else 0
        print(f"{path.name}: recorded {count} answers into {cassette.relative_to(HERE)}")
    outputs(paths)


def drift(paths) -> int:
    changed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for path in paths:
            if scripted(path):
                print(f"{path.name}: recorded from the fake's scripted answers; nothing live "
                      "to compare")
                continue
            scratch = Path(tmp) / f"{path.stem}.json"
            execute(path, "record", cassette=scratch)
            committed = entries(cassette_for(path))
            live = entries(scratch) if scratch.exists() else []
            rows = []
            if committed and not live:
                print(f"{path.name}: replays its own cassette; nothing to compare")
                continue
            for i, old in enumerate(committed):
                new = next((x for x in live if x["request"] == old["request"]), None)
                was = "".join(old["response"]["chunks"])
                if new is None:
                    rows.append(f"  [{i}] {old['request']['model']}: asked differently now "
                                "(an earlier answer in its conversation drifted)")
                elif "".join(new["response"]["chunks"]) != was:
                    now = "".join(new["response"]["chunks"])
                    at = next((k for k, (a, b) in enumerate(zip(was, now)) if a != b),
                              min(len(was), len(now)))
                    rows.append(f"  [{i}] {old['request']['model']}: differs from character {at}: "
                                f"recorded {was[at:at + 40]!r} · live {now[at:at + 40]!r}")
            same = len(committed) - len(rows)
            print(f"{path.name}: {same} of {len(committed)} recorded answers unchanged live")
            print("\n".join(rows)) if rows else None
            changed += len(rows)
    print(f"drift: {changed} answers differ from their cassettes")
    return changed


def main(argv) -> int:
    if not argv or argv[0] not in ("record", "outputs", "drift"):
        print(__doc__)
        return 2
    paths = notebooks(argv[1:])
    if argv[0] == "record":
        record(paths)
    elif argv[0] == "outputs":
        outputs(paths)
    else:
        drift(paths)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
