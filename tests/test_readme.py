"""The README says what is there: its footer example is what the footer renders, and its
Layout lists every top-level entry of a clone and every module of the package."""
import re
import subprocess
from pathlib import Path

import pytest

from cfai_magic.render import Meter

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_the_footer_example_is_a_real_footer():
    [example] = re.findall(r"`(✓ @cf/zai-org/glm-4\.7-flash · [^`]*)`", README)
    clock = iter([0.0, 5.2])
    meter = Meter(clock=lambda: next(clock))
    meter.first, meter.tokens = 0.2, 212
    usage = {"prompt_tokens": 1200, "completion_tokens": 212,
             "completion_tokens_details": {"reasoning_tokens": 150},
             "prompt_tokens_details": {"cached_tokens": 96}}
    footer = meter.status("@cf/zai-org/glm-4.7-flash", "done", usage, backend="cloudflare",
                          cost={"usd": 0.00008, "billed": True})
    assert footer == example


def layout() -> str:
    return README[README.index("## Layout"):]


def test_the_layout_names_every_top_level_entry():
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout (an sdist)")
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    top = {p.split("/")[0] + ("/" if "/" in p else "") for p in tracked}
    assert [t for t in sorted(top) if f"`{t}" not in layout()] == []


def test_the_layout_names_every_module():
    package = ROOT / "cfai_magic"
    names = [p.name for p in package.glob("*.py") if p.name != "__init__.py"]
    names += [p.name + "/" for p in package.iterdir() if (p / "__init__.py").exists()]
    assert [n for n in sorted(names) if f"`{n}`" not in layout()] == []
