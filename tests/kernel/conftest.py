import pytest

from kernelkit import Kernel


@pytest.fixture
def kernel(fake_workers_ai, tmp_path):
    k = Kernel(fake_workers_ai.env(), cwd=str(tmp_path))
    yield k
    k.close()
