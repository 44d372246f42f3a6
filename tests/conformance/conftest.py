"""Both of our servers, as independent clients see them.

``server`` runs each test against the fake and against the local backend; the local backend
runs a scripted model (the real llama.cpp path, without the seconds a real model takes) unless
the test is marked ``real``, where it runs the embedded Gemma (tests marked ``local`` too)."""
import json
import re
from dataclasses import dataclass

import pytest

from cfai_magic.local.model import TURN_STOPS, transcript
from cfai_magic.local.server import LocalBackend
from cfai_magic.testing import FakeWorkersAI

TOKEN = "conformance-token-0123456789"
ACCOUNT = "conformance-account"


class ScriptedModel:
    """What the local backend needs of a model, with a fixed answer: the server's own code
    (checks, dialects, streaming, usage) runs as with the real one."""

    name = "scripted"
    n_ctx = 4096
    load_seconds = 0.0
    ANSWER = "The sky is blue because air scatters blue light the most."

    def count(self, text: str, bos: bool = True) -> int:
        return len(re.findall(r"\S+", text)) + bos

    def prompt_for(self, body: dict):
        if "messages" in body:
            return transcript(body["messages"]), TURN_STOPS
        return body["prompt"] if body.get("raw") else transcript(
            [{"role": "user", "content": body["prompt"]}]), TURN_STOPS

    def grammar(self, schema):
        return {"schema": schema}

    asked: list = []                     # the max_tokens of each generation (the last last)

    def generate(self, text, *, max_tokens, stop, grammar=None, **sampling):
        self.asked.append(max_tokens)
        answer = json.dumps({"answer": "blue", "sure": True}) if grammar else self.ANSWER
        pieces = re.findall(r"\S+\s*", answer)[:max_tokens]
        for i, piece in enumerate(pieces):
            yield piece, ("stop" if i == len(pieces) - 1 else None)


@dataclass
class Server:
    kind: str
    api_root: str          # .../client/v4
    account: str
    token: str
    fake: object = None    # the FakeWorkersAI, to script answers (None for the local backend)
    model: object = None   # the local backend's model

    @property
    def host(self) -> str:
        return self.api_root.rsplit("/client/v4", 1)[0]

    @property
    def v1(self) -> str:   # the OpenAI-compatible roots: ours, and Cloudflare's
        return f"{self.host}/v1"

    @property
    def cf_v1(self) -> str:
        return f"{self.api_root}/accounts/{self.account}/ai/v1"

    @property
    def run_url(self) -> str:
        return f"{self.api_root}/accounts/{self.account}/ai/run/"


def _local(model):
    backend = LocalBackend(model)
    server = backend.serve(token=TOKEN).start()
    return backend, server


@pytest.fixture(params=["fake", "local"])
def server(request):
    if request.param == "fake":
        with FakeWorkersAI(token=TOKEN, account_id=ACCOUNT) as fake:
            yield Server("fake", fake.url, ACCOUNT, TOKEN, fake)
        return
    real = request.node.get_closest_marker("real") is not None
    if real:
        pytest.importorskip("llama_cpp")
        model = request.getfixturevalue("real_model")
    else:
        model = ScriptedModel()
    backend, http = _local(model)
    yield Server("local", http.url, ACCOUNT, TOKEN, model=model)
    http.stop()


@pytest.fixture(scope="session")
def real_model():
    from cfai_magic.local.model import LocalModel
    return LocalModel()


def pytest_collection_modifyitems(items):
    for item in items:
        if item.get_closest_marker("real"):
            item.add_marker(pytest.mark.local)


def pytest_configure(config):
    config.addinivalue_line("markers", "real: runs the local backend on the embedded model")
