"""An InteractiveShell with the extension loaded, pointed at FakeWorkersAI."""
import pytest
from IPython.core.interactiveshell import InteractiveShell


@pytest.fixture
def ip(fake):
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "cfai_magic")
    yield shell
    shell.run_line_magic("unload_ext", "cfai_magic")
    for name in ("_cfai", "answer", "kernel"):
        shell.user_ns.pop(name, None)
    if hasattr(shell, "kernel"):
        del shell.kernel
    shell.rl_next_input = None
    for section in ("CfaiMagics", "Settings"):        # %config persists in the shell's config
        shell.config.pop(section, None)
