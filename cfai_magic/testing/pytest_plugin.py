"""pytest plugin (registered through the pytest11 entry point): the ``fake_workers_ai`` fixture."""
import pytest

from .fake import FakeWorkersAI


@pytest.fixture
def fake_workers_ai():
    """A started :class:`FakeWorkersAI`; stopped when the test ends."""
    with FakeWorkersAI() as fake:
        yield fake
