"""A real IPython kernel driven through jupyter_client, as JupyterLab drives it."""
import os
import queue
import time
from contextlib import contextmanager

from jupyter_client.manager import start_new_kernel


class Kernel:
    def __init__(self, env: dict | None = None, cwd: str | None = None):
        self.km, self.kc = start_new_kernel(kernel_name="python3", startup_timeout=60,
                                            env={**os.environ, **(env or {})}, cwd=cwd)

    def close(self):
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)

    def send(self, code: str, cell_id: str | None = None, user_expressions=None,
             allow_stdin: bool = False) -> str:
        """An execute_request carrying JupyterLab's cellId metadata; returns its msg_id."""
        content = dict(code=code, silent=False, store_history=True, allow_stdin=allow_stdin,
                       user_expressions=user_expressions or {}, stop_on_error=True)
        msg = self.kc.session.msg("execute_request", content,
                                  metadata={"cellId": cell_id} if cell_id else {})
        self.kc.shell_channel.send(msg)
        return msg["header"]["msg_id"]

    def collect(self, msg_id: str, timeout: float = 60, on_message=None, answer=None):
        """iopub messages of one request, each with the time it arrived, and the reply.
        ``answer(prompt)`` replies to the kernel's input requests, as a front end's box does."""
        messages, deadline = [], time.monotonic() + timeout
        while time.monotonic() < deadline:
            if answer is not None:
                try:
                    asked = self.kc.get_stdin_msg(timeout=0.01)
                    self.kc.input(answer(asked["content"]["prompt"]))
                except queue.Empty:
                    pass
            try:
                msg = self.kc.get_iopub_msg(timeout=0.05)
            except queue.Empty:
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            msg["received"] = time.monotonic()
            messages.append(msg)
            if on_message:
                on_message(msg)
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
        reply = self.kc.get_shell_msg(timeout=timeout)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = self.kc.get_shell_msg(timeout=timeout)
        reply["received"] = time.monotonic()
        return messages, reply

    def run(self, code: str, cell_id=None, user_expressions=None, timeout=60):
        return self.collect(self.send(code, cell_id, user_expressions), timeout)

    def value(self, expression: str):
        _, reply = self.run("", user_expressions={"v": expression})
        return reply["content"]["user_expressions"]["v"]["data"]["text/plain"]


@contextmanager
def replaying(cassette, cwd, *setup):
    """A kernel with no fake and no credentials, the extension loaded, ``setup`` cells run,
    replaying ``cassette``."""
    k = Kernel({}, cwd=str(cwd))
    try:
        for code in ("%load_ext cfai_magic", *setup, f"%cfai replay {cassette}"):
            k.run(code)
        yield k
    finally:
        k.close()


def displays(messages):
    return [m for m in messages if m["msg_type"] in ("display_data", "update_display_data")]


def stdout(messages):
    return "".join(m["content"]["text"] for m in messages
                   if m["msg_type"] == "stream" and m["content"]["name"] == "stdout")


class Widgets:
    """The kernel's widgets as a front end sees them: comm_open/comm_msg on iopub."""

    def __init__(self, kernel: Kernel):
        self.kernel = kernel
        self.state: dict[str, dict] = {}       # comm_id -> state

    def feed(self, msg) -> None:
        kind, content = msg["msg_type"], msg["content"]
        if kind == "comm_open" and content.get("target_name") == "jupyter.widget":
            self.state[content["comm_id"]] = dict(content["data"]["state"])
        elif kind == "comm_msg" and content["data"].get("method") == "update":
            self.state.setdefault(content["comm_id"], {}).update(content["data"]["state"])

    def pump(self, until, timeout: float = 20.0, on_update=None):
        """Read iopub until ``until(self)`` is true."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if until(self):
                return
            try:
                msg = self.kernel.kc.get_iopub_msg(timeout=0.05)
            except queue.Empty:
                continue
            self.feed(msg)
            if on_update:
                on_update(self, msg)
        raise AssertionError("widgets never reached the expected state")

    def find(self, dom_class: str) -> list[str]:
        return [cid for cid, s in self.state.items() if dom_class in s.get("_dom_classes", [])]

    def send(self, comm_id: str, data: dict) -> None:
        msg = self.kernel.kc.session.msg("comm_msg", {"comm_id": comm_id, "data": data})
        self.kernel.kc.shell_channel.send(msg)

    def set(self, comm_id: str, **state) -> None:
        self.send(comm_id, {"method": "update", "state": state, "buffer_paths": []})

    def click(self, comm_id: str) -> None:
        self.send(comm_id, {"method": "custom", "content": {"event": "click"}})

    def children(self, comm_id: str) -> list[str]:
        return [c.replace("IPY_MODEL_", "") for c in self.state[comm_id].get("children", [])]
