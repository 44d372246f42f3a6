"""A real Jupyter server on a free loopback port, and kernels started through its REST API."""
import os
import socket
import subprocess
import sys
import time

import pytest
import requests

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "kernel"))
from kernelkit import Kernel

TOKEN = "server-test-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, home, *options, env=None):
        self.home, self.port = home, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.runtime = home / "rt"
        (home / "root").mkdir(parents=True, exist_ok=True)
        self.log = home / "server.log"
        self.env = {**os.environ, "JUPYTER_TOKEN": TOKEN,            # not on a command line
                    "JUPYTER_CONFIG_DIR": str(home / "config"),
                    "JUPYTER_RUNTIME_DIR": str(self.runtime), **(env or {})}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyter", "server", "--no-browser",
             "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}",
             "--ServerApp.port_retries=0", f"--ServerApp.root_dir={home / 'root'}",
             "--allow-root", *options],
            env=self.env, stdout=open(self.log, "w"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while not self.answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the server did not start: " + self.log.read_text()[-3000:])
            time.sleep(0.1)
        self.kernels = []

    def answers(self) -> bool:
        try:
            return self.get("/api/status").ok
        except requests.RequestException:
            return False

    def get(self, path, token=TOKEN):
        headers = {"Authorization": f"token {token}"} if token else {}
        return requests.get(self.url + path, headers=headers, timeout=10)

    def kernel(self) -> Kernel:
        """A kernel started by the server (POST /api/kernels), reached through its
        connection file, as JupyterLab's kernels are."""
        r = requests.post(f"{self.url}/api/kernels", json={"name": "python3"},
                          headers={"Authorization": f"token {TOKEN}"}, timeout=30)
        r.raise_for_status()
        from jupyter_client import BlockingKernelClient
        kc = BlockingKernelClient(connection_file=str(self.runtime / f"kernel-{r.json()['id']}.json"))
        kc.load_connection_file()
        kc.start_channels()
        kc.wait_for_ready(timeout=60)
        kernel = Kernel.__new__(Kernel)
        kernel.kc = kc
        self.kernels.append(kc)
        return kernel

    def stop(self) -> None:
        for kc in self.kernels:
            kc.stop_channels()
        self.kernels = []
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture
def jupyter_server(tmp_path):
    """``jupyter_server(*options)`` starts one; all stop at the end."""
    started = []

    def start(*options, env=None):
        server = Server(tmp_path / f"s{len(started)}", *options, env=env)
        started.append(server)
        return server
    yield start
    for server in started:
        server.stop()
