import pytest

from cfai_magic.session import Session


@pytest.fixture
def session(fake):
    """A Session pointed at the fake (its environment is set by ``fake``)."""
    s = Session()
    yield s
    s.answers.forget_file()
    s._drop_client()
