import cfai_magic
import cfai_magic.client
import cfai_magic.testing


def test_public_names():
    assert set(cfai_magic.__all__) >= {"WorkersAI", "CfaiError", "__version__"}
    for module in (cfai_magic, cfai_magic.client, cfai_magic.testing):
        for name in module.__all__:
            assert getattr(module, name) is not None, name
