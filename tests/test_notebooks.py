"""The demo notebooks and their cassettes: secrets, strictness, and tests of the nbval check."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from cfai_magic.cassette import entries

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))
FILES = NOTEBOOKS + sorted((ROOT / "notebooks" / "cassettes").glob("*.json"))
# Cloudflare API tokens are 40 characters of [A-Za-z0-9_-]; account ids are 32 hex digits.
TOKEN = re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{40}(?![A-Za-z0-9_-])")
ACCOUNT = re.compile(r"(?<![0-9a-fA-F])[0-9a-f]{32}(?![0-9a-fA-F])")
NBVAL = ["--nbval", "--nbval-current-env", "--nbval-sanitize-with", "sanitize.cfg",
         "-p", "no:cacheprovider", "-o", "addopts=", "-q"]


def strings(obj, path=()):
    """Every string in a JSON document, with where it is."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from strings(v, path + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from strings(v, path + (i,))
    elif isinstance(obj, str):
        yield path, obj


IMAGE = re.compile(r"data:image/[a-z+.-]+;base64,[A-Za-z0-9+/=]+")   # a thumbnail's pixels


def looks_secret(text: str) -> list[str]:
    text = IMAGE.sub("data:image", text)
    found = [m for m in TOKEN.findall(text) if re.search(r"\d", m) and re.search(r"[A-Za-z]", m)]
    return found + ACCOUNT.findall(text)


def test_the_scanner_finds_what_it_should():
    assert looks_secret("token: Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7dEf0g")
    assert looks_secret("account 0123456789abcdef0123456789abcdef here")
    assert not looks_secret("def reverse_string(s): return s[::-1]")
    assert not looks_secret('<img src="data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAGAAAABCCAYAAACo">')
    assert looks_secret("data:image/png;base64,AAAA then Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7dEf0g")


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_no_token_or_account_id_in_notebooks_or_cassettes(path):
    doc = json.loads(path.read_text())
    hits = []
    for where, text in strings(doc):
        if {"application/vnd.jupyter.widget-view+json",          # widget model ids are uuids
                "application/vnd.jupyter.widget-state+json"} & set(where):
            continue
        hits += [(where, s) for s in looks_secret(text)]
    assert hits == []


def strictness():
    checked = total = 0
    for path in NOTEBOOKS:
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type != "code" or not cell.outputs:
                continue
            total += 1
            tags = set(cell.metadata.get("tags", []))
            ignored = "NBVAL_IGNORE_OUTPUT" in cell.source or "NBVAL_SKIP" in cell.source \
                or tags & {"nbval-ignore-output", "nbval-skip"}
            checked += not ignored
    return checked, total


def test_most_output_cells_are_checked_strictly():
    checked, total = strictness()
    print(f"strictly checked: {checked} of {total} output-producing cells ({checked / total:.0%})")
    assert checked / total >= 0.8


def test_every_notebook_has_its_cassette_and_a_kernelspec():
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        assert nb.metadata["kernelspec"]["name"] == "python3"
        assert (path.parent / "cassettes" / f"{path.stem}.json").exists()


@pytest.fixture
def copy(tmp_path):
    dest = tmp_path / "notebooks"
    shutil.copytree(ROOT / "notebooks", dest,
                    ignore=shutil.ignore_patterns("*.cfai-chats.json", ".ipynb_checkpoints"))
    return dest


def run_nbval(where: Path, *targets, wrap=(), env=None):
    cmd = [*wrap, sys.executable, "-m", "pytest", *NBVAL, *targets]
    return subprocess.run(cmd, cwd=where, capture_output=True, text=True, timeout=600,
                          env=env or os.environ)


def test_a_changed_answer_fails_the_cell_that_shows_it(copy):
    cassette = copy / "cassettes" / "01-quickstart.json"
    recorded = entries(cassette)
    recorded[1]["response"]["chunks"][0] = "Tampered "
    cassette.write_text("".join(json.dumps(x) + "\n"
                                for x in [{"cfai_cassette": 2, "generation": "t"}, *recorded]))
    result = run_nbval(copy, "01-quickstart.ipynb", "-rf")
    assert result.returncode == 1, result.stdout[-2000:]
    failed = re.findall(r"FAILED (.+?) - ", result.stdout)
    # the second recording is the story, shown by code cell 3 (counting from 0)
    assert failed == ["01-quickstart.ipynb::Cell 3"], result.stdout[-3000:]
    assert "Tampered" in result.stdout


def test_replay_needs_no_network_and_no_credentials(copy):
    if shutil.which("unshare") is None or subprocess.run(
            ["unshare", "-n", "true"], capture_output=True).returncode != 0:
        pytest.skip("cannot make a network namespace here (unshare -n), so cannot cut the network")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CLOUDFLARE_", "CFAI_"))}
    wrap = ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh"]
    result = run_nbval(copy, *[p.name for p in NOTEBOOKS], wrap=wrap, env=env)
    assert result.returncode == 0, result.stdout[-3000:]
    assert re.search(r"\d+ passed", result.stdout)
