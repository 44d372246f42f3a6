"""An InteractiveShell with the extension loaded, pointed at FakeWorkersAI."""
import pytest


@pytest.fixture
def ip(fake, shell):
    return shell
