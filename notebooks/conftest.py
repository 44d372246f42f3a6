"""nbval runs each notebook against its committed cassette (cassettes/NAME.json): no network,
no credentials. CFAI_NOTEBOOK_MODE=auto or record runs them live instead."""
from cfai_magic.testing.notebooks import nbval_cassettes

pytest_runtest_setup = nbval_cassettes()
