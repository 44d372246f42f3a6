"""The README's demo as a user runs it: JupyterLab on copies of the notebooks, so that what
JupyterLab saves (autosave, Save) never changes a tracked file, and the test command still
passes after any demo."""
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from cfai_magic.local import runtime
from cfai_magic.testing import wait_for
from conftest import TOKEN, free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def clone(tmp_path):
    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout (an sdist): nothing tracked to keep clean")
    if not runtime.installed():
        pytest.skip("the embedded model is not installed (the demo warms it up)")
    subprocess.run(["git", "clone", "-q", str(ROOT), str(tmp_path / "clone")], check=True)
    return tmp_path / "clone"


def status(folder: Path) -> str:
    return subprocess.run(["git", "status", "--porcelain"], cwd=folder, capture_output=True,
                          text=True, check=True).stdout


def test_saving_a_demo_notebook_leaves_git_status_clean(clone, tmp_path):
    port = free_port()
    env = {**os.environ, "JUPYTER_TOKEN": TOKEN, "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt"), "CFAI_LOCAL_RECORD": "",
           "CLOUDFLARE_API_TOKEN": "", "CLOUDFLARE_ACCOUNT_ID": ""}
    log = tmp_path / "demo.log"
    with open(log, "w") as out:
        demo = subprocess.Popen([str(Path(sys.executable).with_name("cfai-demo")),
                                 "--no-browser", "--port", str(port)], cwd=clone, env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    api = f"http://127.0.0.1:{port}/api/contents"
    auth = {"Authorization": f"token {TOKEN}"}

    def up():
        assert demo.poll() is None, log.read_text()[-3000:]
        try:
            return requests.get(f"{api}/01-quickstart.ipynb", headers=auth, timeout=5).ok
        except requests.ConnectionError:
            return False
    try:
        wait_for(up, timeout=180, what="the demo's JupyterLab")
        model = requests.get(f"{api}/01-quickstart.ipynb", headers=auth, timeout=10).json()
        nb = model["content"]
        nb["cells"][0]["source"] += "\n<!-- edited in the demo -->"
        for cell in nb["cells"]:                 # what a live run leaves: new outputs
            if cell["cell_type"] == "code":
                cell["outputs"] = [{"output_type": "stream", "name": "stdout",
                                    "text": "a live answer\n"}]
        saved = requests.put(f"{api}/01-quickstart.ipynb", headers=auth, timeout=10,
                             data=json.dumps({"type": "notebook", "format": "json",
                                              "content": nb}))
        assert saved.ok, saved.text
    finally:
        os.killpg(demo.pid, signal.SIGTERM)
        demo.wait(30)
    assert "edited in the demo" in (clone / "notebooks/.work/01-quickstart.ipynb").read_text()
    assert "edited in the demo" not in (clone / "notebooks/01-quickstart.ipynb").read_text()
    assert status(clone) == ""                   # nothing tracked changed, nothing untracked
    assert "opening copies in" in log.read_text()
