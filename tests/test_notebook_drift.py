"""The slower check: re-run the demo notebooks live on the local model and report which
recorded answers have drifted (pytest -m drift). It fails only if a notebook cannot run."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cfai_magic.local.runtime import installed, stop_backend

pytestmark = [pytest.mark.drift, pytest.mark.local]
ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(not installed(), reason="the embedded model is not installed")
def test_report_drift_against_the_live_model():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLOUDFLARE_", "CFAI_"))}
    try:
        result = subprocess.run([sys.executable, str(ROOT / "notebooks" / "make.py"), "drift"],
                                capture_output=True, text=True, env=env, timeout=1200)
    finally:
        stop_backend()           # the one the notebooks started (in this test's runtime dir)
    report = "\n".join(line for line in result.stdout.splitlines() if "WARNING" not in line)
    print(report)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "drift:" in report
