import cfai_magic
import cfai_magic.client
import cfai_magic.testing


def test_public_names():
    assert set(cfai_magic.__all__) >= {"WorkersAI", "CfaiError", "__version__"}
    for module in (cfai_magic, cfai_magic.client, cfai_magic.testing):
        for name in module.__all__:
            assert getattr(module, name) is not None, name


def test_the_demo_path_needs_no_pytest():
    """The demo installs the package without its test extra: cfai_magic.testing.notebooks (which
    `cfai-demo --check` uses) must import without pytest."""
    import subprocess
    import sys
    code = ("import sys; sys.modules['pytest'] = None\n"
            "import cfai_magic.testing.notebooks, cfai_magic.demo\nprint('ok')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "ok", done.stderr[-500:]
